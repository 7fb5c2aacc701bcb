package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is the simulator's start-up configuration, read from the
// environment (the same OLLAMA_* variables real Ollama reads, plus SIM_*)
// and flags. Sim holds the knobs that /_sim/config can change later.
type config struct {
	Addr          string        // listen address, host:port
	ModelsDir     string        // OLLAMA_MODELS
	KeepAlive     time.Duration // OLLAMA_KEEP_ALIVE; math.MaxInt64 means forever
	NumParallel   int           // OLLAMA_NUM_PARALLEL: concurrent generations per loaded model
	MaxQueue      int           // OLLAMA_MAX_QUEUE: requests waiting for a model before 503
	ContextLength int           // OLLAMA_CONTEXT_LENGTH; 0 picks by VRAM like Ollama
	Version       string        // SIM_VERSION, reported by /api/version
	Presets       []string      // SIM_MODELS: written into the models dir at start
	Sim           simConfig
}

// simConfig holds the simulation knobs. Durations are Go duration strings
// in JSON ("250ms"); a bare JSON number is taken as milliseconds. The same
// holds for the SIM_* variables (a bare integer is milliseconds).
type simConfig struct {
	FirstTokenDelay   duration `json:"first_token_delay"`   // before the first token (prompt evaluation)
	TokenInterval     duration `json:"token_interval"`      // between further tokens
	LoadDelay         duration `json:"load_delay"`          // loading a model that is not loaded
	DefaultTokens     int      `json:"default_tokens"`      // tokens when the request sets no limit
	PullBytesPerSec   int64    `json:"pull_bytes_per_sec"`  // simulated download speed; 0 = instant
	PullDuration      duration `json:"pull_duration"`       // total time of a pull; wins over pull_bytes_per_sec
	VRAMBytes         int64    `json:"vram_bytes"`          // memory budget for loaded models
	FailStatus        int      `json:"fail_status"`         // status of injected failures (default 500)
	FailCount         int      `json:"fail_count"`          // the next N inference requests fail
	FailRate          float64  `json:"fail_rate"`           // probability that an inference request fails
	FailMessage       string   `json:"fail_message"`        // error text; empty picks Ollama's text for the status
	Seed              uint64   `json:"seed"`                // seed of fail_rate's random numbers; setting it reseeds
	Hang              bool     `json:"hang"`                // inference requests never answer
	CutAfterTokens    int      `json:"cut_after_tokens"`    // generations drop the connection after N tokens
	ExitAfterRequests int      `json:"exit_after_requests"` // exit(1) once N more inference requests completed
	ExitAfterTokens   int      `json:"exit_after_tokens"`   // exit(1) once N more tokens were generated (mid-stream)
}

