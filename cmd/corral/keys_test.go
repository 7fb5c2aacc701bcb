package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"corral/engine/keys"
	"corral/engine/store"
	"corral/ui"
)

// keysDaemon serves the real admin API with a real key manager.
func keysDaemon(t *testing.T) (dataDir string, m *keys.Manager) {
	t.Helper()
	dataDir = serveAPI(t, func(st *store.Store) ui.Deps {
		var err error
		if m, err = keys.New(st); err != nil {
			t.Fatal(err)
		}
		return ui.Deps{Keys: m}
	})
	return dataDir, m
}

// TestKeysCommand runs the keys subcommands in order against one daemon:
// each step sees what the ones before it did.
func TestKeysCommand(t *testing.T) {
	dataDir, m := keysDaemon(t)
	dd := []string{"--data-dir", dataDir}
	var secret string
	steps := []struct {
		name       string
		args       []string
		code       int    // exit code
		out, err   string // in stdout; in the error, or in stderr on success
		notOut     string // not in stdout
		afterwards func(t *testing.T, stdout string)
	}{
		{name: "no subcommand", args: []string{"keys"}, code: 2, err: "missing subcommand"},
		{name: "unknown subcommand", args: []string{"keys", "rotate"}, code: 2, err: `unknown subcommand "rotate": use create, list, revoke, limit or rotate-internal`},
		{name: "help", args: []string{"keys", "help"}, out: "corral keys create NAME"},
		{name: "create help", args: []string{"keys", "create", "--help"}, out: "--expires"},
		{name: "create without name", args: append([]string{"keys", "create"}, dd...), code: 2, err: "missing NAME"},
		{name: "create with a bad lifetime", args: append([]string{"keys", "create", "ci", "--expires", "soon"}, dd...), code: 2, err: "720h or 30d"},
		{name: "create with a negative lifetime", args: append([]string{"keys", "create", "ci", "--expires", "-1h"}, dd...), code: 2, err: "more than zero"},
		{name: "create with extra argument", args: []string{"keys", "create", "ci", "extra"}, code: 2, err: `unexpected argument "extra"`},
		{name: "empty list", args: append([]string{"keys", "list"}, dd...), out: "no API keys yet"},
		{
			name: "create",
			args: append([]string{"keys", "create", "ci@build.example", "--note", "CI runner", "--expires", "30d", "--models", "llama3.2, qwen3:8b,"}, dd...),
			out:  "crl_", err: "will not be shown again",
			afterwards: func(t *testing.T, stdout string) {
				secret = strings.TrimSpace(stdout)
				if strings.Count(stdout, "\n") != 1 || len(secret) != 47 {
					t.Fatalf("stdout should be the secret alone: %q", stdout)
				}
				if name, err := m.Authorize(context.Background(), secret, "qwen3:8b"); err != nil || name != "ci@build.example" {
					t.Fatalf("authorize = %q, %v", name, err)
				}
				var f interface{ Forbidden() bool }
				if _, err := m.Authorize(context.Background(), secret, "mistral"); !errors.As(err, &f) {
					t.Fatalf("authorize of another model: %v", err)
				}
				k := m.List()[0]
				if k.Note != "CI runner" || k.ExpiresAt.Sub(time.Now()) < 29*24*time.Hour || k.ExpiresAt.Sub(time.Now()) > 30*24*time.Hour {
					t.Fatalf("key = %+v", k)
				}
			},
		},
		{name: "create all-model key", args: append([]string{"keys", "create", "ops"}, dd...), out: "crl_", err: "never expires"},
		{name: "duplicate name", args: append([]string{"keys", "create", "ops"}, dd...), code: 1, err: `an API key named "ops" already exists`},
		{name: "bad name", args: append([]string{"keys", "create", "a/b"}, dd...), code: 1, err: "use 1-64 letters"},
		{
			name: "list", args: append([]string{"keys", "list"}, dd...),
			out: "NAME              PREFIX        CREATED           LAST USED         EXPIRES           STATUS  MODELS",
			afterwards: func(t *testing.T, stdout string) {
				lines := strings.Split(strings.TrimSpace(stdout), "\n")
				if len(lines) != 3 {
					t.Fatalf("want a header and 2 keys:\n%s", stdout)
				}
				for _, want := range []string{"ci@build.example", secret[:12], "active", "llama3.2,qwen3:8b"} {
					if !strings.Contains(lines[1], want) {
						t.Errorf("row %q lacks %q", lines[1], want)
					}
				}
				if f := strings.Fields(lines[2]); f[0] != "ops" || f[len(f)-2] != "all" || f[len(f)-1] != "none" || !strings.Contains(lines[2], "never") {
					t.Errorf("row %q: want ops, never used, never expires, all models, no limits", lines[2])
				}
			},
			notOut: secret,
		},
		{name: "revoke without name", args: append([]string{"keys", "revoke"}, dd...), code: 2, err: "missing NAME"},
		{name: "revoke unknown", args: append([]string{"keys", "revoke", "nobody"}, dd...), code: 1, err: `no API key named "nobody"`},
		{name: "revoke", args: append([]string{"keys", "revoke", "ci@build.example"}, dd...), out: `revoked API key "ci@build.example"`},
		{name: "revoke again", args: append([]string{"keys", "revoke", "ci@build.example"}, dd...), code: 1, err: "already revoked"},
		{
			name: "list JSON", args: append([]string{"keys", "list", "--json"}, dd...),
			afterwards: func(t *testing.T, stdout string) {
				var list ui.KeyList
				if err := json.Unmarshal([]byte(stdout), &list); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, stdout)
				}
				if len(list.Keys) != 2 || list.Keys[0].Status != keys.StatusRevoked || list.Keys[1].Status != keys.StatusActive {
					t.Fatalf("list = %+v", list)
				}
				if strings.Contains(stdout, secret) {
					t.Fatal("list shows the secret")
				}
				if _, err := m.Authorize(context.Background(), secret, "qwen3:8b"); !errors.Is(err, keys.ErrRevoked) {
					t.Fatalf("authorize after revoke: %v", err)
				}
			},
		},
		{name: "no daemon", args: []string{"keys", "list", "--data-dir", t.TempDir()}, code: 1, err: "corral is not running"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := newApp(&out, &errOut).run(ctx, s.args)
			switch {
			case s.code == 0 && err != nil:
				t.Fatalf("error: %v", err)
			case s.code != 0 && err == nil:
				t.Fatalf("no error; stdout: %s", out.String())
			case s.code != 0:
				if got := exitCode(err); got != s.code {
					t.Errorf("exit code = %d, want %d (%v)", got, s.code, err)
				}
				if !strings.Contains(err.Error(), s.err) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error = %q, want one line with %q", err, s.err)
				}
			case !strings.Contains(errOut.String(), s.err):
				t.Errorf("stderr = %q, want %q", errOut.String(), s.err)
			}
			if !strings.Contains(out.String(), s.out) {
				t.Errorf("stdout = %q, want %q", out.String(), s.out)
			}
			if s.notOut != "" && strings.Contains(out.String(), s.notOut) {
				t.Errorf("stdout has %q:\n%s", s.notOut, out.String())
			}
			if s.afterwards != nil && !t.Failed() {
				s.afterwards(t, out.String())
			}
		})
	}
}

