package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go under -race.
var raceEnabled bool

// TestMain lets the test binary stand in for corral-bench: the harness
// starts its gateway child as os.Executable() with "gateway".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "gateway" || os.Args[1] == "relay" || os.Args[1] == "spin") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchEndToEnd runs the whole harness briefly: simulator, gateway
// child, nginx when installed, both scenarios at concurrency 1 and 2.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and builds the simulator")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	cfg := defaultConfig()
	cfg.Levels = []int{1, 2}
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 250 * time.Millisecond
	cfg.Rounds = 1
	cfg.Chunks, cfg.FirstToken, cfg.Interval = 8, 2*time.Millisecond, time.Millisecond
	cfg.Tokens = 4
	cfg.MinStreams = 30 // at c=1 a 250 ms cell holds about 20 streams of 10 ms
	cfg.Awake = runtime.NumCPU() >= 2
	// This build against itself: the harness runs a second gateway child.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Baseline = self

	before := cpusOf(os.Getpid())
	text, rep := runBench(t, &cfg, 90*time.Second)
	for _, want := range []string{"scenario A", "scenario B", "added TTFT p50", "simulator", "load client", "gateway RSS at c=2", "failures", "bounds (", "proxy/chunk", "gateway: full stack",
		"c=1 baseline: added TTFT p50", "gateway TTFT minus baseline's, paired", "c=2 baseline:"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}

	// The bounds: all four named; the RSS one not judged, as the levels
	// stop short of 256, nor the CPU one, judged on loaded levels (16 up).
	if len(rep.Bounds) != 4 {
		t.Errorf("bounds: %+v, want 4", rep.Bounds)
	}
	for _, c := range rep.Bounds {
		if (strings.HasPrefix(c.Target, "gateway RSS") || strings.HasPrefix(c.Target, "gateway CPU")) != c.Skipped {
			t.Errorf("bound %q: skipped %v (%s)", c.Target, c.Skipped, c.Detail)
		}
	}
	if !rep.FullStack {
		t.Error("the gateway did not run as corral serve does (full stack is the default)")
	}
	for name, n := range rep.Failures {
		if n != 0 {
			t.Errorf("%s: %d failed streams\n%s", name, n, text)
		}
	}
	if len(rep.Scenarios) != 2 {
		t.Fatalf("scenarios: %d, want 2", len(rep.Scenarios))
	}
	for _, sc := range rep.Scenarios {
		for _, lr := range sc.Levels {
			if len(lr.Targets) < 3 {
				t.Errorf("scenario %s c=%d: targets %+v, want direct, gateway and baseline at least", sc.ID, lr.Concurrency, lr.Targets)
			}
			if sc.Latency && lr.Paired && (lr.GatewayMinusBaselineTTFT == nil || lr.GatewayMinusBaselineTTFT.Pairs == 0) {
				t.Errorf("scenario %s c=%d: no gateway-baseline pairs: %+v", sc.ID, lr.Concurrency, lr.GatewayMinusBaselineTTFT)
			}
			for _, tr := range lr.Targets {
				if tr.Requests == 0 {
					t.Errorf("scenario %s c=%d %s: no requests", sc.ID, lr.Concurrency, tr.Name)
				}
				if tr.SimCPUPerRequestUS == nil || tr.LoadCPUPerRequestUS == nil || (tr.Name != "direct") != (tr.CPUPerRequestUS != nil) {
					t.Errorf("scenario %s c=%d %s: CPU per request not measured as it should be: %+v", sc.ID, lr.Concurrency, tr.Name, tr)
				}
				per := cfg.Tokens
				if sc.Latency {
					per = cfg.Chunks
				}
				if want := tr.Requests * per; tr.Failures == 0 && tr.Chunks != want {
					t.Errorf("scenario %s c=%d %s: %d chunks, want %d", sc.ID, lr.Concurrency, tr.Name, tr.Chunks, want)
				}
				if (tr.Name != "direct") != (tr.CPUPerChunkUS != nil) {
					t.Errorf("scenario %s c=%d %s: CPU per chunk not measured as it should be: %+v", sc.ID, lr.Concurrency, tr.Name, tr)
				}
				if sc.Latency && (tr.TTFTP50 == nil || tr.GapP50 == nil) {
					t.Errorf("scenario %s c=%d %s: no latencies", sc.ID, lr.Concurrency, tr.Name)
				}
				if sc.Latency && tr.Requests < cfg.MinStreams {
					t.Errorf("scenario %s c=%d %s: %d streams, want at least --min-streams %d", sc.ID, lr.Concurrency, tr.Name, tr.Requests, cfg.MinStreams)
				}
			}
		}
	}
	// The benchmark gives its threads their CPUs back: a second run in
	// this process (go test -count 2) must find them all.
	if after := cpusOf(os.Getpid()); after != before {
		t.Errorf("affinity after the run: %s, before: %s", after, before)
	}
	// Split: the proxies run on the last CPU, the load and the simulator on
	// the others, as read back from the processes.
	if runtime.NumCPU() >= 2 {
		if rep.CPUMode != cpusSplit {
			t.Errorf("cpus mode %q, want split on %d CPUs (%s)", rep.CPUMode, runtime.NumCPU(), rep.CPUPlacement)
		}
		obs := rep.CPUsObserved
		if obs["gateway"] == obs["load client"] || obs["simulator"] != obs["load client"] || strings.Contains(obs["gateway"], ",") || strings.Contains(obs["gateway"], "-") {
			t.Errorf("placement read back %v: want the gateway alone on one CPU, the simulator with the load client", obs)
		}
		if obs["baseline"] != obs["gateway"] {
			t.Errorf("baseline on CPUs %s, gateway on %s: want the same CPU", obs["baseline"], obs["gateway"])
		}
		if n, ok := obs["nginx worker"]; ok && n != obs["gateway"] {
			t.Errorf("nginx worker on CPUs %s, gateway on %s: want the same CPU", n, obs["gateway"])
		}
		if !rep.ProxyAwake || obs["spinner"] != obs["gateway"] {
			t.Errorf("--awake: proxy_cpu_awake %v, spinner on CPUs %q, gateway on %s: want a SCHED_IDLE spinner on the gateway's CPU", rep.ProxyAwake, obs["spinner"], obs["gateway"])
		}
		if rep.Memory.GatewayMaxProcs != 1 {
			t.Errorf("gateway GOMAXPROCS %d, want 1 (its one CPU)", rep.Memory.GatewayMaxProcs)
		}
	}
	if rep.Memory.GatewayHWMMiB <= 0 {
		t.Errorf("gateway memory not read: %+v", rep.Memory)
	}
	if rep.Nginx == "" {
		t.Logf("nginx skipped: %s", rep.NginxSkipped)
	}
	// The work directory is gone, and with it every child's files.
	if left, _ := os.ReadDir(cfg.tmpParent); len(left) != 0 {
		t.Errorf("work directory left behind: %v", left)
	}
}

