package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/pprof"
	"time"

	"corral/proxy/frontdoor"
	"corral/proxy/gateway"
)

// benchKey is the API key the benchmark's gateway admits.
const benchKey = "corral-bench"

// staticUpstreams is a snapshot that never changes: one healthy instance.
type staticUpstreams struct{ s *gateway.Snapshot }

var _ gateway.Upstreams = staticUpstreams{}

func (u staticUpstreams) Snapshot() *gateway.Snapshot { return u.s }

// keyAuth admits one key for every model.
type keyAuth struct{ key string }

var _ gateway.Authorizer = keyAuth{}

func (a keyAuth) Authorize(_ context.Context, key, _ string) (string, error) {
	if key != a.key {
		return "", errors.New("unknown API key")
	}
	return "bench", nil
}

// serveGateway is `corral-bench gateway`: the gateway with its defaults in
// front of one upstream, behind the front door with its default limits,
// as corral serve runs it without a domain. It prints the address it
// listens on, then serves until ctx ends.
func serveGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("corral-bench gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address; the bound one is printed on stdout")
	upstream := fs.String("upstream", "", "Ollama base URL, e.g. http://127.0.0.1:11434")
	model := fs.String("model", "llama3.2:1b", "the model the upstream has (and has loaded)")
	key := fs.String("key", benchKey, "the API key to admit")
	verbose := fs.Bool("verbose", false, "log each request to stderr (default: request log to io.Discard)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	full := fs.Bool("full", false, "as corral serve runs it: API keys, usage metering with quotas, and Prometheus metrics on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("gateway: --upstream %q: want an http:// URL", *upstream)
	}

	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	m := gateway.CanonicalModel(*model)
	snap := &gateway.Snapshot{Version: 1, Upstreams: []gateway.Upstream{{
		Name: "sim", URL: u, Healthy: true, Status: "healthy", Weight: 1, Parallel: 512,
		Models: map[string]bool{m: true}, Loaded: map[string]bool{m: true}, PolledAt: time.Now(),
	}}}
	cfg := gateway.Config{Logger: slog.New(slog.NewJSONHandler(logOut, nil))}
	var auth gateway.Authorizer = keyAuth{*key}
	if *full {
		a, stop, err := fullStack(ctx, &cfg, *key)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		defer stop()
		auth = a
	}
	g := gateway.New(cfg, staticUpstreams{snap}, auth)
	defer g.Close()

	// The load comes from one address: the per-address cap would refuse it.
	limits := frontdoor.DefaultLimits()
	limits.MaxConnsPerIP = limits.MaxConns
	door, err := frontdoor.Listen(frontdoor.Config{Addr: *listen, Gateway: g, Limits: limits, Logger: cfg.Logger})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			door.Close()
			return fmt.Errorf("gateway: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			door.Close()
			f.Close()
			return fmt.Errorf("gateway: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	fmt.Fprintln(stdout, door.Addr("http").String())
	if err := door.Serve(ctx, 5*time.Second); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}
