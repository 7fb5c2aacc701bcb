package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestParseArgs: flags may stand anywhere among the positional arguments,
// as in docker's and ollama's CLIs.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    int
		pos     []string
		note    string
		force   bool
		env     map[string]string
		fromEnv bool // --note reads CORRAL_NOTE
		wantErr string
	}{
		{name: "flags after", args: []string{"alice", "--note", "n", "--force"}, want: 1, pos: []string{"alice"}, note: "n", force: true},
		{name: "flags before", args: []string{"--note", "n", "--force", "alice"}, want: 1, pos: []string{"alice"}, note: "n", force: true},
		{name: "flags between", args: []string{"inst", "--note=n", "3", "-force"}, want: 2, pos: []string{"inst", "3"}, note: "n", force: true},
		{name: "double dash ends flags", args: []string{"--note", "n", "--", "-1", "--force"}, want: 2, pos: []string{"-1", "--force"}, note: "n"},
		{name: "missing is the caller's to say", args: []string{"--force"}, want: 1, force: true},
		{name: "one too many", args: []string{"alice", "--force", "bob"}, want: 1, wantErr: `unexpected argument "bob"`},
		{name: "none wanted", args: []string{"--note", "n", "alice"}, want: 0, wantErr: `unexpected argument "alice"`},
		{name: "unknown flag", args: []string{"alice", "--nope"}, want: 1, wantErr: "flag provided but not defined: -nope"},
		{name: "environment fills what the line leaves", args: []string{"alice"}, want: 1, pos: []string{"alice"}, note: "from env", env: map[string]string{"CORRAL_NOTE": "from env"}, fromEnv: true},
		{name: "the line beats the environment", args: []string{"--note", "line", "alice"}, want: 1, pos: []string{"alice"}, note: "line", env: map[string]string{"CORRAL_NOTE": "from env"}, fromEnv: true},
		{name: "a flag not from the environment ignores it", args: []string{"alice"}, want: 1, pos: []string{"alice"}, env: map[string]string{"CORRAL_NOTE": "from env", "CORRAL_FORCE": "nonsense"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlagSet("test", io.Discard)
			note := fs.String("note", "", "")
			force := fs.Bool("force", false, "")
			if tc.fromEnv {
				fs.fromEnv("note")
			}
			pos, err := fs.parseArgs(tc.args, tc.want)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				var ue usageError
				if !errors.As(err, &ue) {
					t.Errorf("err %T is not a usage error (exit code 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tc.pos) || *note != tc.note || *force != tc.force {
				t.Errorf("got pos %q note %q force %v, want %q %q %v", pos, *note, *force, tc.pos, tc.note, tc.force)
			}
		})
	}
}

func TestOneArg(t *testing.T) {
	fs := newFlagSet("pull", io.Discard)
	fs.String("data-dir", "", "")
	if m, err := oneArg(fs, []string{"--data-dir", "/x", "llama3.2"}, "usage"); err != nil || m != "llama3.2" {
		t.Fatalf("oneArg = %q, %v", m, err)
	}
	fs = newFlagSet("pull", io.Discard)
	fs.String("data-dir", "", "")
	if _, err := oneArg(fs, []string{"--data-dir", "/x"}, "usage: corral pull MODEL"); err == nil || err.Error() != "usage: corral pull MODEL" {
		t.Fatalf("missing model: %v", err)
	}
	fs = newFlagSet("pull", io.Discard)
	if _, err := oneArg(fs, []string{"--help"}, "usage"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
}