// TestBounds judges made-up reports: each bound passes at its limit and
// fails just past it.
func TestBounds(t *testing.T) {
	v := func(x float64) *float64 { return &x }
	mk := func(ttft, chunkCPU, rss float64, fails int) *report {
		r := &report{Nginx: "nginx/1.22.1", FullStack: true, Settings: settings{Levels: []int{1, 256}},
			Failures: map[string]int{"direct": 0, "gateway": fails, "nginx": 0}}
		for _, id := range []string{"A", "B"} {
			sc := scenarioReport{ID: id, Latency: id == "A"}
			for _, l := range []int{1, 256} {
				lr := levelReport{Concurrency: l}
				lr.Targets = append(lr.Targets, targetReport{Name: "direct"},
					targetReport{Name: "gateway", AddedTTFTP50: v(ttft), CPUPerChunkUS: v(chunkCPU)},
					targetReport{Name: "nginx", AddedTTFTP50: v(0.2), CPUPerChunkUS: v(5)})
				sc.Levels = append(sc.Levels, lr)
			}
			r.Scenarios = append(r.Scenarios, sc)
		}
		r.Memory = memoryReport{Concurrency: 256, GatewayRSSMiB: rss, GatewayHWMEnd: rss, GatewayRSSByScenario: map[string]float64{"A": rss, "B": rss}}
		return r
	}
	verdicts := func(r *report) (out []bool) {
		for _, c := range r.checks() {
			if c.Skipped {
				t.Errorf("%s not judged: %s", c.Target, c.Detail)
			}
			out = append(out, c.Pass)
		}
		return out
	}
	if got := verdicts(mk(1, 10, 64, 0)); !slices.Equal(got, []bool{true, true, true, true}) {
		t.Errorf("at the limits: %v, want all pass", got)
	}
	if got := verdicts(mk(1.01, 10.1, 64.1, 1)); !slices.Equal(got, []bool{false, false, false, false}) {
		t.Errorf("past the limits: %v, want all fail", got)
	}
}