func TestLifetimeFlag(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"720h", 720 * time.Hour, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"1.5d", 0, false},
		{"0", 0, false},
		{"-2d", 0, false},
		{"d", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		var l lifetime
		err := l.Set(tc.in)
		if (err == nil) != tc.ok || time.Duration(l) != tc.want {
			t.Errorf("Set(%q) = %s, %v; want %s, ok %v", tc.in, time.Duration(l), err, tc.want, tc.ok)
		}
	}
}

// TestKeysLimitCommand sets limits flag by flag, and rotates the chat
// UI's key, against one daemon.
func TestKeysLimitCommand(t *testing.T) {
	dataDir, m := keysDaemon(t)
	dd := []string{"--data-dir", dataDir}
	if _, _, err := m.Create(context.Background(), keys.CreateOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	var rotated string
	steps := []struct {
		name       string
		args       []string
		code       int
		out, err   string
		limits     keys.Limits // of alice afterwards
		afterwards func(t *testing.T, stdout string)
	}{
		{name: "help", args: []string{"keys", "limit", "--help"}, out: "--tpmo"},
		{name: "no name", args: append([]string{"keys", "limit"}, dd...), code: 2, err: "missing NAME"},
		{name: "no flags", args: append([]string{"keys", "limit", "alice"}, dd...), code: 2, err: "give one or more of --rpm"},
		{name: "negative", args: append([]string{"keys", "limit", "alice", "--tpd", "-1"}, dd...), code: 2, err: "whole number from 0"},
		{name: "not a number", args: append([]string{"keys", "limit", "alice", "--rpm", "lots"}, dd...), code: 2, err: "whole number from 0"},
		{
			name: "two limits", args: append([]string{"keys", "limit", "alice", "--rpm", "60", "--tpd", "100000"}, dd...),
			out:    `limits of API key "alice": 60 requests per minute, unlimited tokens per minute, 100000 tokens per day, unlimited tokens per month`,
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000},
		},
		{
			name: "one more keeps the others", args: append([]string{"keys", "limit", "alice", "--tpmo", "2000000", "--tpm", "9000"}, dd...),
			out:    "9000 tokens per minute, 100000 tokens per day, 2000000 tokens per month",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerMinute: 9000, TokensPerDay: 100000, TokensPerMonth: 2000000},
		},
		{
			name: "unlimited lifts one", args: append([]string{"keys", "limit", "alice", "--rpm", "unlimited", "--tpm", "0"}, dd...),
			out:    "unlimited requests per minute, unlimited tokens per minute",
			limits: keys.Limits{TokensPerDay: 100000, TokensPerMonth: 2000000},
		},
		{name: "unknown key", args: append([]string{"keys", "limit", "bob", "--rpm", "1"}, dd...), code: 1, err: `no API key named "bob"`,
			limits: keys.Limits{TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{
			name: "rotate-internal", args: append([]string{"keys", "rotate-internal"}, dd...), out: "crl_", err: "previous secret no longer works",
			limits: keys.Limits{TokensPerDay: 100000, TokensPerMonth: 2000000},
			afterwards: func(t *testing.T, stdout string) {
				rotated = strings.TrimSpace(stdout)
				if name, err := m.Authorize(context.Background(), rotated, "llama3.2"); err != nil || name != keys.InternalName {
					t.Fatalf("authorize the rotated key = %q, %v", name, err)
				}
			},
		},
		{
			name: "list shows limits", args: append([]string{"keys", "list"}, dd...), out: "LIMITS",
			limits: keys.Limits{TokensPerDay: 100000, TokensPerMonth: 2000000},
			afterwards: func(t *testing.T, stdout string) {
				if !strings.Contains(stdout, "tpd=100000 tpmo=2000000") || !strings.Contains(stdout, keys.InternalName) || strings.Contains(stdout, rotated) {
					t.Fatalf("list:\n%s", stdout)
				}
			},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := newApp(&out, &errOut).run(ctx, s.args)
			switch {
			case s.code == 0 && err != nil:
				t.Fatalf("error: %v", err)
			case s.code != 0 && err == nil:
				t.Fatalf("no error; stdout: %s", out.String())
			case s.code != 0:
				if got := exitCode(err); got != s.code || !strings.Contains(err.Error(), s.err) {
					t.Fatalf("error = %v (exit %d), want exit %d with %q", err, got, s.code, s.err)
				}
			case !strings.Contains(errOut.String(), s.err):
				t.Errorf("stderr = %q, want %q", errOut.String(), s.err)
			}
			if !strings.Contains(out.String(), s.out) {
				t.Errorf("stdout = %q, want %q", out.String(), s.out)
			}
			if l, _ := m.Limits("alice"); l != s.limits {
				t.Errorf("limits = %+v, want %+v", l, s.limits)
			}
			if s.afterwards != nil && !t.Failed() {
				s.afterwards(t, out.String())
			}
		})
	}
}
