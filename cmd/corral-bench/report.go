package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is the benchmark's outcome, as printed and as written by --json.
type report struct {
	Date         time.Time         `json:"date"`
	Go           string            `json:"go"`
	Platform     string            `json:"platform"`
	CPUs         int               `json:"cpus"`
	CPUMode      string            `json:"cpus_mode"`       // split or shared
	CPUPlacement string            `json:"cpu_placement"`   // the plan, in words
	ProxyAwake   bool              `json:"proxy_cpu_awake"` // --awake: a spinner kept the proxy's CPU from idling
	CPUsObserved map[string]string `json:"cpus_observed"`   // process → CPUs it could run on, read back
	LoadAverage  [2]string         `json:"load_average"`    // 1-minute, at the start and at the end
	Nginx        string            `json:"nginx,omitempty"` // its version; empty when skipped
	NginxSkipped string            `json:"nginx_skipped,omitempty"`
	Baseline     string            `json:"baseline,omitempty"` // --baseline: the other build's binary, or relay
	// BaselineCommand is the baseline's command line, as it was run.
	BaselineCommand string           `json:"baseline_command,omitempty"`
	NginxWorkers    int              `json:"nginx_workers"`
	RequestLog      string           `json:"gateway_request_log"`
	Settings        settings         `json:"settings"`
	Scenarios       []scenarioReport `json:"scenarios"`
	Memory          memoryReport     `json:"memory"`
	Failures        map[string]int   `json:"failures"` // by target, warm-up included
	Targets         []check          `json:"targets"`

	errors map[string]string // by target: the failures, for the text
}

type settings struct {
	Levels    []int   `json:"levels"`
	WarmupS   float64 `json:"warmup_s"`
	DurationS float64 `json:"duration_s"`
	Rounds    int     `json:"rounds"`
	Requests  int     `json:"requests,omitempty"`
	// MinStreams: scenario A ran past the duration to measure this many.
	MinStreams int    `json:"min_streams,omitempty"`
	Model      string `json:"model"`
}

type scenarioReport struct {
	ID      string        `json:"id"`
	Title   string        `json:"title"`
	Path    string        `json:"path"`
	Latency bool          `json:"latency"`
	Levels  []levelReport `json:"levels"`
}

type levelReport struct {
	Concurrency int `json:"concurrency"`
	// Paired: one stream per target and round (see scenario.paired).
	Paired bool `json:"paired,omitempty"`
	// GatewayMinusNginxTTFT compares the two proxies round by round, so
	// that what moved both between rounds cancels out.
	GatewayMinusNginxTTFT *pairedDiff `json:"gateway_minus_nginx_ttft,omitempty"`
	// With --baseline: this build's gateway against the other build's.
	GatewayMinusBaselineTTFT *pairedDiff    `json:"gateway_minus_baseline_ttft,omitempty"`
	Targets                  []targetReport `json:"targets"` // direct, gateway, nginx
}

// targetReport holds one cell; Added* and Ratio are against direct at the
// same level. Latencies are in milliseconds.
type targetReport struct {
	Name     string   `json:"name"`
	Requests int      `json:"requests"`
	Failures int      `json:"failures"`
	Seconds  float64  `json:"seconds"`
	RPS      float64  `json:"requests_per_s"`
	Ratio    *float64 `json:"ratio_vs_direct,omitempty"`
	TTFTP50  *float64 `json:"ttft_p50_ms,omitempty"`
	TTFTP99  *float64 `json:"ttft_p99_ms,omitempty"`
	GapP50   *float64 `json:"gap_p50_ms,omitempty"`
	GapP99   *float64 `json:"gap_p99_ms,omitempty"`
	// TTFTP50Spread is the largest minus the smallest per-round p50.
	TTFTP50Spread   *float64 `json:"ttft_p50_round_spread_ms,omitempty"`
	AddedTTFTP50    *float64 `json:"added_ttft_p50_ms,omitempty"`
	AddedTTFTP99    *float64 `json:"added_ttft_p99_ms,omitempty"`
	AddedGapP50     *float64 `json:"added_gap_p50_ms,omitempty"`
	AddedGapP99     *float64 `json:"added_gap_p99_ms,omitempty"`
	CPUPerRequestUS *float64 `json:"cpu_per_request_us,omitempty"`
	// The simulator's and the load client's CPU per request, each target
	// alike: what going through a proxy costs them.
	SimCPUPerRequestUS  *float64       `json:"sim_cpu_per_request_us,omitempty"`
	LoadCPUPerRequestUS *float64       `json:"load_cpu_per_request_us,omitempty"`
	RSSMaxMiB           *float64       `json:"rss_max_mib,omitempty"`
	Errors              map[string]int `json:"errors,omitempty"`
}

