package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corral/engine/enginetest"
)

// BenchmarkRealOllama measures the gateway on the real Ollama server with
// the tiny model from cmd/mkgguf: time to first token and tokens per second,
// straight to one instance's container and through corral's gateway, with
// one and with two instances. Each instance runs the model with
// num_thread=1, so two instances use two CPU threads between them.
//
// Direct is always a single instance (its container address from status,
// no key); the gateway spreads the same load over all of them. Each
// iteration sends, in each mode, C = 2×instances concurrent streaming
// /api/chat requests, benchRounds times over, each with its own prompt so
// nothing is served from a cache.
//
//	go test -run XXX -bench BenchmarkRealOllama -benchtime 3x ./cmd/corral
func BenchmarkRealOllama(b *testing.B) {
	image := realOllama(b)
	gguf := filepath.Join(b.TempDir(), "tiny.gguf")
	if out, err := exec.Command("go", "run", "../mkgguf", "-o", gguf).CombinedOutput(); err != nil {
		b.Fatalf("mkgguf: %v\n%s", err, out)
	}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) { benchRealOllama(b, image, gguf, n) })
	}
}

const (
	benchRounds     = 2  // requests each concurrent client sends per iteration and mode
	benchNumPredict = 32 // completion tokens per request
)

func benchRealOllama(b *testing.B, image, gguf string, n int) {
	// Setup, outside the timer: b.Loop starts it at its first call.
	ns := enginetest.Namespace(b)
	dataDir := b.TempDir()
	p := startServe(b, dataDir, "--namespace", ns, "--cpu-instances", fmt.Sprint(n), "--ollama-image", image)
	st := p.waitStatus(b, fmt.Sprintf("%d healthy Ollama instances", n), 120*time.Second, allHealthy(n))
	f := &fleet{daemonProc: p, st: st, gateway: "http://" + p.logAttr(b, "gateway listening", "addr")}
	key, err := f.cli(b, "keys", "create", "bench")
	if err != nil {
		b.Fatal(err)
	}
	f.key = strings.TrimSpace(key)
	if out, err := f.cli(b, "models", "import", gguf, "--name", "tiny", "--template", "{{ .Prompt }}",
		"--param", "num_ctx=2048", "--param", "num_predict=16", "--param", "num_thread=1"); err != nil {
		b.Fatalf("import: %v\n%s", err, out)
	}
	f.waitRoutable(b, "tiny:latest")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	direct := benchTarget{client: client, base: st.Instances[0].Endpoint}
	gateway := benchTarget{client: client, base: f.gateway, key: f.key}
	// Load the model on every instance before measuring: one request to
	// each straight, and a few through the gateway.
	for _, in := range st.Instances {
		if _, err := (benchTarget{client: client, base: in.Endpoint}).chat(0); err != nil {
			b.Fatalf("warm-up %s: %v", in.Name, err)
		}
	}
	for i := range 2 * n {
		if _, err := gateway.chat(i); err != nil {
			b.Fatalf("warm-up through the gateway: %v", err)
		}
	}

	c := 2 * n
	var dRes, gRes []benchResult
	var dWall, gWall time.Duration
	// The two modes take turns going first, so neither always runs on a
	// machine the other has just warmed or heated.
	for i := 0; b.Loop(); i++ {
		runDirect := func() {
			r, w := benchLoad(b, direct, c)
			dRes, dWall = append(dRes, r...), dWall+w
		}
		runGateway := func() {
			r, w := benchLoad(b, gateway, c)
			gRes, gWall = append(gRes, r...), gWall+w
		}
		if i%2 == 0 {
			runDirect()
			runGateway()
		} else {
			runGateway()
			runDirect()
		}
	}

	dTTFT, gTTFT := benchP50(dRes, benchResult.ttftMS), benchP50(gRes, benchResult.ttftMS)
	dTok, gTok := benchTokS(dRes, dWall), benchTokS(gRes, gWall)
	b.ReportMetric(dTTFT, "ttft_p50_ms_direct")
	b.ReportMetric(gTTFT, "ttft_p50_ms_gateway")
	b.ReportMetric(gTTFT-dTTFT, "added_ttft_p50_ms")
	b.ReportMetric(dTok, "tok_s_direct")
	b.ReportMetric(gTok, "tok_s_gateway")
	b.ReportMetric(gTok/dTok, "ratio_gateway_vs_direct")
	b.ReportMetric(benchP50(dRes, benchResult.tokS), "req_tok_s_p50_direct")
	b.ReportMetric(benchP50(gRes, benchResult.tokS), "req_tok_s_p50_gateway")
	b.Logf("instances=%d concurrency=%d num_thread=1/instance: %d direct and %d gateway requests",
		n, c, len(dRes), len(gRes))
}

