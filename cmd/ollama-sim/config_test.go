package main

import (
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestHostAddr(t *testing.T) {
	tests := map[string]string{
		"":                      "127.0.0.1:11434",
		"0.0.0.0":               "0.0.0.0:11434",
		"0.0.0.0:11434":         "0.0.0.0:11434",
		":8080":                 ":8080",
		"example.com":           "example.com:11434",
		"http://10.0.0.1":       "10.0.0.1:80",
		"https://10.0.0.1":      "10.0.0.1:443",
		"http://10.0.0.1:1234/": "10.0.0.1:1234",
		"[::1]:5000":            "[::1]:5000",
		"::1":                   "[::1]:11434",
		"host:99999":            "host:11434",
	}
	for in, want := range tests {
		if got := hostAddr(in); got != want {
			t.Errorf("hostAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeepAliveEnv(t *testing.T) {
	tests := map[string]time.Duration{
		"":      5 * time.Minute,
		"10m":   10 * time.Minute,
		"30":    30 * time.Second,
		"0":     0,
		"-1":    math.MaxInt64,
		"-5m":   math.MaxInt64,
		"bogus": 5 * time.Minute,
	}
	for in, want := range tests {
		if got := keepAlive(in); got != want {
			t.Errorf("keepAlive(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     func(string) (string, bool)
		args    []string
		check   func(t *testing.T, c config)
		wantErr string
	}{
		{"defaults without HOME", envOf(), []string{"serve"}, func(t *testing.T, c config) {
			if c.Addr != "127.0.0.1:11434" || c.ModelsDir != "/root/.ollama/models" || c.KeepAlive != 5*time.Minute ||
				c.NumParallel != 1 || c.Version != "0.17.4" || !slices.Equal(c.Presets, []string{"llama3.2:1b", "qwen2.5:0.5b"}) {
				t.Errorf("%+v", c)
			}
			if c.Sim.DefaultTokens != 16 || c.Sim.VRAMBytes != 16<<30 {
				t.Errorf("sim %+v", c.Sim)
			}
		}, ""},
		{"environment", envOf(
			"HOME", "/home/x", "OLLAMA_HOST", "0.0.0.0", "OLLAMA_KEEP_ALIVE", "-1", "OLLAMA_NUM_PARALLEL", "4",
			"SIM_MODELS", "tinyllama, mistral:7b", "SIM_VERSION", "1.2.3", "SIM_FIRST_TOKEN_DELAY", "250",
			"SIM_TOKEN_INTERVAL", "5ms", "SIM_FAIL_RATE", "0.25", "SIM_HANG", "true", "SIM_VRAM_BYTES", "1000",
		), nil, func(t *testing.T, c config) {
			if c.Addr != "0.0.0.0:11434" || c.ModelsDir != "/home/x/.ollama/models" || c.KeepAlive != math.MaxInt64 ||
				c.NumParallel != 4 || c.Version != "1.2.3" || !slices.Equal(c.Presets, []string{"tinyllama", "mistral:7b"}) {
				t.Errorf("%+v", c)
			}
			if c.Sim.FirstTokenDelay.std() != 250*time.Millisecond || c.Sim.TokenInterval.std() != 5*time.Millisecond ||
				c.Sim.FailRate != 0.25 || !c.Sim.Hang || c.Sim.VRAMBytes != 1000 {
				t.Errorf("sim %+v", c.Sim)
			}
		}, ""},
		{"models dir and flag", envOf("OLLAMA_MODELS", "/m", "OLLAMA_HOST", "1.2.3.4:1", "SIM_MODELS", ""), []string{"serve", "--addr", ":9999"}, func(t *testing.T, c config) {
			if c.Addr != ":9999" || c.ModelsDir != "/m" || len(c.Presets) != 0 {
				t.Errorf("%+v", c)
			}
		}, ""},
		{"unknown preset", envOf("SIM_MODELS", "nope"), nil, nil, `"nope" is not in the simulator's catalogue`},
		{"bad numbers", envOf("OLLAMA_NUM_PARALLEL", "x", "SIM_FAIL_STATUS", "200"), nil, nil, "OLLAMA_NUM_PARALLEL"},
		{"bad status", envOf("SIM_FAIL_STATUS", "200"), nil, nil, "fail_status"},
		{"extra argument", envOf(), []string{"run"}, nil, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.env, tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestSimConfigEndpoint(t *testing.T) {
	ts := startSim(t)
	var cfg simConfig
	ts.call(t, http.MethodPost, "/_sim/config", `{"first_token_delay":"1.5s","token_interval":20,"fail_count":3}`, 200, &cfg)
	if cfg.FirstTokenDelay.std() != 1500*time.Millisecond || cfg.TokenInterval.std() != 20*time.Millisecond || cfg.FailCount != 3 || cfg.DefaultTokens != 16 {
		t.Errorf("after update %+v", cfg)
	}
	resp := ts.do(t, http.MethodGet, "/_sim/config", nil)
	body := string(readAll(t, resp))
	if !strings.Contains(body, `"first_token_delay":"1.5s"`) || !strings.Contains(body, `"token_interval":"20ms"`) {
		t.Errorf("durations are written as Go duration strings: %s", body)
	}
	for _, bad := range []string{`{"nope":1}`, `{"fail_rate":2}`, `{"default_tokens":0}`, `{"load_delay":"soon"}`, `[]`} {
		var e apiErrorBody
		ts.call(t, http.MethodPost, "/_sim/config", bad, 400, &e)
		if e.Error == "" {
			t.Errorf("%s: no error message", bad)
		}
	}
	ts.call(t, http.MethodGet, "/_sim/config", nil, 200, &cfg)
	if cfg.FailCount != 3 || cfg.DefaultTokens != 16 {
		t.Errorf("a rejected update changed the config: %+v", cfg)
	}
	// default_tokens drives answers without a limit.
	ts.setConfig(t, `{"default_tokens":2,"fail_count":0,"first_token_delay":0,"token_interval":"0s"}`)
	var c apiChatResponse
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "x"), "stream", false), 200, &c)
	if c.EvalCount != 2 || c.DoneReason != "stop" {
		t.Errorf("default_tokens 2: %+v", c)
	}
	// Control requests are not counted as API traffic.
	if st := ts.stats(t); len(st.Requests) != 1 {
		t.Errorf("requests %v", st.Requests)
	}
}
