package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// flagSet wraps flag.FlagSet so each flag also reads CORRAL_<NAME> from the
// environment, and errors come back as one line.
type flagSet struct {
	*flag.FlagSet
	stdout io.Writer
	set    map[string]bool // given on the command line or in the environment
}

func newFlagSet(name string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet("corral "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, stdout: stdout, set: map[string]bool{}}
}

func envName(flagName string) string {
	return "CORRAL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads args, which hold flags only, then the environment for flags
// not on the command line. It returns flag.ErrHelp after printing help for
// -h.
func (fs *flagSet) parse(args []string) error {
	_, err := fs.parseArgs(args, 0)
	return err
}

// parseArgs is parse for a command that takes want positional arguments.
// Flags may stand before, between or after them, as docker's and ollama's
// CLIs allow (corral keys create --models llama3.2 alice); after "--"
// everything is positional. Fewer than want is for the caller to report;
// more is an error.
func (fs *flagSet) parseArgs(args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printHelp()
				return nil, err
			}
			return nil, usageError{fmt.Sprintf("%s: %v (run %s --help)", fs.Name(), err, fs.Name())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) > want {
		return nil, usageError{fmt.Sprintf("%s: unexpected argument %q (run %s --help)", fs.Name(), pos[want], fs.Name())}
	}
	fs.Visit(func(f *flag.Flag) { fs.set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if fs.set[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, usageError{fmt.Sprintf("%s=%q: %v", envName(f.Name), v, err)})
				return
			}
			fs.set[f.Name] = true
		}
	})
	return pos, errors.Join(errs...)
}

// oneArg parses "CMD ARG [flags]" (flags anywhere): missing is the error
// when ARG is not there.
func oneArg(fs *flagSet, args []string, missing string) (string, error) {
	pos, err := fs.parseArgs(args, 1)
	if err != nil {
		return "", err
	}
	if len(pos) == 0 {
		return "", usageError{missing}
	}
	return pos[0], nil
}

func (fs *flagSet) printHelp() {
	fmt.Fprintf(fs.stdout, "Usage: %s [flags]\n\nFlags (environment variable in brackets):\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(fs.stdout, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
}

// defaultDataDir is /var/lib/corral for root, else the XDG data home.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/corral"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "corral")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "corral")
	}
	return "corral-data"
}

func socketPath(dataDir string) string {
	return filepath.Join(dataDir, "corral.sock")
}
