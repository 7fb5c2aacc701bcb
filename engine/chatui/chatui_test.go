package chatui

import (
	"strings"
	"testing"

	"corral/engine/store"
)

func TestSpecs(t *testing.T) {
	sec := Secrets{WebUISecret: "ws", AccessCode: "ac"}
	cfg := Config{Namespace: "ns", Gateway: "http://172.18.0.1:8091/", Key: "k", PublicURL: "https://chat.example.com", Secrets: sec}
	cases := []struct {
		mode, image string
		want        map[string]string
		port        int
		health      string
		volume      string
	}{
		{OpenWebUI, "ghcr.io/open-webui/open-webui:main", map[string]string{
			"OPENAI_API_BASE_URL": "http://172.18.0.1:8091/v1", "OPENAI_API_KEY": "k", "ENABLE_OLLAMA_API": "false",
			"WEBUI_SECRET_KEY": "ws", "WEBUI_URL": "https://chat.example.com", "ENABLE_FORWARD_USER_INFO_HEADERS": "true",
			"RAG_EMBEDDING_ENGINE": "openai", "RAG_OPENAI_API_BASE_URL": "http://172.18.0.1:8091/v1", "RAG_OPENAI_API_KEY": "k", "OFFLINE_MODE": "true",
		}, 8080, "/health", "ns-chatui-data"},
		{LobeChat, "lobehub/lobe-chat:latest", map[string]string{
			"OPENAI_PROXY_URL": "http://172.18.0.1:8091/v1", "OPENAI_API_KEY": "k", "ACCESS_CODE": "ac", "ENABLED_OLLAMA": "0",
		}, 3210, "/", ""},
	}
	for _, tc := range cases {
		c := cfg
		c.Mode = tc.mode
		specs, err := Specs(c)
		if err != nil || len(specs) != 1 {
			t.Fatalf("%s: %v %v", tc.mode, specs, err)
		}
		s := specs[0]
		if s.Name != "ns-chatui" || s.Role != "chatui" || s.Image != tc.image || s.Port != tc.port || s.Health != tc.health || s.Volume != tc.volume {
			t.Errorf("%s: %+v", tc.mode, s)
		}
		for k, v := range tc.want {
			if s.Env[k] != v {
				t.Errorf("%s: %s=%q, want %q", tc.mode, k, s.Env[k], v)
			}
		}
		if len(s.Env) != len(tc.want) {
			t.Errorf("%s: env %v has more than %v", tc.mode, s.Env, tc.want)
		}
		c.Image = "mine:1"
		if specs, _ := Specs(c); specs[0].Image != "mine:1" {
			t.Errorf("%s: image override ignored", tc.mode)
		}
	}
	if specs, err := Specs(Config{Mode: None}); err != nil || len(specs) != 0 {
		t.Fatalf("none: %v %v", specs, err)
	}
	if _, err := ParseMode("chatgpt"); err == nil || !strings.Contains(err.Error(), "use open-webui, lobechat or none") {
		t.Fatalf("bad mode: %v", err)
	}
}

// Secrets are made once: a reopened store gives the same ones.
func TestSecretsKept(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := LoadSecrets(st)
	if err != nil || len(a.WebUISecret) < 20 || a.AccessCode == "" || a.WebUISecret == a.AccessCode {
		t.Fatalf("%+v %v", a, err)
	}
	a.Key = "secret-key"
	if err := SaveSecrets(st, a); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if b, err := LoadSecrets(st); err != nil || b != a {
		t.Fatalf("after reopening: %+v, want %+v (%v)", b, a, err)
	}
}
