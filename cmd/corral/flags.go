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

// flagSet wraps flag.FlagSet so that chosen flags also read CORRAL_<NAME>
// from the environment, help names the command's arguments and
// subcommands, and errors come back as one line.
//
// Which flags read the environment is decided per flag, because the
// CORRAL_* variables are serve's configuration: a unit file, a compose
// file or /etc/corral/corral.env sets them for the daemon, and the same
// shell or container runs the other commands. So:
//   - serve and doctor read every flag from it (doctor checks what serve
//     with those settings needs);
//   - every command reads CORRAL_DATA_DIR: it names the corral a command
//     talks to, and must be the same for the daemon and its clients;
//   - down also reads CORRAL_NAMESPACE and CORRAL_DOCKER_HOST, which say
//     where serve's containers are, and CORRAL_YES;
//   - no other flag does: a client's --gpus, --keep-alive, --models,
//     --json or --weight is an argument of one call, and serve's
//     CORRAL_GPUS or CORRAL_KEEP_ALIVE must not quietly fill it in.
type flagSet struct {
	*flag.FlagSet
	path   string // the command, such as "keys create"
	stdout io.Writer
	set    map[string]bool // given on the command line or in the environment
	envAll bool            // every flag reads the environment (serve, doctor)
	env    map[string]bool // the flags that do, when not envAll
}

// newFlagSet makes the flags of the command at path ("pull", "keys
// create"); of the environment only CORRAL_DATA_DIR applies unless the
// command says more with fromEnv.
func newFlagSet(path string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet("corral "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, path: path, stdout: stdout, set: map[string]bool{}, env: map[string]bool{"data-dir": true}}
}

// fromEnv lets the named flags also read CORRAL_<NAME>.
func (fs *flagSet) fromEnv(names ...string) {
	for _, n := range names {
		fs.env[n] = true
	}
}

// readsEnv reports whether flag name reads CORRAL_<NAME>.
func (fs *flagSet) readsEnv(name string) bool { return fs.envAll || fs.env[name] }

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
		if fs.set[f.Name] || !fs.readsEnv(f.Name) {
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

// printHelp writes the command's usage line and summary from the
// command table, its flags, and its subcommands.
func (fs *flagSet) printHelp() {
	var b strings.Builder
	c, found := findCommand(strings.Fields(fs.path))
	fmt.Fprintf(&b, "Usage: corral %s [flags]\n", strings.TrimSpace(fs.path+" "+c.args))
	if found {
		writeAbout(&b, c)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nFlags (environment variable in brackets):\n")
	}
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		env := ""
		if fs.readsEnv(f.Name) {
			env = "  [" + envName(f.Name) + "]"
		}
		fmt.Fprintf(&b, "  --%s%s\n      %s%s\n", f.Name, env, f.Usage, def)
	})
	if found && len(c.subs) > 0 {
		writeSubcommands(&b, fs.path, c)
	}
	io.WriteString(fs.stdout, b.String())
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
