package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corral/gpu"
)

// everyCommand is each command and subcommand of the table, by its words.
func everyCommand() [][]string {
	var out [][]string
	for _, c := range commands() {
		out = append(out, []string{c.name})
		for _, s := range c.subs {
			out = append(out, []string{c.name, s.name})
		}
	}
	return out
}

// placeholders are positional arguments for a command's synopsis.
func placeholders(path []string) []string {
	c, _ := findCommand(path)
	var out []string
	for _, w := range strings.Fields(c.args) {
		if !strings.HasPrefix(w, "[") {
			out = append(out, "x")
		}
	}
	return out
}

func runApp(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.discover = func() gpu.Inventory { return gpu.Inventory{Reason: "test"} }
	err = a.run(context.Background(), args)
	return out.String(), errOut.String(), err
}

// TestHelpForEveryCommand: corral help lists every command and
// subcommand, and corral help CMD [SUB], CMD [SUB] -h and --help print
// its usage and exit 0, for each of them.
func TestHelpForEveryCommand(t *testing.T) {
	list, _, err := runApp(t, "help")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range everyCommand() {
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			c, _ := findCommand(path)
			if !strings.Contains(list, "\n  "+strings.TrimSpace(name+" "+c.args)+" ") || !strings.Contains(list, c.summary) {
				t.Errorf("corral help does not list %q", name)
			}
			if name == "help" {
				return
			}
			for _, args := range [][]string{
				append([]string{"help"}, path...),
				append(append([]string{}, path...), "-h"),
				append(append([]string{}, path...), "--help"),
			} {
				out, _, err := runApp(t, args...)
				if err != nil {
					t.Fatalf("corral %s: %v", strings.Join(args, " "), err)
				}
				if !strings.HasPrefix(out, "Usage: corral "+name+" ") || !strings.Contains(out, c.summary) {
					t.Errorf("corral %s printed:\n%s", strings.Join(args, " "), out)
				}
			}
		})
	}
	for _, args := range [][]string{{"help", "nope"}, {"help", "keys", "nope"}, {"nope"}, {"keys", "nope"}} {
		if _, _, err := runApp(t, args...); err == nil || exitCode(err) != 2 {
			t.Errorf("corral %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	if !strings.Contains(list, "models import FILE.gguf") {
		t.Errorf("corral help lacks models import:\n%s", list)
	}
}

// serveEnv is what a unit file or compose file sets for serve, with
// values a client command would choke on or act on.
var serveEnv = map[string]string{
	"CORRAL_ADDR":          "nonsense",
	"CORRAL_NAMESPACE":     "Not A Namespace",
	"CORRAL_GPUS":          "9",
	"CORRAL_KEEP_ALIVE":    "soon",
	"CORRAL_CPU_INSTANCES": "many",
	"CORRAL_LOG_LEVEL":     "loud",
	"CORRAL_DOMAIN":        "chat.example.com",
	// Names that are also flags of client commands.
	"CORRAL_JSON":    "true",
	"CORRAL_MODELS":  "only-this",
	"CORRAL_NOTE":    "from serve's environment",
	"CORRAL_EXPIRES": "never",
	"CORRAL_WEIGHT":  "-3",
}

// TestServeEnvIgnoredByKeys: the CORRAL_* variables set for serve change
// nothing in the other commands, but CORRAL_DATA_DIR names the corral
// for all of them.
func TestServeEnvIgnoredByKeys(t *testing.T) {
	dataDir, m := keysDaemon(t)
	for k, v := range serveEnv {
		t.Setenv(k, v)
	}
	t.Setenv("CORRAL_DATA_DIR", dataDir)

	if _, errOut, err := runApp(t, "keys", "create", "alice"); err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	k := m.List()[0]
	if k.Name != "alice" || len(k.Models) != 0 || k.Note != "" || !k.ExpiresAt.IsZero() {
		t.Fatalf("serve's variables reached keys create: %+v", k)
	}
	out, _, err := runApp(t, "keys", "list")
	if err != nil || strings.HasPrefix(out, "{") || !strings.Contains(out, "NAME") || !strings.Contains(out, "alice") {
		t.Fatalf("keys list with serve's variables: %v\n%s", err, out)
	}
	if _, _, err := runApp(t, "keys", "limit", "alice", "--rpm", "5"); err != nil {
		t.Fatalf("keys limit: %v", err)
	}
	if k := m.List()[0]; k.Limits.Weight != 0 || k.Limits.RequestsPerMinute != 5 {
		t.Fatalf("limits = %+v", k.Limits)
	}
	// The help says which flags read the environment.
	help, _, _ := runApp(t, "keys", "create", "--help")
	if !strings.Contains(help, "[CORRAL_DATA_DIR]") || strings.Contains(help, "CORRAL_NOTE") || strings.Contains(help, "CORRAL_MODELS") {
		t.Errorf("keys create --help:\n%s", help)
	}

	// serve itself reads them all: here its config is refused.
	_, err = parseServe(nil, &bytes.Buffer{})
	for _, want := range []string{`CORRAL_CPU_INSTANCES="many"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve's parse: %v, want %s", err, want)
		}
	}
	t.Setenv("CORRAL_CPU_INSTANCES", "2")
	c, err := parseServe(nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `--addr "nonsense"`) || !strings.Contains(err.Error(), `--namespace "Not A Namespace"`) || c.settings.KeepAlive != "soon" || c.DataDir != dataDir {
		t.Errorf("serve's parse: %v, %+v", err, c)
	}
}

// TestBadFlagLeavesNoDataDir: a mistake on the command line ends every
// command before it makes, or reads, the data dir.
func TestBadFlagLeavesNoDataDir(t *testing.T) {
	root := t.TempDir()
	type run struct {
		name string
		args []string
		env  map[string]string
		code int
	}
	var runs []run
	for _, path := range everyCommand() {
		name := strings.Join(path, " ")
		args := append(append(append([]string{}, path...), placeholders(path)...), "--no-such-flag")
		runs = append(runs, run{name: name + " --no-such-flag", args: args, code: 2})
	}
	runs = append(runs,
		run{name: "serve --addr nonsense", args: []string{"serve", "--addr", "nonsense"}, code: 1},
		run{name: "serve --admin-addr 8090", args: []string{"serve", "--admin-addr", "8090"}, code: 1},
		run{name: "serve --health-interval never", args: []string{"serve", "--health-interval", "never"}, code: 2},
		run{name: "serve with CORRAL_ADDR=nonsense", args: []string{"serve"}, env: map[string]string{"CORRAL_ADDR": "nonsense"}, code: 1},
		run{name: "serve with CORRAL_CPU_INSTANCES=many", args: []string{"serve"}, env: map[string]string{"CORRAL_CPU_INSTANCES": "many"}, code: 2},
		run{name: "keys limit --rpm -1", args: []string{"keys", "limit", "alice", "--rpm", "-1"}, code: 2},
		run{name: "keys create --expires soon", args: []string{"keys", "create", "alice", "--expires", "soon"}, code: 2},
		run{name: "usage --by colour", args: []string{"usage", "--by", "colour"}, code: 2},
		run{name: "place --gpus one", args: []string{"place", "m", "--gpus", "one"}, code: 2},
		run{name: "weight INSTANCE lots", args: []string{"weight", "i", "lots"}, code: 2},
		run{name: "pull without a model", args: []string{"pull", "--cancel"}, code: 2},
		run{name: "restore of nothing", args: []string{"restore", filepath.Join(root, "no-such-backup")}, code: 1},
	)
	for i, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			for k, v := range r.env {
				t.Setenv(k, v)
			}
			dir := filepath.Join(root, "x", "new", strings.Repeat("d", i%3+1))
			_, _, err := runApp(t, append(r.args, "--data-dir", dir)...)
			if err == nil || exitCode(err) != r.code {
				t.Fatalf("err = %v (exit %d), want exit %d", err, exitCode(err), r.code)
			}
			for _, p := range []string{dir, filepath.Join(root, "x")} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Fatalf("%s exists after a bad command line (%v)", p, err)
				}
			}
		})
	}
}
