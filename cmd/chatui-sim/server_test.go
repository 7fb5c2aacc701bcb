package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		role, path string
		want       int
	}{
		{"open-webui", "/health", http.StatusOK},
		{"open-webui", "/api/health", http.StatusOK},
		{"lobechat", "/health", http.StatusOK},
		{"lobechat", "/api/health", http.StatusOK},
		{"lobechat", "/", http.StatusOK},
		{"minio", "/minio/health/live", http.StatusOK},
		{"minio", "/minio/health/ready", http.StatusOK},
		{"minio", "/api/health", http.StatusNotFound},
		{"open-webui", "/nowhere", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.role+tt.path, func(t *testing.T) {
			_, ts := newTestServer(t, "SIM_ROLE="+tt.role, "SIM_DATA_DIR=")
			status, body := do(t, http.MethodGet, ts.URL+tt.path, nil)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if tt.want == http.StatusOK && strings.HasSuffix(tt.path, "health") {
				if strings.TrimSpace(body) != "{\n  \"status\": true\n}" {
					t.Errorf("body %q", body)
				}
			}
		})
	}
}

func TestEnv(t *testing.T) {
	for _, role := range []string{"open-webui", "lobechat", "minio", "postgres"} {
		t.Run(role, func(t *testing.T) {
			_, ts := newTestServer(t, "SIM_ROLE="+role, "SIM_DATA_DIR=",
				"OPENAI_API_KEY=sk-test", "WEBUI_SECRET_KEY=secret", "DATABASE_URL=postgres://u:p@db/lobe", "EMPTY=")
			var env map[string]string
			getJSON(t, ts.URL+"/env", &env)
			want := map[string]string{"SIM_ROLE": role, "OPENAI_API_KEY": "sk-test", "WEBUI_SECRET_KEY": "secret",
				"DATABASE_URL": "postgres://u:p@db/lobe", "EMPTY": ""}
			for k, v := range want {
				if got, ok := env[k]; !ok || got != v {
					t.Errorf("env[%s] = %q (%v), want %q", k, got, ok, v)
				}
			}
			if len(env) != 6 { // the five above and SIM_DATA_DIR
				t.Errorf("env has %d entries, want 6: %v", len(env), env)
			}
		})
	}
}

func TestIndexPage(t *testing.T) {
	for _, role := range []string{"open-webui", "lobechat"} {
		t.Run(role, func(t *testing.T) {
			_, ts := newTestServer(t, "SIM_ROLE="+role, "SIM_DATA_DIR=")
			status, body := do(t, http.MethodGet, ts.URL+"/", nil)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			for _, want := range []string{"<title>chat UI stand-in</title>", `<strong id="role">` + role + "</strong>",
				`src="static/sim.js"`, `href="static/sim.css"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s:\n%s", want, body)
				}
			}
			for _, asset := range []string{"/static/sim.js", "/static/sim.css"} {
				if status, body := do(t, http.MethodGet, ts.URL+asset, nil); status != http.StatusOK || len(body) == 0 {
					t.Errorf("GET %s: %d, %d bytes", asset, status, len(body))
				}
			}
		})
	}
}

func TestRequestEcho(t *testing.T) {
	_, ts := newTestServer(t, "SIM_DATA_DIR=")
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/request?x=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "chat.example.com"
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Host    string              `json:"host"`
		URI     string              `json:"uri"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Host != "chat.example.com" || got.URI != "/request?x=1" || got.Headers["X-Forwarded-Proto"][0] != "https" {
		t.Errorf("got %+v", got)
	}
}
