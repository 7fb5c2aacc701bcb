package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// writeText prints the report as a table.
func (r *report) writeText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	nginx := "nginx skipped (" + r.NginxSkipped + ")"
	if r.Nginx != "" {
		nginx = r.Nginx
	}
	p("corral-bench %s: ollama-sim direct vs. corral gateway vs. %s; loopback, %d CPUs, %s %s",
		r.Date.Format("2006-01-02 15:04 UTC"), nginx, r.CPUs, r.Go, r.Platform)
	p("  CPUs %s", r.CPUPlacement)
	if len(r.CPUsObserved) > 0 {
		var seen []string
		for _, name := range []string{"load client", "simulator", "gateway", "baseline", "nginx worker", "spinner"} {
			if c, ok := r.CPUsObserved[name]; ok {
				seen = append(seen, name+" "+c)
			}
		}
		p("  affinity read back: %s", strings.Join(seen, ", "))
	}
	p("  load average %s at the start, %s at the end (anything else running skews all targets; rounds spread it)", r.LoadAverage[0], r.LoadAverage[1])
	s := r.Settings
	atLeast := ""
	if s.MinStreams > 0 && r.has("A") {
		atLeast = fmt.Sprintf(" (scenario A: longer where needed for %d streams)", s.MinStreams)
	}
	p("  each cell: %s warm-up, then %s measured%s in %d round(s), targets interleaved; model %s",
		secs(s.WarmupS), secs(s.DurationS), atLeast, s.Rounds, s.Model)
	if r.FullStack {
		p("  gateway: full stack, as corral serve runs it: API key manager, usage metering with quotas, Prometheus metrics;")
	} else {
		p("  gateway: bare (--full=false): a plain key check, no metering or metrics (the bounds are for the full stack);")
	}
	p("           net/http behind the front door with its default limits (per-address cap lifted: the load is one address),")
	p("           GOMAXPROCS %d, request log %s", r.Memory.GatewayMaxProcs, r.RequestLog)
	switch r.Baseline {
	case "":
	case baselineRelay:
		p("  baseline: a bare TCP relay (corral-bench relay): bytes copied both ways, a goroutine per direction,")
		p("            an upstream connection per client connection, no HTTP: the floor of a Go proxy here")
	default:
		p("  baseline: the gateway of %s, run the same way", r.Baseline)
	}
	if r.Nginx != "" {
		why := "one event loop on the proxy's CPU"
		if r.CPUMode != cpusSplit {
			why = "one event loop; the load client, simulator and proxy share the cores"
		}
		p("  nginx: worker_processes %d (%s), proxy_buffering off,", r.NginxWorkers, why)
		p("         proxy_request_buffering off, HTTP/1.1 upstream keepalive %d, access_log off", r.NginxKeepalive)
	}
	for _, sc := range r.Scenarios {
		p("")
		if sc.Latency {
			r.latencyTable(w, sc)
		} else {
			r.throughputTable(w, sc)
		}
	}
	p("")
	r.cpuTable(w)
	p("")
	m := r.Memory
	var by []string
	for _, sc := range r.Scenarios {
		if v, ok := m.GatewayRSSByScenario[sc.ID]; ok {
			by = append(by, fmt.Sprintf("scenario %s %.1f MiB", sc.ID, v))
		}
	}
	p("gateway RSS at c=%d (%d concurrent streams), largest VmRSS sampled every 50 ms: %s; VmHWM after the whole run %.1f MiB",
		m.Concurrency, m.Concurrency, strings.Join(by, ", "), m.GatewayHWMEnd)
	if m.NginxRSSMiB != nil {
		p("nginx RSS at c=%d (master + workers, %d processes): VmRSS %.1f MiB (largest sampled), peak VmHWM %s MiB",
			m.Concurrency, m.NginxProcesses, *m.NginxRSSMiB, f1(m.NginxHWMMiB))
	}
	var fails []string
	for _, name := range reportOrder {
		if n, ok := r.Failures[name]; ok {
			fails = append(fails, fmt.Sprintf("%s %d", name, n))
		}
	}
	p("failures (truncated or errored streams, warm-up included): %s", strings.Join(fails, ", "))
	for _, name := range reportOrder {
		if e := r.errors[name]; e != "" {
			p("  %s: %s", name, e)
		}
	}
	if r.FullStack {
		p("bounds (the issue's; judged on the full stack):")
	} else {
		p("bounds (the issue's, which are for the full stack; this run's gateway was bare, --full=false):")
	}
	for _, c := range r.Bounds {
		verdict := "MISS"
		switch {
		case c.Pass:
			verdict = "PASS"
		case c.Skipped:
			verdict = "n/a "
		}
		p("  %s  %-40s %s", verdict, c.Target, c.Detail)
	}
}

