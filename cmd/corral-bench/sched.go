package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"corral/proxy/gateway"
	"corral/proxy/scheduler"
)

// The scheduling benchmark (corral-bench sched) runs corral's gateway in
// this process over two instances, with each placement policy in turn
// against the same loads:
//
//   - random: every request straight to an instance picked at random,
//     as a balancer that ignores models does;
//   - pass-through: the gateway placing every request at once on the
//     instance that holds its model with the fewest in flight, leaving
//     the waiting to Ollama (corral before its queue);
//   - scheduler: the gateway with corral's queue, as corral serve runs.
//
// and reports model swaps, throughput and time to first token for (a) a
// mixed two-model load, (b) a one-model load, (c) one key flooding while
// another sends a request a second. The instances are simulators it
// starts (one request at a time per loaded model, room for one model) or,
// with --upstreams, any two Ollama servers that hold both models.

type schedConfig struct {
	sim           string
	upstreams     []string
	models        []string
	slots         int
	loadDelay     time.Duration
	tokenInterval time.Duration
	tokens        int
	mixedN        int
	mixedClients  int
	oneN          int
	oneClients    int
	floodStreams  int
	floodFor      time.Duration
	lightEvery    time.Duration
	poll          time.Duration
	seed          uint64
	jsonOut       string
	dir           string
}

func parseSchedConfig(args []string, stderr io.Writer) (schedConfig, error) {
	c := schedConfig{}
	fs := flag.NewFlagSet("corral-bench sched", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ups, models string
	fs.StringVar(&c.sim, "sim", "", "simulator binary (default: built from cmd/ollama-sim)")
	fs.StringVar(&ups, "upstreams", "", "two Ollama base URLs, comma-separated, instead of simulators; each must have both --models and hold one model at a time (OLLAMA_MAX_LOADED_MODELS=1)")
	fs.StringVar(&models, "models", "llama3.2:1b,qwen2.5:0.5b", "the two models, comma-separated")
	fs.IntVar(&c.slots, "slots", 1, "parallel requests per loaded model (OLLAMA_NUM_PARALLEL) of the simulators, and what the gateway is told")
	fs.DurationVar(&c.loadDelay, "load-delay", 300*time.Millisecond, "simulated model load time")
	fs.DurationVar(&c.tokenInterval, "token-interval", 10*time.Millisecond, "simulated time per token")
	fs.IntVar(&c.tokens, "tokens", 16, "tokens per reply (num_predict)")
	fs.IntVar(&c.mixedN, "mixed-requests", 60, "(a) streamed requests of the mixed two-model load")
	fs.IntVar(&c.mixedClients, "mixed-clients", 4, "(a) concurrent clients")
	fs.IntVar(&c.oneN, "one-requests", 160, "(b) streamed requests of the one-model load")
	fs.IntVar(&c.oneClients, "one-clients", 8, "(b) concurrent clients")
	fs.IntVar(&c.floodStreams, "flood-streams", 40, "(c) the flooding key's concurrent streams")
	fs.DurationVar(&c.floodFor, "flood-for", 10*time.Second, "(c) how long the flood lasts")
	fs.DurationVar(&c.lightEvery, "light-every", time.Second, "(c) the light key's request interval")
	fs.DurationVar(&c.poll, "poll", 3*time.Second, "how often the gateway's view re-reads /api/ps (corral's health interval)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the random choices")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if ups != "" {
		c.upstreams = strings.Split(ups, ",")
	}
	c.models = strings.Split(models, ",")
	var errs []error
	if len(c.models) != 2 {
		errs = append(errs, fmt.Errorf("--models %q: give two models, comma-separated", models))
	}
	if ups != "" && len(c.upstreams) != 2 {
		errs = append(errs, fmt.Errorf("--upstreams %q: give two base URLs, comma-separated", ups))
	}
	for _, u := range c.upstreams {
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			errs = append(errs, fmt.Errorf("--upstreams: %q is not a base URL such as http://10.0.0.2:11434", u))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"slots", c.slots}, {"tokens", c.tokens}, {"mixed-requests", c.mixedN}, {"mixed-clients", c.mixedClients},
		{"one-requests", c.oneN}, {"one-clients", c.oneClients}, {"flood-streams", c.floodStreams}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("--%s %d: give at least 1", f.name, f.v))
		}
	}
	if c.floodFor <= 0 || c.lightEvery <= 0 || c.poll <= 0 {
		errs = append(errs, errors.New("--flood-for, --light-every and --poll must be positive durations"))
	}
	return c, errors.Join(errs...)
}

