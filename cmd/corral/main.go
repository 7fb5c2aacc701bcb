// Command corral turns a GPU server into a private chat service: one
// Ollama container per GPU, balanced and served by one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, errRestart) {
		// Same process (a service manager sees no exit), new start.
		exe, xerr := os.Executable()
		if xerr == nil {
			xerr = syscall.Exec(exe, os.Args, os.Environ())
		}
		err = fmt.Errorf("start again in place: %w", xerr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "corral: "+err.Error())
		os.Exit(exitCode(err))
	}
}
