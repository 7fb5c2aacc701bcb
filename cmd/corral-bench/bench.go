package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// scenario is one kind of load, run at every level against every target.
type scenario struct {
	id       string // "A", "B", "A/ndjson", "B/ndjson"
	title    string
	api      api
	first    time.Duration
	interval time.Duration
	tokens   int
	latency  bool // A: time to first token and gaps; B: requests/s

	results map[int]map[string]*result // level → target → result
}

// paired says whether a level measures one stream per target and round:
// at concurrency 1 of a latency scenario, where streams run one at a
// time anyway, unless --requests caps the run.
func (sc *scenario) paired(level int, cfg config) bool {
	return sc.latency && level == 1 && cfg.MinStreams > 0 && cfg.Requests == 0
}

// result is one target at one level of one scenario.
type result struct {
	sample
	cpu time.Duration // used by the target's processes while measured
	// What the simulator and this process (the load client) used
	// meanwhile: a proxy costs them too, and where they bound the
	// throughput (split), that is where it goes.
	simCPU, loadCPU time.Duration
	rss             uint64 // the largest RSS sampled, where sampled
	// roundTTFT is the TTFT p50 of each round, in the rounds' order: how
	// far it moves between rounds is the noise a difference between
	// proxies must exceed, and in paired levels (one stream a round) the
	// rounds pair the targets' streams.
	roundTTFT []float64
}

func scenarios(cfg config) []*scenario {
	var out []*scenario
	apis := []api{apiOpenAI}
	if cfg.NDJSON {
		apis = append(apis, apiOllama)
	}
	for _, a := range apis {
		suffix := ""
		if a != apiOpenAI {
			suffix = "/ndjson"
		}
		if strings.Contains(cfg.Scenarios, "A") {
			out = append(out, &scenario{id: "A" + suffix, api: a, first: cfg.FirstToken, interval: cfg.Interval, tokens: cfg.Chunks, latency: true,
				title: fmt.Sprintf("%d chunks, %s first, %s apart", cfg.Chunks, fmtDur(cfg.FirstToken), fmtDur(cfg.Interval))})
		}
		if strings.Contains(cfg.Scenarios, "B") {
			out = append(out, &scenario{id: "B" + suffix, api: a, tokens: cfg.Tokens,
				title: fmt.Sprintf("%d tokens, no delay", cfg.Tokens)})
		}
	}
	return out
}

func fmtDur(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	}
	return d.String()
}

// benchRun is the state of one benchmark run.
type benchRun struct {
	cfg      config
	cpus     cpuPlan
	placed   map[string]string // process → the CPUs it could run on, as read back
	progress io.Writer
	targets  []*target
	gateway  *child
	baseline *child // --baseline
	nginx    *nginx
	simPID   int
	skipped  string             // why nginx is not measured
	warm     map[string]*sample // warm-up, by target: its failures count too
	load     [2]string          // load average at the start and at the end

	gatewayHWM    uint64 // VmHWM at the end of scenario A's top level
	gatewayHWMEnd uint64 // at the end of the whole run
	nginxHWM      uint64
}

