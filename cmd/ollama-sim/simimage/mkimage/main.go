// Command mkimage builds the Ollama simulator's image for people (package
// simimage: the tests' static binary on FROM scratch, no registry, paced
// like a small model so a streamed reply arrives word by word) and tags it
// corral-ollama-sim:latest, or the -tag given:
//
//	go run ./cmd/ollama-sim/simimage/mkimage [-tag corral-ollama-sim:latest]
//
// scripts/sim-image runs it for the quick start in README.md. It prints
// the tag alone on stdout; what it does goes to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine/enginetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tag := fs.String("tag", simimage.Repository+":latest", "the image's name for corral serve --ollama-image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (run with -h)", fs.Arg(0))
	}
	if _, err := enginetest.Output(ctx, "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("no Docker daemon answers: %w", err)
	}
	start := time.Now()
	fmt.Fprintln(stderr, "building the Ollama simulator (go build, static) and its FROM scratch image")
	ref, err := simimage.BuildDemo(ctx)
	if err != nil {
		return err
	}
	if ref != *tag {
		if _, err := enginetest.Output(ctx, "", nil, "docker", "tag", ref, *tag); err != nil {
			return fmt.Errorf("tag %s as %s: %w", ref, *tag, err)
		}
	}
	fmt.Fprintf(stderr, "%s ready (%s) in %.1fs: corral serve --ollama-image %s\n", *tag, ref, time.Since(start).Seconds(), *tag)
	fmt.Fprintln(stdout, *tag)
	return nil
}