// schedInstance is one Ollama server under test.
type schedInstance struct {
	name string
	base string
	sim  *sim // nil for --upstreams
}

// schedBench is one run of the scheduling benchmark.
type schedBench struct {
	cfg    schedConfig
	inst   []*schedInstance
	client *http.Client
	log    io.Writer
}

func runSched(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseSchedConfig(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "corral-bench-sched-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.dir = dir
	b := &schedBench{cfg: cfg, client: newClient(cfg.floodStreams + 8), log: stderr}
	if err := b.start(ctx); err != nil {
		return err
	}
	defer b.stop()
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	rep.write(stdout)
	if cfg.jsonOut != "" {
		raw, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// start runs two simulators, each with room for one of the models at a
// time, or takes the given upstreams.
func (b *schedBench) start(ctx context.Context) error {
	if len(b.cfg.upstreams) > 0 {
		for i, u := range b.cfg.upstreams {
			b.inst = append(b.inst, &schedInstance{name: fmt.Sprintf("i%d", i), base: strings.TrimRight(u, "/")})
		}
		return nil
	}
	bin := b.cfg.sim
	if bin == "" {
		var err error
		if bin, err = buildSim(ctx, b.cfg.dir, nil); err != nil {
			return err
		}
	}
	for i := range 2 {
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		// 1.5 GB holds llama3.2:1b (1.3 GB) or qwen2.5:0.5b (0.4 GB), not both.
		env := environ([]string{"OLLAMA_", "SIM_"},
			"OLLAMA_HOST="+addr, "OLLAMA_MODELS="+fmt.Sprintf("%s/models%d", b.cfg.dir, i),
			fmt.Sprintf("OLLAMA_NUM_PARALLEL=%d", b.cfg.slots), "OLLAMA_KEEP_ALIVE=-1",
			"SIM_MODELS="+strings.Join(b.cfg.models, ","), "SIM_VRAM_BYTES=1500000000",
			"SIM_LOAD_DELAY="+b.cfg.loadDelay.String(), "SIM_TOKEN_INTERVAL="+b.cfg.tokenInterval.String(),
			"SIM_FIRST_TOKEN_DELAY="+b.cfg.tokenInterval.String())
		c, err := startChild(ctx, b.cfg.dir, fmt.Sprintf("ollama-sim-%d", i), env, bin)
		if err != nil {
			return err
		}
		s := &sim{child: c, base: "http://" + addr, http: &http.Client{Timeout: 30 * time.Second}}
		b.inst = append(b.inst, &schedInstance{name: fmt.Sprintf("i%d", i), base: s.base, sim: s})
		if err := c.waitHTTP(ctx, s.base+"/api/version", 15*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (b *schedBench) stop() {
	for _, in := range b.inst {
		if in.sim != nil {
			in.sim.stop()
		}
	}
}

func (b *schedBench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// ollamaCall posts a JSON body to one instance and reads the answer.
func (b *schedBench) ollamaCall(ctx context.Context, in *schedInstance, path string, body any) error {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", in.name, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", in.name, path, resp.Status, bytes.TrimSpace(out))
	}
	return nil
}

// place unloads every model and loads models[i] on instance i: the
// starting state of a run, the same for every policy.
func (b *schedBench) place(ctx context.Context, models ...string) error {
	for _, in := range b.inst {
		for _, m := range b.cfg.models {
			if err := b.ollamaCall(ctx, in, "/api/generate", map[string]any{"model": m, "keep_alive": 0, "stream": false}); err != nil {
				return err
			}
		}
	}
	for i, m := range models {
		if m == "" {
			continue
		}
		if err := b.ollamaCall(ctx, b.inst[i], "/api/generate", map[string]any{"model": m, "keep_alive": -1, "stream": false}); err != nil {
			return err
		}
	}
	return nil
}

// loadCounter counts model loads on the instances: the simulators count
// them; a real Ollama is watched through /api/ps.
type loadCounter struct {
	b       *schedBench
	base    []int64
	watched atomic.Int64
	stop    func()
}

func (b *schedBench) countLoads(ctx context.Context) *loadCounter {
	lc := &loadCounter{b: b}
	if b.inst[0].sim != nil {
		for _, in := range b.inst {
			lc.base = append(lc.base, simLoads(ctx, in))
		}
		lc.stop = func() {}
		return lc
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		prev := make([]map[string]bool, len(b.inst))
		for i, in := range b.inst {
			prev[i] = b.ps(ctx, in)
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for i, in := range b.inst {
				now := b.ps(ctx, in)
				if now == nil {
					continue
				}
				for m := range now {
					if !prev[i][m] {
						lc.watched.Add(1)
					}
				}
				prev[i] = now
			}
		}
	})
	lc.stop = func() { cancel(); wg.Wait() }
	return lc
}

// loads is how many models were loaded since countLoads.
func (lc *loadCounter) loads(ctx context.Context) int64 {
	lc.stop()
	if lc.base == nil {
		return lc.watched.Load()
	}
	var n int64
	for i, in := range lc.b.inst {
		n += simLoads(ctx, in) - lc.base[i]
	}
	return n
}

func simLoads(ctx context.Context, in *schedInstance) int64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/_sim/stats", nil)
	resp, err := in.sim.http.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct {
		Loads int64 `json:"loads"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	return st.Loads
}

// ps reads the models an instance holds; nil when it did not answer.
func (b *schedBench) ps(ctx context.Context, in *schedInstance) map[string]bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/api/ps", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ps struct {
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ps) != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range ps.Models {
		out[gateway.CanonicalModel(m.Name)] = true
	}
	return out
}

// polledUpstreams is the gateway's view of the instances, re-read from
// /api/ps every poll interval and on Refresh, as corral's engine does.
type polledUpstreams struct {
	b    *schedBench
	snap atomic.Pointer[gateway.Snapshot]
	kick chan struct{}
	ver  uint64
}

func (p *polledUpstreams) Snapshot() *gateway.Snapshot { return p.snap.Load() }

func (p *polledUpstreams) Refresh() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *polledUpstreams) read(ctx context.Context) {
	models := map[string]bool{}
	for _, m := range p.b.cfg.models {
		models[gateway.CanonicalModel(m)] = true
	}
	p.ver++
	s := &gateway.Snapshot{Version: p.ver}
	for _, in := range p.b.inst {
		at := time.Now()
		loaded := p.b.ps(ctx, in)
		u, _ := url.Parse(in.base)
		s.Upstreams = append(s.Upstreams, gateway.Upstream{
			Name: in.name, URL: u, Healthy: true, Status: "healthy", Weight: 1, Parallel: p.b.cfg.slots,
			Models: models, Loaded: loaded, PolledAt: at,
		})
	}
	p.snap.Store(s)
}

func (p *polledUpstreams) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
		p.read(ctx)
	}
}

// benchKeys names the bench's keys: the key is its own name.
type benchKeys struct{}

func (benchKeys) Authorize(_ context.Context, key, _ string) (string, error) { return key, nil }

// servedBy counts, by instance, the requests the gateway finished.
type servedBy struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *servedBy) Attempt(route, model, instance string) {}
func (s *servedBy) Retry(instance string)                 {}
func (s *servedBy) FilterHit(where string)                {}
func (s *servedBy) Observe(u gateway.Usage)               { s.count(u.Instance) }

func (s *servedBy) count(instance string) {
	s.mu.Lock()
	s.n[instance]++
	s.mu.Unlock()
}

// counts is a copy of the counts so far.
func (s *servedBy) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.n)
}

// way is how a run reaches the instances.
type way struct {
	policy string
	pick   func(i int) string // base URL for the i-th request
	served *servedBy
	close  func()
}

// startGatewayWay runs the gateway in this process with policy over a
// fresh view of the instances.
func (b *schedBench) startGatewayWay(ctx context.Context, policy string) (*way, error) {
	ctx, cancel := context.WithCancel(ctx)
	ups := &polledUpstreams{b: b, kick: make(chan struct{}, 1)}
	ups.read(ctx)
	go ups.run(ctx, b.cfg.poll)
	served := &servedBy{n: map[string]int{}}
	g := gateway.New(gateway.Config{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer:   served,
		Scheduling: scheduler.Config{PassThrough: policy == "pass-through"},
	}, ups, benchKeys{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, err
	}
	srv := &http.Server{Handler: g}
	go srv.Serve(l)
	base := "http://" + l.Addr().String()
	return &way{policy: policy, pick: func(int) string { return base }, served: served, close: func() {
		srv.Close()
		g.Close()
		cancel()
	}}, nil
}

func (b *schedBench) randomWay() *way {
	rnd := rand.New(rand.NewPCG(b.cfg.seed, 7))
	var mu sync.Mutex
	served := &servedBy{n: map[string]int{}}
	return &way{policy: "random", served: served, close: func() {}, pick: func(int) string {
		mu.Lock()
		i := rnd.IntN(len(b.inst))
		mu.Unlock()
		served.count(b.inst[i].name)
		return b.inst[i].base
	}}
}

// staticWay sends the i-th client's requests to instance i mod 2: the
// best split a person could configure by hand for one model.
func (b *schedBench) staticWay() *way {
	served := &servedBy{n: map[string]int{}}
	return &way{policy: "static split", served: served, close: func() {}, pick: func(client int) string {
		in := b.inst[client%len(b.inst)]
		served.count(in.name)
		return in.base
	}}
}

// call is one streamed chat request's outcome.
type call struct {
	ttft, dur time.Duration
	tokens    int
	err       string
}

func (b *schedBench) chat(ctx context.Context, base, key, model string, n int) call {
	body := fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":"Tell a story, %d."}],"options":{"num_predict":%d}}`, model, n, b.cfg.tokens)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/chat", strings.NewReader(body))
	if err != nil {
		return call{err: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return call{err: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return call{err: fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(raw))}
	}
	var c call
	res := scanStream(bufio.NewReader(resp.Body), false, func(t time.Time) {
		if c.ttft == 0 {
			c.ttft = t.Sub(start)
		}
	})
	c.dur, c.tokens = time.Since(start), res.chunks
	switch {
	case res.err != nil:
		c.err = res.err.Error()
	case res.errorEvent:
		c.err = res.errorText
	case !res.done:
		c.err = "stream ended early"
	}
	return c
}

// runResult is one policy on one load.
type runResult struct {
	Policy    string         `json:"policy"`
	Requests  int            `json:"requests"`
	Failures  int            `json:"failures"`
	FirstFail string         `json:"first_failure,omitempty"`
	Swaps     int64          `json:"swaps"`
	Seconds   float64        `json:"seconds"`
	TokensPS  float64        `json:"tokens_per_s"`
	TTFTp50   float64        `json:"ttft_p50_ms"`
	TTFTp95   float64        `json:"ttft_p95_ms"`
	Served    map[string]int `json:"served_by"`
	// The flood's light key, (c) only.
	LightTTFTp50 float64 `json:"light_ttft_p50_ms,omitempty"`
	LightTTFTp95 float64 `json:"light_ttft_p95_ms,omitempty"`
	LightN       int     `json:"light_requests,omitempty"`
}

func (r *runResult) collect(calls []call, elapsed time.Duration) {
	var ttft []time.Duration
	tokens := 0
	for _, c := range calls {
		r.Requests++
		tokens += c.tokens
		if c.err != "" {
			r.Failures++
			if r.FirstFail == "" {
				r.FirstFail = c.err
			}
			continue
		}
		ttft = append(ttft, c.ttft)
	}
	r.Seconds = elapsed.Seconds()
	r.TokensPS = float64(tokens) / elapsed.Seconds()
	r.TTFTp50, r.TTFTp95 = percentile(ttft, 50), percentile(ttft, 95)
}

// closedLoop sends n requests from clients workers, the i-th for
// model(i), and returns every outcome.
func (b *schedBench) closedLoop(ctx context.Context, w *way, key string, clients, n int, model func(i int) string) ([]call, time.Duration) {
	calls := make([]call, n)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				calls[i] = b.chat(ctx, w.pick(c), key, model(i), i)
			}
		})
	}
	wg.Wait()
	return calls, time.Since(start)
}