// Validate reports every problem at once.
func (c simConfig) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    duration
	}{
		{"first_token_delay", c.FirstTokenDelay},
		{"token_interval", c.TokenInterval},
		{"load_delay", c.LoadDelay},
		{"pull_duration", c.PullDuration},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if c.DefaultTokens < 1 {
		errs = append(errs, errors.New("default_tokens must be at least 1"))
	}
	if c.PullBytesPerSec < 0 {
		errs = append(errs, errors.New("pull_bytes_per_sec must not be negative"))
	}
	if c.VRAMBytes < 1 {
		errs = append(errs, errors.New("vram_bytes must be positive"))
	}
	if c.FailStatus != 0 && (c.FailStatus < 400 || c.FailStatus > 599) {
		errs = append(errs, errors.New("fail_status must be 0 or an HTTP error status (400-599)"))
	}
	if c.FailCount < 0 || c.CutAfterTokens < 0 || c.ExitAfterRequests < 0 || c.ExitAfterTokens < 0 {
		errs = append(errs, errors.New("fail_count, cut_after_tokens, exit_after_requests and exit_after_tokens must not be negative"))
	}
	if c.FailRate < 0 || c.FailRate > 1 || math.IsNaN(c.FailRate) {
		errs = append(errs, errors.New("fail_rate must be between 0 and 1"))
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once.
func (c config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("listen address is empty"))
	}
	if c.ModelsDir == "" {
		errs = append(errs, errors.New("models directory is empty"))
	}
	if c.NumParallel < 1 {
		errs = append(errs, errors.New("OLLAMA_NUM_PARALLEL must be at least 1"))
	}
	if c.MaxQueue < 1 {
		errs = append(errs, errors.New("OLLAMA_MAX_QUEUE must be at least 1"))
	}
	for _, p := range c.Presets {
		if _, ok := lookupCatalog(parseName(p)); !ok {
			errs = append(errs, fmt.Errorf("SIM_MODELS: %q is not in the simulator's catalogue", p))
		}
	}
	if err := c.Sim.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// defaultSimConfig is what the knobs are before SIM_* variables apply.
func defaultSimConfig() simConfig {
	return simConfig{
		DefaultTokens: 16,
		VRAMBytes:     16 << 30,
		Seed:          1,
	}
}

// loadConfig reads the environment through lookupEnv (os.LookupEnv) and
// then the flags in args (os.Args[1:]); a "serve" argument, as the real
// image's CMD passes, is accepted and ignored. SIM_MODELS set to the empty
// string means no preset models.
func loadConfig(lookupEnv func(string) (string, bool), args []string, stderr io.Writer) (config, error) {
	getenv := func(key string) string {
		v, _ := lookupEnv(key)
		return v
	}
	var errs []error
	cfg := config{
		Addr:        hostAddr(getenv("OLLAMA_HOST")),
		ModelsDir:   getenv("OLLAMA_MODELS"),
		KeepAlive:   keepAlive(getenv("OLLAMA_KEEP_ALIVE")),
		NumParallel: 1,
		MaxQueue:    512,
		Version:     "0.17.4",
		Presets:     []string{"llama3.2:1b", "qwen2.5:0.5b"},
		Sim:         defaultSimConfig(),
	}
	if cfg.ModelsDir == "" {
		home := getenv("HOME")
		if home == "" {
			home = "/root"
		}
		cfg.ModelsDir = filepath.Join(home, ".ollama", "models")
	}
	intVar := func(key string, dst *int) {
		if s := getenv(key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				return
			}
			*dst = n
		}
	}
	int64Var := func(key string, dst *int64) {
		if s := getenv(key); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				return
			}
			*dst = n
		}
	}
	durVar := func(key string, dst *duration) {
		if s := getenv(key); s != "" {
			d, err := parseDuration(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				return
			}
			*dst = d
		}
	}
	intVar("OLLAMA_NUM_PARALLEL", &cfg.NumParallel)
	intVar("OLLAMA_MAX_QUEUE", &cfg.MaxQueue)
	intVar("OLLAMA_CONTEXT_LENGTH", &cfg.ContextLength)
	if v := getenv("SIM_VERSION"); v != "" {
		cfg.Version = v
	}
	if v, ok := lookupEnv("SIM_MODELS"); ok {
		cfg.Presets = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.Presets = append(cfg.Presets, p)
			}
		}
	}
	s := &cfg.Sim
	durVar("SIM_FIRST_TOKEN_DELAY", &s.FirstTokenDelay)
	durVar("SIM_TOKEN_INTERVAL", &s.TokenInterval)
	durVar("SIM_LOAD_DELAY", &s.LoadDelay)
	durVar("SIM_PULL_DURATION", &s.PullDuration)
	intVar("SIM_DEFAULT_TOKENS", &s.DefaultTokens)
	int64Var("SIM_PULL_BYTES_PER_SEC", &s.PullBytesPerSec)
	int64Var("SIM_VRAM_BYTES", &s.VRAMBytes)
	intVar("SIM_FAIL_STATUS", &s.FailStatus)
	intVar("SIM_FAIL_COUNT", &s.FailCount)
	intVar("SIM_CUT_AFTER_TOKENS", &s.CutAfterTokens)
	intVar("SIM_EXIT_AFTER_REQUESTS", &s.ExitAfterRequests)
	intVar("SIM_EXIT_AFTER_TOKENS", &s.ExitAfterTokens)
	s.FailMessage = getenv("SIM_FAIL_MESSAGE")
	if v := getenv("SIM_FAIL_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("SIM_FAIL_RATE: %w", err))
		}
		s.FailRate = f
	}
	if v := getenv("SIM_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("SIM_SEED: %w", err))
		}
		s.Seed = n
	}
	if v := getenv("SIM_HANG"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SIM_HANG: %w", err))
		}
		s.Hang = b
	}

	fl := flag.NewFlagSet("ollama-sim", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "", "listen address, overrides OLLAMA_HOST")
	var rest []string
	for _, a := range args {
		if a != "serve" {
			rest = append(rest, a)
		}
	}
	if err := fl.Parse(rest); err != nil {
		return config{}, err
	}
	if fl.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fl.Args()))
	}
	if *addr != "" {
		cfg.Addr = hostAddr(*addr)
	}
	if err := errors.Join(errs...); err != nil {
		return config{}, err
	}
	return cfg, cfg.Validate()
}

// hostAddr turns an OLLAMA_HOST value into a listen address the way
// Ollama's envconfig.Host does: "0.0.0.0:11434", "0.0.0.0" (default port),
// ":8080", or with a scheme ("http://host:port"). Empty means
// 127.0.0.1:11434.
func hostAddr(s string) string {
	defaultPort := "11434"
	s = strings.TrimSpace(s)
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		hostport = s
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	}
	hostport, _, _ = strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = "127.0.0.1", defaultPort
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			host = ip.String()
		} else if hostport != "" {
			host = hostport
		}
	}
	if n, err := strconv.ParseInt(port, 10, 32); err != nil || n > 65535 || n < 0 {
		port = defaultPort
	}
	return net.JoinHostPort(host, port)
}

// keepAlive parses OLLAMA_KEEP_ALIVE like Ollama: a Go duration or whole
// seconds; negative means forever; unparsable falls back to 5m.
func keepAlive(s string) time.Duration {
	d := 5 * time.Minute
	if s != "" {
		if v, err := time.ParseDuration(s); err == nil {
			d = v
		} else if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			d = time.Duration(n) * time.Second
		}
	}
	if d < 0 {
		return time.Duration(math.MaxInt64)
	}
	return d
}

// duration is a simulation delay: a Go duration string in JSON, or a bare
// number of milliseconds.
type duration time.Duration

func (d duration) std() time.Duration { return time.Duration(d) }

// MarshalJSON writes the Go duration string.
func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "1.5s" or 1500 (milliseconds).
func (d *duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case float64:
		*d = duration(t * float64(time.Millisecond))
		return nil
	case string:
		p, err := parseDuration(t)
		if err != nil {
			return err
		}
		*d = p
		return nil
	}
	return fmt.Errorf("duration must be a string like \"250ms\" or a number of milliseconds, not %s", b)
}

// parseDuration reads a Go duration or a bare integer of milliseconds.
func parseDuration(s string) (duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return duration(time.Duration(n) * time.Millisecond), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return duration(v), nil
}
