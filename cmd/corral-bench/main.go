// Command corral-bench measures corral's LLM gateway in one run on
// loopback: the Ollama simulator direct, through the gateway, and through
// nginx configured for SSE, at several concurrency levels. It reports the
// time to first token and inter-chunk gap the proxies add, requests/s with
// zero-delay tokens as a ratio of direct, the proxies' CPU per request and
// per chunk and their RSS, and judges the gateway, run as corral serve runs
// it, against the bounds. See README.md for the latest figures.
//
//	corral-bench [flags]          run the benchmark (scripts/bench does this)
//	corral-bench gateway [flags]  serve the gateway alone; the benchmark
//	                              starts it as a child process
//	corral-bench relay [flags]    a bare TCP relay (--baseline relay)
//	corral-bench spin             spin at the lowest priority (--awake)
//	corral-bench sched [flags]    the scheduling benchmark: placement
//	                              policies side by side (see sched.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "corral-bench: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "gateway" {
		return serveGateway(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "relay" {
		return serveRelay(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "sched" {
		return runSched(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "spin" {
		return spin(ctx)
	}
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	return bench(ctx, cfg, stdout, stderr)
}