// bench runs the whole benchmark and writes the report to stdout.
func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the benchmark reads /proc: it runs on Linux only")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(cfg.tmpParent, "corral-bench-")
	if err != nil {
		return err
	}
	if cfg.Verbose {
		defer fmt.Fprintf(stderr, "corral-bench: logs and configs kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	plan, err := planCPUs(cfg.CPUs)
	if err != nil {
		return err
	}
	if err := plan.pinSelf(); err != nil {
		// A container may forbid it: measure shared rather than not at all.
		fmt.Fprintf(stderr, "corral-bench: %v; running with --cpus shared\n", err)
		plan = plan.shared("split failed: " + err.Error())
	}
	defer func() {
		if err := plan.unpinSelf(); err != nil {
			fmt.Fprintf(stderr, "corral-bench: %v\n", err)
		}
	}()
	spinnerCPUs := ""
	if cfg.Awake && plan.split() {
		sp, err := startSpinner(ctx, dir, plan)
		if err != nil {
			return err
		}
		defer sp.stop()
		// Reported as read back: the spinner's policy and its CPU.
		plan.awake, spinnerCPUs = spinsIdle(sp.pid()), cpusOf(sp.pid())
	}
	b := &benchRun{cfg: cfg, cpus: plan, progress: stderr, warm: map[string]*sample{}, load: [2]string{loadAverage()}}
	defer func() {
		for _, t := range b.targets {
			t.client.CloseIdleConnections()
		}
	}()

	simBin := cfg.Sim
	if simBin == "" {
		b.logf("building the simulator")
		if simBin, err = buildSim(ctx, dir, cfg.buildFlags); err != nil {
			return err
		}
	}
	s, err := startSim(ctx, dir, simBin, cfg.Model)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.preload(ctx, cfg.Model); err != nil {
		return err
	}
	b.simPID = s.pid()

	clients := max(cfg.maxLevel(), 1)
	direct := &target{name: "direct", base: s.base, client: newClient(clients)}
	b.targets = append(b.targets, direct)

	gw, addr, err := startGateway(ctx, dir, "gateway", self, "gateway", s.base, cfg, plan)
	if err != nil {
		return err
	}
	defer gw.stop()
	b.gateway = gw
	b.placed = map[string]string{"load client": cpusOf(os.Getpid()), "simulator": cpusOf(s.pid()), "gateway": cpusOf(gw.pid())}
	if spinnerCPUs != "" {
		b.placed["spinner"] = spinnerCPUs
	}
	// A gateway child is a target of one process.
	gatewayTarget := func(name string, c *child, addr string) *target {
		return &target{name: name, base: "http://" + addr, client: newClient(clients), pids: func() []int { return []int{c.pid()} }}
	}
	b.targets = append(b.targets, gatewayTarget("gateway", gw, addr))
	if cfg.Baseline != "" {
		bin, mode := cfg.Baseline, "gateway"
		if bin == baselineRelay {
			bin, mode = self, "relay"
		}
		bl, addr, err := startGateway(ctx, dir, "baseline", bin, mode, s.base, cfg, plan)
		if err != nil {
			return fmt.Errorf("baseline %s: %w", cfg.Baseline, err)
		}
		defer bl.stop()
		b.baseline = bl
		b.placed["baseline"] = cpusOf(bl.pid())
		b.targets = append(b.targets, gatewayTarget("baseline", bl, addr))
	}

	bin, why := findNginx(cfg.Nginx)
	if bin != "" {
		n, err := startNginx(ctx, dir, bin, strings.TrimPrefix(s.base, "http://"), cfg.NginxWorkers, nginxKeepalive(cfg), plan)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			why = "nginx did not start: " + err.Error()
		default:
			defer n.stop()
			b.nginx = n
			b.placed["nginx worker"] = cpusOf(n.workers[0])
			b.targets = append(b.targets, &target{name: "nginx", base: n.base, client: newClient(clients), pids: n.pids})
		}
	}
	if b.nginx == nil {
		b.skipped = why
		b.logf("skipping nginx: %s", why)
	}

	scs := scenarios(cfg)
	for _, sc := range scs {
		if err := b.runScenario(ctx, s, sc); err != nil {
			return err
		}
	}
	if m, err := readMemory(gw.pid()); err == nil {
		b.gatewayHWMEnd = m.HWM
	}
	b.load[1] = loadAverage()
	rep := b.report(scs)
	rep.writeText(stdout)
	if cfg.JSON != "" {
		if err := rep.writeJSON(cfg.JSON); err != nil {
			return err
		}
	}
	if gw.exited() {
		return gw.failure()
	}
	return nil
}

// startGateway runs `corral-bench gateway` (self: this binary, or a
// baseline's), or with mode "relay" this binary's relay, in front of the
// simulator and returns the address it printed.
func startGateway(ctx context.Context, dir, name, self, mode, upstream string, cfg config, plan cpuPlan) (*child, string, error) {
	args := []string{self, mode, "--listen", "127.0.0.1:0", "--upstream", upstream}
	if mode == "gateway" {
		args = append(args, "--model", cfg.Model, "--key", benchKey)
		if cfg.Verbose {
			args = append(args, "--verbose")
		}
		if cfg.Full {
			args = append(args, "--full")
		}
	}
	if cfg.CPUProfile != "" && name == "gateway" {
		prof, err := filepath.Abs(cfg.CPUProfile)
		if err != nil {
			return nil, "", err
		}
		args = append(args, "--cpuprofile", prof)
	}
	env := os.Environ()
	if cfg.MaxProcs > 0 {
		env = environ([]string{"GOMAXPROCS"}, fmt.Sprintf("GOMAXPROCS=%d", cfg.MaxProcs))
	}
	var c *child
	err := plan.onProxyCPUs(func() (err error) {
		c, err = startChild(ctx, dir, name, env, args...)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	// It prints the address once it listens: connections queue from then on.
	addr, err := c.firstLine(ctx, 15*time.Second)
	if err != nil {
		c.stop()
		return nil, "", err
	}
	return c, addr, nil
}

func (b *benchRun) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "corral-bench: "+format+"\n", args...)
}

