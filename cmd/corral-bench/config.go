package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is one benchmark run.
type config struct {
	Levels   []int         // concurrency levels
	Warmup   time.Duration // per target and level, not measured
	Duration time.Duration // measured, per target, level and scenario
	Rounds   int           // the measured time is split into rounds, rotating the targets' order
	Requests int           // cap on measured requests per target and level; 0 = none
	// MinStreams is the fewest streams a latency scenario measures per
	// target and level, running past Duration (up to 10x) to get them.
	MinStreams int

	Chunks     int           // scenario A: tokens per stream
	FirstToken time.Duration // scenario A: delay before the first token
	Interval   time.Duration // scenario A: delay between tokens
	Tokens     int           // scenario B: tokens per stream, no delays

	Scenarios    string // "A,B": which to run
	NDJSON       bool   // also run the scenarios over Ollama's /api/chat
	Nginx        string // "auto", "off" or the nginx binary
	NginxWorkers int
	Model        string
	Sim          string // a built simulator; empty builds cmd/ollama-sim
	JSON         string // write the numbers here
	CPUProfile   string // the gateway child writes its CPU profile here
	MaxProcs     int    // GOMAXPROCS of the gateway child; 0: Go's default
	CPUs         string // cpusSplit or cpusShared: where the processes run
	Awake        bool   // split: a SCHED_IDLE spinner keeps the proxy's CPU from idling
	Verbose      bool   // gateway request log on; keep the work directory
	// Full runs the gateway with keys, usage metering and metrics, as
	// corral serve runs it (the default, and what the bounds are for);
	// --full=false leaves a plain key check and no metering or metrics.
	Full bool
	// Baseline is a corral-bench binary of another build whose gateway
	// runs as one more target, so that two builds are compared in one run;
	// baselineRelay runs this binary's relay in its place.
	Baseline string

	// For tests: flags for building the simulator, and where the work
	// directory goes (empty: os.TempDir).
	buildFlags []string
	tmpParent  string
}

func defaultConfig() config {
	return config{
		// 256: the memory bound is judged at 256 concurrent streams. The
		// measured time is 3 s a cell, so that the four levels take about
		// as long as three did at 4 s.
		Levels:       []int{1, 16, 64, 256},
		Warmup:       time.Second,
		Duration:     3 * time.Second,
		Rounds:       4,
		MinStreams:   60,
		Chunks:       64,
		FirstToken:   20 * time.Millisecond,
		Interval:     5 * time.Millisecond,
		Tokens:       16,
		Scenarios:    "A,B",
		Nginx:        "auto",
		NginxWorkers: 1,
		Model:        "llama3.2:1b",
		CPUs:         cpusSplit,
		Full:         true,
	}
}

// Validate reports every problem at once.
func (c config) Validate() error {
	var errs []error
	if len(c.Levels) == 0 {
		errs = append(errs, errors.New("--levels: need at least one concurrency level"))
	}
	for _, l := range c.Levels {
		if l < 1 || l > 4096 {
			errs = append(errs, fmt.Errorf("--levels: %d is not between 1 and 4096", l))
		}
	}
	if c.Warmup < 0 {
		errs = append(errs, errors.New("--warmup must not be negative"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("--duration must be positive"))
	}
	if c.Rounds < 1 {
		errs = append(errs, errors.New("--rounds must be at least 1"))
	}
	if c.MinStreams < 0 {
		errs = append(errs, errors.New("--min-streams must not be negative"))
	}
	if c.Requests < 0 {
		errs = append(errs, errors.New("--requests must not be negative"))
	}
	if c.Chunks < 2 || c.Tokens < 1 {
		errs = append(errs, errors.New("--chunks must be at least 2 and --tokens at least 1"))
	}
	if c.FirstToken < 0 || c.Interval < 0 {
		errs = append(errs, errors.New("--first-token and --interval must not be negative"))
	}
	if c.NginxWorkers < 1 {
		errs = append(errs, errors.New("--nginx-workers must be at least 1"))
	}
	if c.Scenarios != "A,B" && c.Scenarios != "A" && c.Scenarios != "B" {
		errs = append(errs, fmt.Errorf("--scenarios %q: want A,B or A or B", c.Scenarios))
	}
	if c.MaxProcs < 0 {
		errs = append(errs, errors.New("--gateway-gomaxprocs must not be negative"))
	}
	if c.CPUs != cpusSplit && c.CPUs != cpusShared {
		errs = append(errs, fmt.Errorf("--cpus %q: want split (the proxy on a CPU of its own) or shared", c.CPUs))
	}
	if c.Awake && c.CPUs != cpusSplit {
		errs = append(errs, errors.New("--awake keeps the proxy's own CPU busy: it needs --cpus split"))
	}
	if c.Baseline != "" && c.Baseline != baselineRelay {
		if fi, err := os.Stat(c.Baseline); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("--baseline %q: want a built corral-bench binary (go build -o FILE ./cmd/corral-bench at the other commit), or relay", c.Baseline))
		}
	}
	if c.Model == "" {
		errs = append(errs, errors.New("--model is empty"))
	}
	return errors.Join(errs...)
}