// schedReport is the whole benchmark's outcome.
type schedReport struct {
	Instances string      `json:"instances"`
	Slots     int         `json:"slots"`
	Mixed     []runResult `json:"mixed"`
	OneModel  []runResult `json:"one_model"`
	Flood     []runResult `json:"flood"`
	// Light is the light key's request alone, on idle instances.
	LightIdleTTFT float64 `json:"light_idle_ttft_ms"`
	LightIdleDur  float64 `json:"light_idle_duration_ms"`
	Goals         []goal  `json:"goals"`
}

type goal struct {
	Name string `json:"name"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

func (b *schedBench) run(ctx context.Context) (*schedReport, error) {
	rep := &schedReport{Slots: b.cfg.slots, Instances: "ollama-sim"}
	if b.inst[0].sim == nil {
		rep.Instances = strings.Join(b.cfg.upstreams, ", ")
	}
	ma, mb := b.cfg.models[0], b.cfg.models[1]

	// (a) Mixed: each instance starts holding one model; requests ask for
	// either at random, the same sequence for every policy.
	rnd := rand.New(rand.NewPCG(b.cfg.seed, 1))
	seq := make([]string, b.cfg.mixedN)
	for i := range seq {
		seq[i] = b.cfg.models[rnd.IntN(2)]
	}
	for _, policy := range []string{"random", "pass-through", "scheduler"} {
		r, err := b.measure(ctx, policy, []string{ma, mb}, func(w *way) ([]call, time.Duration) {
			return b.closedLoop(ctx, w, "bench", b.cfg.mixedClients, b.cfg.mixedN, func(i int) string { return seq[i] })
		})
		if err != nil {
			return nil, err
		}
		rep.Mixed = append(rep.Mixed, r)
	}

	// (b) One model on two instances, which start holding one model each:
	// the static split, too, loads it on the second once.
	for _, policy := range []string{"static split", "pass-through", "scheduler"} {
		r, err := b.measure(ctx, policy, []string{ma, mb}, func(w *way) ([]call, time.Duration) {
			return b.closedLoop(ctx, w, "bench", b.cfg.oneClients, b.cfg.oneN, func(int) string { return ma })
		})
		if err != nil {
			return nil, err
		}
		rep.OneModel = append(rep.OneModel, r)
	}

	// (c) Flood: both instances hold the model; the light key's request
	// alone first, then beside the flood.
	if err := b.place(ctx, ma, ma); err != nil {
		return nil, err
	}
	idle, err := b.startGatewayWay(ctx, "scheduler")
	if err != nil {
		return nil, err
	}
	var idleCalls []call
	for i := range 5 {
		idleCalls = append(idleCalls, b.chat(ctx, idle.pick(0), "light", ma, i))
	}
	idle.close()
	var ttfts, durs []time.Duration
	for _, c := range idleCalls {
		if c.err != "" {
			return nil, fmt.Errorf("the light key alone: %s", c.err)
		}
		ttfts, durs = append(ttfts, c.ttft), append(durs, c.dur)
	}
	rep.LightIdleTTFT, rep.LightIdleDur = percentile(ttfts, 50), percentile(durs, 50)
	for _, policy := range []string{"pass-through", "scheduler"} {
		r, err := b.measureFlood(ctx, policy)
		if err != nil {
			return nil, err
		}
		rep.Flood = append(rep.Flood, r)
	}
	rep.judge()
	return rep, nil
}

// measure places the starting models, runs the load through policy and
// counts the swaps it caused.
func (b *schedBench) measure(ctx context.Context, policy string, start []string, load func(*way) ([]call, time.Duration)) (runResult, error) {
	if err := b.place(ctx, start...); err != nil {
		return runResult{}, err
	}
	var w *way
	switch policy {
	case "random":
		w = b.randomWay()
	case "static split":
		w = b.staticWay()
	default:
		var err error
		if w, err = b.startGatewayWay(ctx, policy); err != nil {
			return runResult{}, err
		}
	}
	defer w.close()
	lc := b.countLoads(ctx)
	calls, elapsed := load(w)
	r := runResult{Policy: policy, Swaps: lc.loads(ctx)}
	r.collect(calls, elapsed)
	r.Served = w.served.counts()
	b.logf("%s: %d requests in %.1fs, %d swaps, %d failed", policy, r.Requests, r.Seconds, r.Swaps, r.Failures)
	return r, ctx.Err()
}

// measureFlood runs the flood and the light key together through policy.
func (b *schedBench) measureFlood(ctx context.Context, policy string) (runResult, error) {
	model := b.cfg.models[0]
	if err := b.place(ctx, model, model); err != nil {
		return runResult{}, err
	}
	w, err := b.startGatewayWay(ctx, policy)
	if err != nil {
		return runResult{}, err
	}
	defer w.close()
	fctx, stop := context.WithTimeout(ctx, b.cfg.floodFor)
	defer stop()
	var mu sync.Mutex
	var flood, light []call
	var wg sync.WaitGroup
	start := time.Now()
	for i := range b.cfg.floodStreams {
		wg.Go(func() {
			for n := 0; fctx.Err() == nil; n++ {
				c := b.chat(ctx, w.pick(0), "flood", model, i*100000+n)
				mu.Lock()
				flood = append(flood, c)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		// The flood fills the instances first.
		t := time.NewTicker(b.cfg.lightEvery)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
			}
			c := b.chat(ctx, w.pick(0), "light", model, n)
			mu.Lock()
			light = append(light, c)
			mu.Unlock()
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	r := runResult{Policy: policy}
	r.collect(append(flood, light...), elapsed)
	var lt []time.Duration
	for _, c := range light {
		if c.err == "" {
			lt = append(lt, c.ttft)
		}
	}
	r.LightN = len(light)
	r.LightTTFTp50, r.LightTTFTp95 = percentile(lt, 50), percentile(lt, 95)
	r.Served = w.served.counts()
	b.logf("flood %s: %d requests in %.1fs, light p95 %.0f ms", policy, r.Requests, r.Seconds, r.LightTTFTp95)
	return r, ctx.Err()
}

func find(rs []runResult, policy string) runResult {
	for _, r := range rs {
		if r.Policy == policy {
			return r
		}
	}
	return runResult{}
}

// judge checks the goals.
func (rep *schedReport) judge() {
	random, sched := find(rep.Mixed, "random"), find(rep.Mixed, "scheduler")
	rep.Goals = append(rep.Goals, goal{
		Name: "(a) mixed: swaps at most half of random spread's",
		Got:  fmt.Sprintf("%d vs %d", sched.Swaps, random.Swaps),
		Pass: sched.Failures == 0 && float64(sched.Swaps) <= float64(random.Swaps)/2,
	})
	static, one := find(rep.OneModel, "static split"), find(rep.OneModel, "scheduler")
	busy := len(one.Served) == 2
	for _, n := range one.Served {
		busy = busy && n >= one.Requests/4
	}
	rep.Goals = append(rep.Goals, goal{
		Name: "(b) one model: both instances busy, throughput >= 0.95 of the static split",
		Got:  fmt.Sprintf("served %v, %.2fx", one.Served, one.TokensPS/static.TokensPS),
		Pass: one.Failures == 0 && busy && one.TokensPS >= 0.95*static.TokensPS,
	})
	pt, fl := find(rep.Flood, "pass-through"), find(rep.Flood, "scheduler")
	bound := 3*rep.LightIdleTTFT + rep.LightIdleDur
	rep.Goals = append(rep.Goals, goal{
		Name: "(c) flood: light key's TTFT p95 <= 3x idle + one request",
		Got:  fmt.Sprintf("%.0f ms (bound %.0f ms; pass-through %.0f ms)", fl.LightTTFTp95, bound, pt.LightTTFTp95),
		Pass: fl.Failures == 0 && fl.LightTTFTp95 <= bound,
	}, goal{
		Name: "(c) flood: tokens/s >= 0.97 of pass-through",
		Got:  fmt.Sprintf("%.2fx", fl.TokensPS/pt.TokensPS),
		Pass: fl.TokensPS >= 0.97*pt.TokensPS,
	})
}

func (rep *schedReport) write(w io.Writer) {
	fmt.Fprintf(w, "corral-bench sched: two instances (%s), %d slot(s) per loaded model, room for one model each\n\n", rep.Instances, rep.Slots)
	table := func(title string, rs []runResult, light bool) {
		fmt.Fprintf(w, "%s\n%-14s %8s %6s %6s %8s %10s %10s %10s  %s\n", title, "policy", "requests", "failed", "swaps", "seconds", "tokens/s", "TTFT p50", "TTFT p95", "served by")
		for _, r := range rs {
			fmt.Fprintf(w, "%-14s %8d %6d %6d %8.1f %10.1f %10.1f %10.1f  %s\n", r.Policy, r.Requests, r.Failures, r.Swaps, r.Seconds, r.TokensPS, r.TTFTp50, r.TTFTp95, servedText(r.Served))
			if light {
				fmt.Fprintf(w, "%14s light key: %d requests, TTFT p50 %.1f ms, p95 %.1f ms\n", "", r.LightN, r.LightTTFTp50, r.LightTTFTp95)
			}
			if r.FirstFail != "" {
				fmt.Fprintf(w, "%14s first failure: %s\n", "", r.FirstFail)
			}
		}
		fmt.Fprintln(w)
	}
	table("(a) mixed two-model load", rep.Mixed, false)
	table("(b) one model on two instances", rep.OneModel, false)
	fmt.Fprintf(w, "light key alone: TTFT p50 %.1f ms, request %.1f ms\n", rep.LightIdleTTFT, rep.LightIdleDur)
	table("(c) one key floods, another sends one request a second", rep.Flood, true)
	for _, g := range rep.Goals {
		verdict := "PASS"
		if !g.Pass {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", verdict, g.Name, g.Got)
	}
}

func servedText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