type memoryReport struct {
	Concurrency     int      `json:"concurrency"`
	GatewayRSSMiB   float64  `json:"gateway_rss_max_mib"` // largest VmRSS sampled in scenario A at Concurrency
	GatewayHWMMiB   float64  `json:"gateway_hwm_mib"`     // VmHWM right after it
	GatewayHWMEnd   float64  `json:"gateway_hwm_end_mib"` // VmHWM after the whole run
	NginxRSSMiB     *float64 `json:"nginx_rss_max_mib,omitempty"`
	NginxHWMMiB     *float64 `json:"nginx_hwm_mib,omitempty"`
	NginxProcesses  int      `json:"nginx_processes,omitempty"`
	GatewayMaxProcs int      `json:"gateway_gomaxprocs"`
}

type check struct {
	Target  string `json:"target"`
	Pass    bool   `json:"pass"`
	Detail  string `json:"detail"`
	Skipped bool   `json:"skipped,omitempty"` // not judged: what it needs did not run
}

func opt(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func sub(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	return opt(*a - *b)
}

func (b *benchRun) report(scs []*scenario) *report {
	cfg := b.cfg
	r := &report{
		Date:         time.Now().UTC().Truncate(time.Second),
		Go:           runtime.Version(),
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:         runtime.NumCPU(),
		CPUMode:      b.cpus.mode,
		CPUPlacement: b.cpus.describe(),
		ProxyAwake:   b.cpus.awake,
		CPUsObserved: b.placed,
		LoadAverage:  b.load,
		NginxSkipped: b.skipped,
		NginxWorkers: cfg.NginxWorkers,
		RequestLog:   "off: JSON handler writing to io.Discard (formatted, not written)",
		Settings: settings{Levels: cfg.Levels, WarmupS: cfg.Warmup.Seconds(), DurationS: cfg.Duration.Seconds(),
			Rounds: cfg.Rounds, Requests: cfg.Requests, MinStreams: cfg.MinStreams, Model: cfg.Model},
		Failures: map[string]int{},
		errors:   map[string]string{},
	}
	if cfg.Verbose {
		r.RequestLog = "on: JSON lines to gateway.log in the work directory"
	}
	if cfg.Full {
		r.RequestLog += "; full stack: API key manager, usage metering with quotas, Prometheus metrics"
	}
	if b.nginx != nil {
		r.Nginx = b.nginx.version
	}
	r.Baseline = cfg.Baseline
	if b.baseline != nil {
		r.BaselineCommand = strings.Join(b.baseline.cmd.Args, " ")
	}
	errs := map[string]*sample{}
	for _, t := range b.targets {
		errs[t.name] = &sample{}
		if w := b.warm[t.name]; w != nil {
			errs[t.name].add(sample{failures: w.failures, errors: w.errors, example: w.example})
		}
	}
	for _, sc := range scs {
		sr := scenarioReport{ID: sc.id, Title: sc.title, Path: sc.api.path, Latency: sc.latency}
		for _, level := range cfg.Levels {
			lr := levelReport{Concurrency: level, Paired: sc.paired(level, cfg)}
			if g, n := sc.results[level]["gateway"], sc.results[level]["nginx"]; sc.latency && g != nil && n != nil {
				lr.GatewayMinusNginxTTFT = diffRounds(g.roundTTFT, n.roundTTFT)
			}
			if g, bl := sc.results[level]["gateway"], sc.results[level]["baseline"]; sc.latency && g != nil && bl != nil {
				lr.GatewayMinusBaselineTTFT = diffRounds(g.roundTTFT, bl.roundTTFT)
			}
			var direct targetReport
			for _, t := range b.targets {
				res := sc.results[level][t.name]
				tr := cell(t.name, res, sc.latency)
				if lr.Paired {
					tr.TTFTP50Spread = nil // rounds of one stream: the spread of single streams
				}
				errs[t.name].add(sample{failures: res.failures, errors: res.errors, example: res.example})
				if t.name == "direct" {
					direct = tr
				} else {
					tr.Ratio = opt(tr.RPS / direct.RPS)
					tr.AddedTTFTP50 = sub(tr.TTFTP50, direct.TTFTP50)
					tr.AddedTTFTP99 = sub(tr.TTFTP99, direct.TTFTP99)
					tr.AddedGapP50 = sub(tr.GapP50, direct.GapP50)
					tr.AddedGapP99 = sub(tr.GapP99, direct.GapP99)
				}
				lr.Targets = append(lr.Targets, tr)
			}
			sr.Levels = append(sr.Levels, lr)
		}
		r.Scenarios = append(r.Scenarios, sr)
	}
	for name, s := range errs {
		r.Failures[name] = s.failures
		if s.failures > 0 {
			var parts []string
			for k, v := range s.errors {
				parts = append(parts, fmt.Sprintf("%d %s", v, k))
			}
			slices.Sort(parts)
			r.errors[name] = strings.Join(parts, ", ") + "; e.g. " + truncate(s.example, 200)
		}
	}

	top := cfg.maxLevel()
	r.Memory = memoryReport{Concurrency: top, GatewayHWMMiB: float64(b.gatewayHWM) / mib,
		GatewayHWMEnd: float64(b.gatewayHWMEnd) / mib, GatewayMaxProcs: runtime.NumCPU()}
	if b.cpus.split() {
		r.Memory.GatewayMaxProcs = b.cpus.proxyCPUs()
	}
	if cfg.MaxProcs > 0 {
		r.Memory.GatewayMaxProcs = cfg.MaxProcs
	}
	if a := r.find("A", top, "gateway"); a != nil && a.RSSMaxMiB != nil {
		r.Memory.GatewayRSSMiB = *a.RSSMaxMiB
	}
	if b.nginx != nil {
		if a := r.find("A", top, "nginx"); a != nil {
			r.Memory.NginxRSSMiB = a.RSSMaxMiB
		}
		r.Memory.NginxHWMMiB = opt(float64(b.nginxHWM) / mib)
		r.Memory.NginxProcesses = len(b.nginx.pids())
	}
	r.Targets = r.checks()
	return r
}

// cell summarises one target's result.
func cell(name string, res *result, latency bool) targetReport {
	tr := targetReport{Name: name, Requests: res.requests, Failures: res.failures, Seconds: res.elapsed.Seconds(), Errors: res.errors}
	if res.elapsed > 0 {
		tr.RPS = float64(res.requests-res.failures) / res.elapsed.Seconds()
	}
	if latency {
		tr.TTFTP50 = opt(percentile(res.ttft, 50))
		tr.TTFTP99 = opt(percentile(res.ttft, 99))
		tr.GapP50 = opt(percentile(res.gaps, 50))
		tr.GapP99 = opt(percentile(res.gaps, 99))
		if len(res.roundTTFT) > 1 {
			tr.TTFTP50Spread = opt(slices.Max(res.roundTTFT) - slices.Min(res.roundTTFT))
		}
	}
	if res.requests > 0 {
		perRequest := func(d time.Duration) *float64 { return opt(float64(d.Microseconds()) / float64(res.requests)) }
		if name != "direct" {
			tr.CPUPerRequestUS = perRequest(res.cpu)
		}
		tr.SimCPUPerRequestUS, tr.LoadCPUPerRequestUS = perRequest(res.simCPU), perRequest(res.loadCPU)
	}
	if res.rss > 0 {
		tr.RSSMaxMiB = opt(float64(res.rss) / mib)
	}
	return tr
}

// level is one level of a scenario, or nil.
func (r *report) level(id string, level int) *levelReport {
	for i := range r.Scenarios {
		if r.Scenarios[i].ID != id {
			continue
		}
		for j := range r.Scenarios[i].Levels {
			if lr := &r.Scenarios[i].Levels[j]; lr.Concurrency == level {
				return lr
			}
		}
	}
	return nil
}

// find is one cell, or nil.
func (r *report) find(id string, level int, name string) *targetReport {
	lr := r.level(id, level)
	if lr == nil {
		return nil
	}
	for k := range lr.Targets {
		if t := &lr.Targets[k]; t.Name == name {
			return t
		}
	}
	return nil
}

// has says whether scenario id ran.
func (r *report) has(id string) bool {
	for _, sc := range r.Scenarios {
		if sc.ID == id {
			return true
		}
	}
	return false
}

// checks judges the gateway against the targets.
func (r *report) checks() []check {
	levels := r.Settings.Levels
	top := slices.Max(levels)
	var out []check
	notJudged := func(name, why string) { out = append(out, check{name, false, "not judged: " + why, true}) }

	const ttft, ttftNginx = "added TTFT p50 < 1 ms", "added TTFT p50 below nginx's"
	switch {
	case !r.has("A"):
		notJudged(ttft, "scenario A not run")
		notJudged(ttftNginx, "scenario A not run")
	default:
		var vals []string
		pass := true
		for _, l := range levels {
			v := r.find("A", l, "gateway").AddedTTFTP50
			vals = append(vals, f2(v))
			pass = pass && v != nil && *v < 1
		}
		out = append(out, check{Target: ttft, Pass: pass, Detail: fmt.Sprintf("c=%s: %s ms", joinLevels(levels), strings.Join(vals, "/"))})
		if r.Nginx == "" {
			notJudged(ttftNginx, "nginx skipped")
			break
		}
		vals, pass = nil, true
		var noise []string
		for _, l := range levels {
			g, n := r.find("A", l, "gateway").AddedTTFTP50, r.find("A", l, "nginx").AddedTTFTP50
			vals = append(vals, f2(g)+" vs "+f2(n))
			pass = pass && g != nil && n != nil && *g < *n
			// Strict as the issue states it; the paired difference, or
			// else how far direct's p50 moved between rounds, says which
			// differences are noise.
			if d := r.level("A", l).GatewayMinusNginxTTFT; d != nil {
				noise = append(noise, fmt.Sprintf("c=%d gateway-nginx paired: %s", l, d))
			} else if sp := r.find("A", l, "direct").TTFTP50Spread; sp != nil {
				noise = append(noise, fmt.Sprintf("c=%d direct's p50 moved by %s ms", l, f2(sp)))
			}
		}
		detail := fmt.Sprintf("c=%s: %s ms", joinLevels(levels), strings.Join(vals, ", "))
		if len(noise) > 0 {
			detail += " (" + strings.Join(noise, "; ") + ")"
		}
		out = append(out, check{Target: ttftNginx, Pass: pass, Detail: detail})
	}

	tput, tputNginx := fmt.Sprintf("throughput at c=%d >= 0.9x direct", top), fmt.Sprintf("throughput at c=%d >= nginx's", top)
	switch {
	case !r.has("B"):
		notJudged(tput, "scenario B not run")
		notJudged(tputNginx, "scenario B not run")
	default:
		g := r.find("B", top, "gateway")
		out = append(out, check{Target: tput, Pass: g.Ratio != nil && *g.Ratio >= 0.9, Detail: fx(g.Ratio)})
		if r.Nginx == "" {
			notJudged(tputNginx, "nginx skipped")
			break
		}
		n := r.find("B", top, "nginx")
		out = append(out, check{Target: tputNginx, Pass: g.Ratio != nil && n.Ratio != nil && *g.Ratio >= *n.Ratio, Detail: fx(g.Ratio) + " vs " + fx(n.Ratio)})
	}

	rss := fmt.Sprintf("gateway RSS < 64 MiB at %d streams", top)
	if !r.has("A") {
		notJudged(rss, "scenario A not run")
	} else {
		peak := max(r.Memory.GatewayHWMMiB, r.Memory.GatewayRSSMiB)
		out = append(out, check{Target: rss, Pass: peak > 0 && peak < 64, Detail: fmt.Sprintf("peak %.1f MiB", peak)})
	}
	return out
}

func joinLevels(ls []int) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = fmt.Sprint(l)
	}
	return strings.Join(s, "/")
}

func f2(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

func fx(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *v)
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