func TestScanStream(t *testing.T) {
	sseChunk := `data: {"choices":[{"delta":{"role":"assistant","content":"alpha "}}]}` + "\n\n"
	sseLast := `data: {"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}` + "\n\n"
	ndChunk := `{"message":{"role":"assistant","content":"alpha "},"done":false}` + "\n"
	ndLast := `{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}` + "\n"
	tests := []struct {
		name   string
		sse    bool
		in     string
		chunks int
		done   bool
		errEv  bool
	}{
		{"sse complete", true, ": keep-alive\n\n" + sseChunk + sseChunk + sseLast + "data: [DONE]\n\n", 2, true, false},
		{"sse truncated", true, sseChunk + sseChunk, 2, false, false},
		{"sse cut mid-line", true, sseChunk + `data: {"cho`, 1, false, false},
		{"sse error event", true, sseChunk + `data: {"error":{"message":"instance failed mid-stream"}}` + "\n\n", 1, false, true},
		{"ndjson complete", false, ndChunk + ndChunk + ndChunk + ndLast, 3, true, false},
		{"ndjson truncated", false, ndChunk, 1, false, false},
		{"ndjson error", false, ndChunk + `{"error":"boom"}` + "\n", 1, false, true},
		{"long line", true, "data: " + strings.Repeat("x", 40<<10) + "\n\ndata: [DONE]\n\n", 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			res := scanStream(bufio.NewReaderSize(strings.NewReader(tt.in), 16<<10), tt.sse, func(time.Time) { calls++ })
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.chunks != tt.chunks || calls != tt.chunks || res.done != tt.done || res.errorEvent != tt.errEv {
				t.Errorf("got chunks %d (calls %d) done %v error %v; want %d %v %v", res.chunks, calls, res.done, res.errorEvent, tt.chunks, tt.done, tt.errEv)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got == got {
		t.Errorf("no samples: %v, want NaN", got)
	}
}

// runBench runs the harness with cfg in the test's temporary directory
// (its work directory and JSON report there, the simulator built as the
// test was) and returns the text report and the JSON one.
func runBench(t *testing.T, cfg *config, timeout time.Duration) (string, report) {
	t.Helper()
	tmp := t.TempDir()
	cfg.JSON = filepath.Join(tmp, "bench.json")
	cfg.tmpParent = filepath.Join(tmp, "work")
	if err := os.Mkdir(cfg.tmpParent, 0o755); err != nil {
		t.Fatal(err)
	}
	if raceEnabled {
		// Reuse the race-built standard library the test was built with.
		cfg.buildFlags = []string{"-race"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, progress bytes.Buffer
	if err := bench(ctx, *cfg, &out, &progress); err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, progress.String())
	}
	var rep report
	data, err := os.ReadFile(cfg.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return out.String(), rep
}

func TestConfigValidate(t *testing.T) {
	if _, err := parseConfig([]string{"--levels", "1,16,64", "--duration", "1s"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := parseConfig([]string{"--baseline", "relay"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	_, err := parseConfig([]string{"--levels", "0", "--duration", "0", "--rounds", "0"}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("want errors")
	}
	_, err2 := parseConfig([]string{"--awake", "--cpus", "shared", "--baseline", filepath.Join(t.TempDir(), "missing")}, &bytes.Buffer{})
	err = errors.Join(err, err2)
	for _, want := range []string{"--levels", "--duration", "--rounds", "--awake", "--baseline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

func TestDiffRounds(t *testing.T) {
	nan := math.NaN()
	// Each round's a is b plus 0.1, while the rounds themselves drift by
	// far more: pairing cancels the drift.
	var a, b []float64
	for i := range 40 {
		drift := float64(i%7) * 0.5
		a, b = append(a, 20+drift+0.1), append(b, 20+drift)
	}
	d := diffRounds(a, b)
	if d == nil || d.Pairs != 40 || math.Abs(d.MedianMS-0.1) > 1e-9 || d.LowMS > d.MedianMS || d.HighMS < d.MedianMS {
		t.Fatalf("diffRounds = %+v, want median 0.1 over 40 pairs inside its interval", d)
	}
	// A round either target lacks is skipped, not paired with another.
	a[3], b[5] = nan, nan
	if d := diffRounds(a, b); d == nil || d.Pairs != 38 {
		t.Fatalf("with two missing rounds: %+v, want 38 pairs", d)
	}
	if d := diffRounds(a[:minPairs-1], b[:minPairs-1]); d != nil {
		t.Fatalf("too few pairs gave an interval: %+v", d)
	}
	// Noise around zero: the interval holds zero.
	a, b = nil, nil
	for i := range 60 {
		a, b = append(a, 20+float64(i%5)*0.01), append(b, 20+float64((i+2)%5)*0.01)
	}
	if d := diffRounds(a, b); d == nil || d.LowMS > 0 || d.HighMS < 0 {
		t.Fatalf("differences symmetric around zero: %+v, want an interval holding zero", d)
	}
}