// maxLevel is the top level: the gateway's memory is sampled there.
func (c config) maxLevel() int { return slices.Max(c.Levels) }

func parseConfig(args []string, stderr io.Writer) (config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("corral-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: corral-bench [flags]   (or scripts/bench [flags])")
		fmt.Fprintln(stderr, "\nThe Ollama simulator direct vs. corral's gateway vs. nginx, on loopback.")
		fs.PrintDefaults()
	}
	fs.Func("levels", "concurrency levels, comma-separated (default 1,16,64,256; the bounds need 1 and 256)", func(s string) error {
		var ls []int
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("%q is not a number", f)
			}
			ls = append(ls, n)
		}
		c.Levels = ls
		return nil
	})
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured load before each target and level")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured load per target, level and scenario")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "split the measured time into this many rounds, rotating the targets' order")
	fs.IntVar(&c.MinStreams, "min-streams", c.MinStreams, "scenario A: measure at least this many streams per target and level, running past --duration (up to 10x)")
	fs.IntVar(&c.Requests, "requests", 0, "stop a measurement after this many requests (0: run for --duration)")
	fs.IntVar(&c.Chunks, "chunks", c.Chunks, "scenario A: tokens (chunks) per stream")
	fs.DurationVar(&c.FirstToken, "first-token", c.FirstToken, "scenario A: delay before the first token")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "scenario A: delay between tokens")
	fs.IntVar(&c.Tokens, "tokens", c.Tokens, "scenario B: tokens per stream (no delays)")
	fs.StringVar(&c.Scenarios, "scenarios", c.Scenarios, "A (streaming latency), B (throughput) or A,B; the bounds are judged on A")
	fs.BoolVar(&c.NDJSON, "ndjson", false, "also run the scenarios over Ollama's NDJSON /api/chat")
	fs.StringVar(&c.Nginx, "nginx", c.Nginx, "nginx binary, or auto (PATH, then /usr/sbin) or off")
	fs.StringVar(&c.Baseline, "baseline", "", "a corral-bench binary of another build: its gateway is measured too, as target \"baseline\", with the TTFT paired against this build's; relay: this binary's bare TCP relay instead, the floor of any Go proxy here")
	fs.IntVar(&c.NginxWorkers, "nginx-workers", c.NginxWorkers, "nginx worker_processes")
	fs.StringVar(&c.Model, "model", c.Model, "model the simulator serves")
	fs.StringVar(&c.Sim, "sim", "", "a built ollama-sim binary (default: go build ./cmd/ollama-sim)")
	fs.StringVar(&c.JSON, "json", "", "also write the numbers to this JSON file")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "the gateway child writes a CPU profile of its whole run here")
	fs.IntVar(&c.MaxProcs, "gateway-gomaxprocs", 0, "GOMAXPROCS of the gateway child (0: Go's default, the CPUs it may run on)")
	fs.StringVar(&c.CPUs, "cpus", c.CPUs, "split: the proxy measured runs on the last CPU, the load client and simulator on the others; shared: all run anywhere")
	fs.BoolVar(&c.Awake, "awake", false, "split only: keep the proxy's CPU from idling with a lowest-priority (SCHED_IDLE) spinner that yields to the proxy at once, as on a busy server; on a VM an idle vCPU halts, and each wake-up then costs the proxy a VM exit and cold caches")
	fs.BoolVar(&c.Full, "full", c.Full, "run the gateway as corral serve does: API keys, usage metering with quotas, Prometheus metrics (the default, and what the bounds are for); --full=false: a plain key check, no metering or metrics")
	fs.BoolVar(&c.Verbose, "verbose", false, "turn the gateway's request log on and keep the work directory (logs, nginx.conf)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, c.Validate()
}
