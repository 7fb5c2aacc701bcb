package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics from the admin listener with its token.
func scrape(t *testing.T, addr, token string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			v := 0.0
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
			}
			out[name] += v
		}
	}
	return out
}

// TestMetricsAndFilter: /metrics needs the admin token, parses, and moves
// with traffic; the content filter refuses prompts and cuts answers.
func TestMetricsAndFilter(t *testing.T) {
	f := startFleet(t, 1, "--admin-addr", "127.0.0.1:0")
	t.Parallel()
	addr := f.logAttr(t, "admin API listening", "addr")
	raw, err := os.ReadFile(filepath.Join(f.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("/metrics without the token: %d", resp.StatusCode)
	}
	before := scrape(t, addr, token)
	if before["corral_instance_up"] != 1 {
		t.Fatalf("corral_instance_up = %v", before["corral_instance_up"])
	}
	for range 3 {
		r, err := f.do("POST", "/api/chat", `{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5}}`)
		if err != nil {
			t.Fatal(err)
		}
		readAllBody(t, r)
	}
	var after map[string]float64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		after = scrape(t, addr, token)
		if after["corral_gateway_requests_total"]-before["corral_gateway_requests_total"] == 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := after["corral_gateway_requests_total"] - before["corral_gateway_requests_total"]; d != 3 {
		t.Fatalf("requests_total moved by %v, want 3", d)
	}
	if d := after["corral_gateway_tokens_total"] - before["corral_gateway_tokens_total"]; d < 15 {
		t.Fatalf("tokens_total moved by %v, want at least 15 completion tokens", d)
	}
	if after["corral_gateway_time_to_first_token_seconds"] < 3 {
		t.Fatalf("ttft histogram count %v", after["corral_gateway_time_to_first_token_seconds"])
	}

	// The filter, set through the CLI: a prompt that matches is refused, an
	// answer that matches is cut (the simulator's words are known).
	if out, err := f.cli(t, "filter", "set", "Charlie Delta"); err != nil || !strings.Contains(out, "1 phrases") {
		t.Fatalf("filter set: %v %s", err, out)
	}
	r, _ := f.do("POST", "/v1/chat/completions", `{"model":"llama3.2:1b","messages":[{"role":"user","content":"say charlie delta"}]}`)
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 400 || !strings.Contains(string(body), "content filter") {
		t.Fatalf("matching prompt: %d %s", r.StatusCode, body)
	}
	r, _ = f.do("POST", "/v1/chat/completions", `{"model":"llama3.2:1b","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if strings.Contains(string(body), `"content":"delta`) || !strings.Contains(string(body), `"code":"content_filter"`) || strings.Contains(string(body), "[DONE]") {
		t.Fatalf("matching answer was not cut:\n%s", body)
	}
	hits := scrape(t, addr, token)["corral_filter_hits_total"]
	if hits != 2 {
		t.Fatalf("filter hits = %v, want 2", hits)
	}
	if out, err := f.cli(t, "filter", "clear"); err != nil || !strings.Contains(out, "off") {
		t.Fatalf("filter clear: %v %s", err, out)
	}
}
