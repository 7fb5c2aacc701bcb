package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"corral/gpu"
)

// command is one subcommand; each lives in its own file.
type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, args []string) error
}

// app carries what commands share; tests swap its parts.
type app struct {
	stdin          io.Reader // confirmations (corral down --volumes)
	stdout, stderr io.Writer
	discover       func() gpu.Inventory
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdin: os.Stdin, stdout: stdout, stderr: stderr, discover: gpu.Discover}
}

func commands() []command {
	return []command{
		{"serve", "run the daemon: GPUs, Ollama instances, admin API", (*app).serveCmd},
		{"status", "show the instances of the running daemon", (*app).statusCmd},
		{"gpus", "list the NVIDIA GPUs on this host", (*app).gpusCmd},
		{"keys", "create, list and revoke the gateway's API keys", (*app).keysCmd},
		{"usage", "show requests and tokens by key, model, user or day", (*app).usageCmd},
		{"models", "list the models on the instances", (*app).modelsCmd},
		{"pull", "pull a model once for every instance", (*app).pullCmd},
		{"rm", "delete a model from every instance", (*app).rmCmd},
		{"place", "keep a model loaded on N instances or on chosen GPUs", (*app).placeCmd},
		{"filter", "show or set the content filter's phrases", (*app).filterCmd},
		{"weight", "set an instance's share of gateway traffic", (*app).weightCmd},
		{"chat-ui", "show the chat UI, restart it or recreate it", (*app).chatUICmd},
		{"backup", "copy the store (keys, usage, settings, certificates) to a file, serving or not", (*app).backupCmd},
		{"restore", "put a backup in place of the store, with corral stopped", (*app).restoreCmd},
		{"down", "remove this corral's containers and network; its volumes with --volumes", (*app).downCmd},
		{"admin-link", "print a one-time link that signs a browser in to the admin pages", (*app).adminLinkCmd},
		{"admin-token", "print the admin token, or replace it with --rotate (signs every admin out)", (*app).adminTokenCmd},
		{"doctor", "check what serve needs: Docker, GPUs and their runtime, ports, domain, clock, disk, images", (*app).doctorCmd},
		{"version", "print the version, commit, build date and whether NVML is compiled in", (*app).versionCmd},
		{"help", "show this help", nil},
	}
}

// errUsage marks errors of the command line itself (exit status 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Is(t error) bool {
	return t == errUsage
}

// helpOK turns the help request into success: help was printed.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func (a *app) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		printHelp(a.stdout)
		return nil
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		printHelp(a.stdout)
		return nil
	case "-v", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			return c.run(a, ctx, args[1:])
		}
	}
	return usageError{fmt.Sprintf("unknown command %q: run corral help", name)}
}

func printHelp(w io.Writer) {
	cs := commands()
	var b strings.Builder
	b.WriteString("corral: a private, GPU-balanced chat service in one binary\n\nUsage: corral <command> [flags]\n\nCommands:\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nEvery flag has an environment variable: --data-dir is CORRAL_DATA_DIR.\nRun corral <command> --help for its flags.\n")
	io.WriteString(w, b.String())
}