// benchTarget is where requests go: an instance, or the gateway with a key.
type benchTarget struct {
	client *http.Client
	base   string
	key    string
}

type benchResult struct {
	ttft      time.Duration // request sent → first line with content
	gen       time.Duration // first content → done line
	evalCount int
}

func (r benchResult) ttftMS() float64 { return float64(r.ttft) / float64(time.Millisecond) }

// tokS is the request's generation speed: Ollama's eval_count over the time
// from its first token to its done line.
func (r benchResult) tokS() float64 {
	if r.gen <= 0 {
		return 0
	}
	return float64(r.evalCount) / r.gen.Seconds()
}

var benchSeq atomic.Int64

// chat sends one streaming /api/chat with a prompt of its own.
func (t benchTarget) chat(worker int) (benchResult, error) {
	prompt := fmt.Sprintf("request %d from worker %d at %d: tell me something", benchSeq.Add(1), worker, time.Now().UnixNano())
	body, _ := json.Marshal(map[string]any{
		"model":    "tiny",
		"messages": []map[string]string{{"role": "user", "content": prompt}},
		"stream":   true,
		"options":  map[string]any{"num_predict": benchNumPredict},
	})
	req, err := http.NewRequest("POST", t.base+"/api/chat", bytes.NewReader(body))
	if err != nil {
		return benchResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return benchResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		return benchResult{}, fmt.Errorf("%s: %s", resp.Status, raw)
	}
	var first time.Time
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			Done      bool   `json:"done"`
			EvalCount int    `json:"eval_count"`
			Error     string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return benchResult{}, fmt.Errorf("line %q: %v", sc.Text(), err)
		}
		now := time.Now()
		if line.Error != "" {
			return benchResult{}, fmt.Errorf("stream error: %s", line.Error)
		}
		if first.IsZero() && line.Message.Content != "" {
			first = now
		}
		if line.Done {
			if first.IsZero() {
				return benchResult{}, fmt.Errorf("done with no content (eval_count %d)", line.EvalCount)
			}
			return benchResult{ttft: first.Sub(start), gen: now.Sub(first), evalCount: line.EvalCount}, nil
		}
	}
	if err := sc.Err(); err != nil {
		return benchResult{}, err
	}
	return benchResult{}, fmt.Errorf("stream ended with no done line")
}

// benchLoad runs c concurrent clients, each sending benchRounds requests
// one after another, and returns the results and the wall time.
func benchLoad(b *testing.B, t benchTarget, c int) ([]benchResult, time.Duration) {
	var mu sync.Mutex
	var out []benchResult
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c {
		wg.Go(func() {
			for range benchRounds {
				r, err := t.chat(w)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				} else if err == nil {
					out = append(out, r)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		b.Fatalf("%s: %v", t.base, firstErr)
	}
	return out, wall
}

func benchP50(rs []benchResult, f func(benchResult) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// benchTokS is the aggregate: completion tokens over the measured wall time.
func benchTokS(rs []benchResult, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	tokens := 0
	for _, r := range rs {
		tokens += r.evalCount
	}
	return float64(tokens) / wall.Seconds()
}
