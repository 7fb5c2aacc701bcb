package chatui

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
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
	// LobeChat offers the gateway's models, not its built-in list.
	cfg.Models = []string{"llama3.2:1b", "qwen2.5:0.5b"}
	for mode, want := range map[string]string{LobeChat: "-all,+llama3.2:1b,+qwen2.5:0.5b", LobeChatDB: "-all,+llama3.2:1b,+qwen2.5:0.5b", OpenWebUI: ""} {
		c := cfg
		c.Mode = mode
		specs, _ := Specs(c)
		if got := specs[len(specs)-1].Env["OPENAI_MODEL_LIST"]; got != want {
			t.Errorf("%s: OPENAI_MODEL_LIST %q, want %q", mode, got, want)
		}
	}
	if specs, err := Specs(Config{Mode: None}); err != nil || len(specs) != 0 {
		t.Fatalf("none: %v %v", specs, err)
	}
	if _, err := ParseMode("chatgpt"); err == nil || !strings.Contains(err.Error(), "use open-webui, lobechat, lobechat-db or none") {
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

// lobechat-db: the database and the object store first, each with its
// volume; the app after both, wired to them and to the gateway with the
// kept secrets; the owner's variables passed on; the key set a usable
// RS256 private key.
func TestLobeChatDBSpecs(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sec, err := LoadSecrets(st)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := Specs(Config{Mode: LobeChatDB, Namespace: "ns", Gateway: "http://10.0.0.1:8091", Key: "k", PublicURL: "https://chat.example.com",
		Secrets: sec, Env: map[string]string{"AUTH_SSO_PROVIDERS": "generic-oidc"}, DBImage: "db:1"})
	if err != nil || len(specs) != 3 {
		t.Fatalf("%v %v", specs, err)
	}
	db, s3, app := specs[0], specs[1], specs[2]
	if db.Name != "ns-chatui-db" || db.Image != "db:1" || db.Volume != "ns-chatui-db" || db.Health != "tcp" || db.Env["POSTGRES_PASSWORD"] != sec.DBPassword {
		t.Errorf("db %+v", db)
	}
	if s3.Name != "ns-chatui-s3" || s3.Image != S3Image || s3.Volume != "ns-chatui-s3" || s3.Env["RUSTFS_ACCESS_KEY"] != sec.S3Access || s3.Cmd[len(s3.Cmd)-1] != "/data" {
		t.Errorf("s3 %+v", s3)
	}
	if app.Name != "ns-chatui" || app.Image != "lobehub/lobehub:latest" || strings.Join(app.After, ",") != "ns-chatui-db,ns-chatui-s3" ||
		strings.Join(app.Hosts, ",") != "chat.example.com:host-gateway" {
		t.Errorf("app %+v", app)
	}
	for k, v := range map[string]string{
		"DATABASE_URL": "postgresql://postgres:" + sec.DBPassword + "@ns-chatui-db:5432/lobechat", "S3_ENDPOINT": "https://chat.example.com",
		"S3_ACCESS_KEY_ID": sec.S3Access, "S3_SECRET_ACCESS_KEY": sec.S3Secret, "KEY_VAULTS_SECRET": sec.KeyVaults, "AUTH_SECRET": sec.AuthSecret,
		"JWKS_KEY": sec.JWKS, "OPENAI_PROXY_URL": "http://10.0.0.1:8091/v1", "APP_URL": "https://chat.example.com", "AUTH_SSO_PROVIDERS": "generic-oidc",
	} {
		if app.Env[k] != v {
			t.Errorf("%s=%q, want %q", k, app.Env[k], v)
		}
	}
	// LobeHub 2 refuses to start with these set.
	for _, k := range []string{"ACCESS_CODE", "NEXTAUTH_URL", "NEXT_AUTH_SECRET"} {
		if _, ok := app.Env[k]; ok {
			t.Errorf("%s set", k)
		}
	}
	if raw, err := base64.StdEncoding.DecodeString(sec.KeyVaults); err != nil || len(raw) != 32 {
		t.Errorf("KEY_VAULTS_SECRET %q: %d bytes, %v", sec.KeyVaults, len(raw), err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(sec.JWKS), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", sec.JWKS, err)
	}
	k := set.Keys[0]
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["kid"] == "" {
		t.Fatalf("JWK %v", k)
	}
	num := func(f string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(k[f])
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		return new(big.Int).SetBytes(b)
	}
	priv := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: num("n"), E: int(num("e").Int64())}, D: num("d"), Primes: []*big.Int{num("p"), num("q")}}
	if err := priv.Validate(); err != nil || priv.N.BitLen() != 2048 {
		t.Fatalf("the key set's key: %v (%d bits)", err, priv.N.BitLen())
	}
}