// runScenario measures every target at every level, warming each up
// first and interleaving the targets in rounds so that noise on the
// machine hits all of them alike.
func (b *benchRun) runScenario(ctx context.Context, s *sim, sc *scenario) error {
	if err := s.configure(ctx, sc.first, sc.interval, sc.tokens); err != nil {
		return err
	}
	sc.results = map[int]map[string]*result{}
	for _, level := range b.cfg.Levels {
		base := load{
			api: sc.api, body: requestBody(b.cfg.Model), key: benchKey, concurrency: level,
			wantChunks: sc.tokens, latency: sc.latency, timeout: 60*time.Second + sc.first + time.Duration(sc.tokens)*sc.interval,
		}
		res := map[string]*result{}
		sc.results[level] = res
		if b.cfg.Warmup > 0 {
			for _, t := range b.targets {
				w := base
				w.duration, w.latency = b.cfg.Warmup, false
				ws, err := w.run(ctx, t)
				if err != nil {
					return err
				}
				if b.warm[t.name] == nil {
					b.warm[t.name] = &sample{}
				}
				b.warm[t.name].add(ws)
			}
		}
		// At the top level the gateway's memory is sampled, in every
		// scenario: the bound is on its RSS with that many streams open.
		top := level == b.cfg.maxLevel()
		rounds, slice := b.cfg.Rounds, b.cfg.Duration/time.Duration(b.cfg.Rounds)
		paired := sc.paired(level, b.cfg)
		if paired {
			// One stream per target and round: the targets' streams of a
			// round run back to back, so a drift in the machine's speed
			// moves them alike and their differences stay comparable.
			rounds, slice = max(b.cfg.Rounds, b.cfg.MinStreams), b.cfg.Duration
		}
		for round := range rounds {
			for i := range b.targets {
				t := b.targets[(i+round)%len(b.targets)]
				m := base
				m.duration = slice
				switch {
				case paired:
					m.requests = 1
				case b.cfg.Requests > 0:
					m.requests = max(1, b.cfg.Requests/b.cfg.Rounds)
				}
				if sc.latency && b.cfg.MinStreams > 0 && !paired {
					m.minRequests = (b.cfg.MinStreams + b.cfg.Rounds - 1) / b.cfg.Rounds
				}
				if !paired || round%10 == 0 {
					b.logf("scenario %s c=%d round %d/%d: %s", sc.id, level, round+1, rounds, t.name)
				}
				r, err := b.measure(ctx, t, m, top)
				if err != nil {
					return err
				}
				if res[t.name] == nil {
					res[t.name] = &result{}
				}
				acc := res[t.name]
				acc.add(r.sample)
				acc.cpu += r.cpu
				acc.simCPU += r.simCPU
				acc.loadCPU += r.loadCPU
				acc.rss = max(acc.rss, r.rss)
				if sc.latency {
					acc.roundTTFT = append(acc.roundTTFT, percentile(r.ttft, 50)) // NaN: no stream completed
				}
			}
		}
		if top && sc.id == "A" {
			if m, err := readMemory(b.gateway.pid()); err == nil {
				b.gatewayHWM = m.HWM
			}
			if b.nginx != nil {
				if m, err := sumMemory(b.nginx.pids()); err == nil {
					b.nginxHWM = m.HWM
				}
			}
		}
	}
	return nil
}

// measure runs one load against t, with the CPU its processes used and,
// when sampleMem, their largest RSS meanwhile.
func (b *benchRun) measure(ctx context.Context, t *target, l load, sampleMem bool) (result, error) {
	var r result
	var pids []int
	if t.pids != nil {
		pids = t.pids()
	}
	// The simulator and the load client first, then the target's own.
	measured := append([]int{b.simPID, os.Getpid()}, pids...)
	cpu0, err := readCPU(measured)
	if err != nil {
		return r, fmt.Errorf("%s: %w", t.name, err)
	}
	var sampler *rssSampler
	if sampleMem && len(pids) > 0 {
		sampler = sampleRSS(pids, 50*time.Millisecond)
	}
	r.sample, err = l.run(ctx, t)
	if sampler != nil {
		r.rss = sampler.stop()
	}
	if err != nil {
		return r, err
	}
	cpu1, err := readCPU(measured)
	if err != nil {
		return r, fmt.Errorf("%s: %w", t.name, err)
	}
	used := cpu1.since(cpu0)
	r.simCPU, r.loadCPU = used[0], used[1]
	for _, d := range used[2:] {
		r.cpu += d
	}
	return r, nil
}
