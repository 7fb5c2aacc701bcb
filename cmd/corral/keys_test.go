package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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

func TestLimitText(t *testing.T) {
	cases := []struct {
		l           keys.Limits
		short, long string
	}{
		{keys.Limits{}, "none",
			"unlimited requests per minute, unlimited tokens per minute, unlimited tokens per day, unlimited tokens per month; weight 1, interactive, default queue length, default wait"},
		{keys.Limits{Weight: 1}, "none", "; weight 1, interactive,"},
		{keys.Limits{TokensPerDay: 5, Weight: 4, Batch: true, MaxQueue: 10, MaxWaitSeconds: 30}, "tpd=5 weight=4 batch queue=10 wait=30s",
			"5 tokens per day, unlimited tokens per month; weight 4, batch, up to 10 requests waiting, waits up to 30s"},
		{keys.Limits{MaxWaitSeconds: 90}, "wait=1m30s", "waits up to 1m30s"},
		{keys.Limits{MaxWaitSeconds: 86400}, "wait=24h", "waits up to 24h"},
		{keys.Limits{MaxWaitSeconds: 5400}, "wait=1h30m", "waits up to 1h30m"},
		{keys.Limits{Batch: true}, "batch", "weight 1, batch, default queue length"},
	}
	for _, tc := range cases {
		if got := ui.LimitsText(tc.l); got != tc.short {
			t.Errorf("LimitsText(%+v) = %q, want %q", tc.l, got, tc.short)
		}
		if got := longLimits(tc.l); !strings.Contains(got, tc.long) {
			t.Errorf("longLimits(%+v) = %q, want %q in it", tc.l, got, tc.long)
		}
	}
}

func TestQueueFlags(t *testing.T) {
	cases := []struct {
		flag, in string
		want     int64 // seconds for --max-wait, 1 for batch
		ok       bool
	}{
		{"weight", "0", 0, true},
		{"weight", "1000", 1000, true},
		{"weight", "1001", 0, false},
		{"weight", "-1", 0, false},
		{"weight", "two", 0, false},
		{"max-queue", "100000", 100000, true},
		{"max-queue", "100001", 0, false},
		{"max-wait", "0", 0, true},
		{"max-wait", "30s", 30, true},
		{"max-wait", "2m", 120, true},
		{"max-wait", "24h", 86400, true},
		{"max-wait", "24h0m1s", 0, false},
		{"max-wait", "0.5s", 0, false},
		{"max-wait", "30", 0, false},
		{"max-wait", "-5s", 0, false},
		{"class", "batch", 1, true},
		{"class", "interactive", 0, true},
		{"class", "Batch", 0, false},
		{"class", "", 0, false},
	}
	for _, tc := range cases {
		var v flag.Value
		var got func() int64
		switch tc.flag {
		case "weight":
			f := &queueFlag{max: keys.MaxWeight}
			v, got = f, func() int64 { return int64(f.v) }
		case "max-queue":
			f := &queueFlag{max: keys.MaxQueue}
			v, got = f, func() int64 { return int64(f.v) }
		case "max-wait":
			var f waitFlag
			v, got = &f, func() int64 { return int64(f) }
		case "class":
			var f classFlag
			v, got = &f, func() int64 {
				if f {
					return 1
				}
				return 0
			}
		}
		err := v.Set(tc.in)
		if (err == nil) != tc.ok || got() != tc.want {
			t.Errorf("--%s %q = %d, %v; want %d, ok %v", tc.flag, tc.in, got(), err, tc.want, tc.ok)
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
		{name: "help", args: []string{"keys", "limit", "--help"}, out: "--max-wait"},
		{name: "usage", args: []string{"help", "keys", "limit"}, out: "the key's place in corral's queue"},
		{name: "no name", args: append([]string{"keys", "limit"}, dd...), code: 2, err: "missing NAME"},
		{name: "no flags", args: append([]string{"keys", "limit", "alice"}, dd...), code: 2, err: "give one or more of --rpm, --tpm, --tpd, --tpmo, --weight, --class, --max-queue and --max-wait"},
		{name: "negative", args: append([]string{"keys", "limit", "alice", "--tpd", "-1"}, dd...), code: 2, err: "whole number from 0"},
		{name: "not a number", args: append([]string{"keys", "limit", "alice", "--rpm", "lots"}, dd...), code: 2, err: "whole number from 0"},
		{
			name: "two limits", args: append([]string{"keys", "limit", "alice", "--rpm", "60", "--tpd", "100000"}, dd...),
			out:    `limits of API key "alice": 60 requests per minute, unlimited tokens per minute, 100000 tokens per day, unlimited tokens per month; weight 1, interactive, default queue length, default wait`,
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000},
		},
		// Bad queue settings stop before the daemon: an unknown key would
		// otherwise say so.
		{name: "weight too large", args: append([]string{"keys", "limit", "bob", "--weight", "1001"}, dd...), code: 2, err: "give a whole number from 0 (the default, 1) to 1000",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "fractional weight", args: append([]string{"keys", "limit", "bob", "--weight", "1.5"}, dd...), code: 2, err: "invalid value \"1.5\" for flag -weight",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "unknown class", args: append([]string{"keys", "limit", "bob", "--class", "bulk"}, dd...), code: 2, err: "give interactive or batch",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "queue too long", args: append([]string{"keys", "limit", "bob", "--max-queue", "100001"}, dd...), code: 2, err: "give a whole number from 0 (the server's default) to 100000",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "wait without a unit", args: append([]string{"keys", "limit", "bob", "--max-wait", "30"}, dd...), code: 2, err: "give a duration such as 30s or 2m",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "wait too long", args: append([]string{"keys", "limit", "bob", "--max-wait", "25h"}, dd...), code: 2, err: "from 0 (the server's default) to 24h",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "negative wait", args: append([]string{"keys", "limit", "bob", "--max-wait", "-1s"}, dd...), code: 2, err: "to 24h",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{name: "wait in part seconds", args: append([]string{"keys", "limit", "bob", "--max-wait", "1500ms"}, dd...), code: 2, err: "whole seconds",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{
			name: "queue settings keep the caps", args: append([]string{"keys", "limit", "alice", "--weight", "4", "--class", "batch", "--max-queue", "10", "--max-wait", "2m"}, dd...),
			out:    "100000 tokens per day, unlimited tokens per month; weight 4, batch, up to 10 requests waiting, waits up to 2m",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000, Weight: 4, Batch: true, MaxQueue: 10, MaxWaitSeconds: 120},
		},
		{
			name: "list shows queue settings", args: append([]string{"keys", "list"}, dd...), out: "rpm=60 tpd=100000 weight=4 batch queue=10 wait=2m",
			limits: keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000, Weight: 4, Batch: true, MaxQueue: 10, MaxWaitSeconds: 120},
		},
		{
			name: "back to the defaults", args: append([]string{"keys", "limit", "alice", "--class", "interactive", "--weight", "0", "--max-queue", "0", "--max-wait", "0"}, dd...),
			out:    "unlimited tokens per month; weight 1, interactive, default queue length, default wait",
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