// reportOrder is the order the report names the targets in.
var reportOrder = []string{"direct", "gateway", "nginx", "baseline"}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

func f1(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

func (r *report) header(w io.Writer, sc scenarioReport) {
	fmt.Fprintf(w, "scenario %s: %s (%s)\n", sc.ID, sc.Title, wire(sc.Path))
	fmt.Fprintf(w, "  %-44s", "")
	for _, l := range r.Settings.Levels {
		fmt.Fprintf(w, " %-14s", fmt.Sprintf("c=%d", l))
	}
	fmt.Fprintln(w)
}

func wire(path string) string {
	if strings.HasPrefix(path, "/v1/") {
		return path + ", SSE"
	}
	return path + ", NDJSON"
}

func (r *report) row(w io.Writer, label string, sc scenarioReport, value func(lr levelReport) string) {
	fmt.Fprintf(w, "  %-44s", label)
	for _, lr := range sc.Levels {
		fmt.Fprintf(w, " %-14s", value(lr))
	}
	fmt.Fprintln(w)
}

func pick(lr levelReport, name string) *targetReport {
	for i := range lr.Targets {
		if lr.Targets[i].Name == name {
			return &lr.Targets[i]
		}
	}
	return nil
}

func pair(lr levelReport, get func(*targetReport) *float64) string {
	g, n := pick(lr, "gateway"), pick(lr, "nginx")
	s := f2(get(g)) + "/"
	if n == nil {
		return s + "-"
	}
	return s + f2(get(n))
}

func (r *report) latencyTable(w io.Writer, sc scenarioReport) {
	r.header(w, sc)
	both := func(get func(*targetReport) *float64, get2 func(*targetReport) *float64) func(levelReport) string {
		return func(lr levelReport) string {
			d := pick(lr, "direct")
			return f2(get(d)) + "/" + f2(get2(d))
		}
	}
	r.row(w, "direct TTFT p50/p99 (ms)", sc, both(func(t *targetReport) *float64 { return t.TTFTP50 }, func(t *targetReport) *float64 { return t.TTFTP99 }))
	if r.Settings.Rounds > 1 {
		r.row(w, "TTFT p50 round spread (ms) direct/gw/nginx", sc, eachTarget(func(t *targetReport) string { return f2(t.TTFTP50Spread) }))
	}
	r.row(w, "added TTFT p50 (ms)          gateway/nginx", sc, func(lr levelReport) string {
		return pair(lr, func(t *targetReport) *float64 { return t.AddedTTFTP50 })
	})
	r.row(w, "added TTFT p99 (ms)          gateway/nginx", sc, func(lr levelReport) string {
		return pair(lr, func(t *targetReport) *float64 { return t.AddedTTFTP99 })
	})
	r.row(w, "direct gap p50/p99 (ms)", sc, both(func(t *targetReport) *float64 { return t.GapP50 }, func(t *targetReport) *float64 { return t.GapP99 }))
	r.row(w, "added gap p50 (ms)           gateway/nginx", sc, func(lr levelReport) string {
		return pair(lr, func(t *targetReport) *float64 { return t.AddedGapP50 })
	})
	r.row(w, "added gap p99 (ms)           gateway/nginx", sc, func(lr levelReport) string {
		return pair(lr, func(t *targetReport) *float64 { return t.AddedGapP99 })
	})
	r.row(w, "streams measured      direct/gateway/nginx", sc, eachTarget(func(t *targetReport) string { return fmt.Sprint(t.Requests) }))
	for _, lr := range sc.Levels {
		if d := lr.GatewayMinusNginxTTFT; d != nil {
			how := "rounds"
			if lr.Paired {
				how = "streams, one per target and round"
			}
			fmt.Fprintf(w, "  c=%d gateway TTFT minus nginx's, paired by %s: %s\n", lr.Concurrency, how, d)
		}
	}
	for _, lr := range sc.Levels {
		if bl := pick(lr, "baseline"); bl != nil {
			fmt.Fprintf(w, "  c=%d baseline: added TTFT p50 %s ms, p99 %s ms; gateway TTFT minus baseline's, paired: %s\n",
				lr.Concurrency, f2(bl.AddedTTFTP50), f2(bl.AddedTTFTP99), lr.GatewayMinusBaselineTTFT)
		}
	}
}

// eachTarget is a cell holding one value per target of the table's
// columns: direct, gateway, nginx (a baseline has its own lines).
func eachTarget(value func(*targetReport) string) func(levelReport) string {
	return func(lr levelReport) string {
		var s []string
		for _, name := range []string{"direct", "gateway", "nginx"} {
			if t := pick(lr, name); t != nil {
				s = append(s, value(t))
			}
		}
		return strings.Join(s, "/")
	}
}

func (r *report) throughputTable(w io.Writer, sc scenarioReport) {
	fmt.Fprintf(w, "scenario %s: %s (%s)\n", sc.ID, sc.Title, wire(sc.Path))
	fmt.Fprintf(w, "  %-8s %12s | %-18s | %-18s\n", "req/s", "direct", "gateway (ratio)", "nginx (ratio)")
	for _, lr := range sc.Levels {
		fmt.Fprintf(w, "  %-8s %12.0f", fmt.Sprintf("c=%d", lr.Concurrency), pick(lr, "direct").RPS)
		for _, name := range []string{"gateway", "nginx"} {
			if t := pick(lr, name); t != nil {
				fmt.Fprintf(w, " | %-18s", fmt.Sprintf("%.0f (%s)", t.RPS, fx(t.Ratio)))
			} else {
				fmt.Fprintf(w, " | %-18s", "-")
			}
		}
		fmt.Fprintln(w)
	}
	for _, lr := range sc.Levels {
		if bl := pick(lr, "baseline"); bl != nil {
			fmt.Fprintf(w, "  c=%d baseline: %.0f req/s (%s)\n", lr.Concurrency, bl.RPS, fx(bl.Ratio))
		}
	}
}

func (r *report) cpuTable(w io.Writer) {
	source := "the scheduler's count per thread, /proc/PID/task/TID/schedstat"
	if r.CPUSource != "schedstat" {
		source = "/proc/PID/stat, 10 ms ticks"
	}
	fmt.Fprintf(w, "CPU (µs, user+sys: %s): the proxy's per request and per chunk passed,\n", source)
	fmt.Fprintln(w, "and per request what each target costs the simulator and the load client")
	fmt.Fprintf(w, "  %-19s %-15s  %-15s  %-23s  %s\n", "", "proxy/request", "proxy/chunk", "simulator/request", "load client/request")
	fmt.Fprintf(w, "  %-19s %7s %7s  %7s %7s  %7s %7s %7s  %7s %7s %7s\n", "", "gateway", "nginx", "gateway", "nginx", "direct", "gateway", "nginx", "direct", "gateway", "nginx")
	for _, sc := range r.Scenarios {
		for _, lr := range sc.Levels {
			v := func(name string, f func(*targetReport) *float64) any {
				if t := pick(lr, name); t != nil {
					return f1(f(t))
				}
				return "-"
			}
			proxy := func(t *targetReport) *float64 { return t.CPUPerRequestUS }
			chunk := func(t *targetReport) *float64 { return t.CPUPerChunkUS }
			sim := func(t *targetReport) *float64 { return t.SimCPUPerRequestUS }
			load := func(t *targetReport) *float64 { return t.LoadCPUPerRequestUS }
			cols := []any{v("gateway", proxy), v("nginx", proxy), v("gateway", chunk), v("nginx", chunk),
				v("direct", sim), v("gateway", sim), v("nginx", sim), v("direct", load), v("gateway", load), v("nginx", load)}
			fmt.Fprintf(w, "  scenario %-4s c=%-4d %7s %7s  %7s %7s  %7s %7s %7s  %7s %7s %7s\n", append([]any{sc.ID, lr.Concurrency}, cols...)...)
		}
	}
	if g := r.gatewayCPUMS(); g != "" {
		fmt.Fprintf(w, "  gateway CPU measured per cell (ms): %s\n", g)
	}
}

// gatewayCPUMS is the gateway's CPU time in each cell, in ms: what the
// per-request and per-chunk figures rest on.
func (r *report) gatewayCPUMS() string {
	var s []string
	for _, sc := range r.Scenarios {
		var vs []string
		for _, lr := range sc.Levels {
			if t := pick(lr, "gateway"); t != nil && t.CPUMS != nil {
				vs = append(vs, fmt.Sprintf("%.0f", *t.CPUMS))
			} else {
				vs = append(vs, "-")
			}
		}
		s = append(s, fmt.Sprintf("%s c=%s: %s", sc.ID, joinLevels(r.Settings.Levels), strings.Join(vs, "/")))
	}
	return strings.Join(s, "; ")
}
