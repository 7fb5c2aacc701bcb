package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUnavailableSaysModelAndWhy: a 503 names the model and why no
// instance serves it, in every API's shape, and gives away no address
// corral reaches an instance at, whatever the status or the instance
// says.
func TestUnavailableSaysModelAndWhy(t *testing.T) {
	leaks := []string{"172.18.0.3", "10.0.0.7", "fd00", ":11434", "corral-ollama-2:", "http://"}
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"backend 10.0.0.7:8080 busy, see http://10.0.0.7:8080/status"}`))
	}))
	t.Cleanup(busy.Close)

	down := func() []Upstream {
		a := upstreamAt(t, "corral-ollama-0", deadURL(t), "m:latest")
		a.Healthy, a.Status = false, `unhealthy: GET /api/version: Get "http://172.18.0.3:11434/api/version": dial tcp 172.18.0.3:11434: connect: connection refused`
		b := upstreamAt(t, "corral-ollama-1", deadURL(t), "m:latest")
		b.Draining, b.Status = true, "draining: replacing; was at [fd00::2]:11434"
		c := upstreamAt(t, "corral-ollama-2", deadURL(t), "m:latest")
		c.Healthy, c.Status = false, "unhealthy: GET /api/version: lookup corral-ollama-2 on 127.0.0.11:53: no such host (corral-ollama-2:11434)"
		return []Upstream{a, b, c}
	}
	for _, tc := range []struct {
		name string
		ups  []Upstream
		wait []Upstream // Snapshot.Waiting
		want []string
	}{
		{
			name: "every instance down",
			ups:  down(),
			want: []string{"all 3 instances with m:latest are unavailable", "corral-ollama-0 is unhealthy: GET /api/version: Get", "dial tcp …: connect: connection refused",
				"corral-ollama-1 is draining", "corral-ollama-2 is unhealthy", "no such host"},
		},
		{
			name: "none running yet",
			wait: []Upstream{{Name: "corral-ollama-0", Status: "pulling: pulling ollama/ollama:0.17.4: 40% of 1.2 GiB"}, {Name: "corral-ollama-1", Status: "failed: image pull failed"}},
			want: []string{"model m:latest is unavailable: no Ollama instance is running yet: corral-ollama-0 is pulling: pulling ollama/ollama:0.17.4: 40% of 1.2 GiB; corral-ollama-1 is failed: image pull failed"},
		},
		{
			name: "none at all",
			want: []string{"model m:latest is unavailable: no Ollama instance is running yet"},
		},
		{
			name: "every instance refuses",
			ups:  []Upstream{upstreamAt(t, "corral-ollama-0", busy.URL, "m:latest")},
			want: []string{"model m:latest on instance corral-ollama-0: backend … busy, see …"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, st, srv := newTestGateway(t, Config{}, tc.ups...)
			if tc.wait != nil {
				st.s.Store(&Snapshot{Version: 2, Upstreams: tc.ups, Waiting: tc.wait})
			}
			for _, path := range []string{"/v1/chat/completions", "/api/chat", "/v1/messages"} {
				resp := post(t, srv, path, "good", `{"model":"m","stream":false,"max_tokens":5,"messages":[]}`)
				body := readAll(t, resp)
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
				}
				for _, w := range tc.want {
					if !strings.Contains(body, w) {
						t.Errorf("%s: answer lacks %q:\n%s", path, w, body)
					}
				}
				for _, l := range leaks {
					if strings.Contains(body, l) {
						t.Errorf("%s: answer gives away %q:\n%s", path, l, body)
					}
				}
			}
		})
	}
}
