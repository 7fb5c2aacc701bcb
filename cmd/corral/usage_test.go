package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"corral/engine/keys"
	"corral/engine/store"
	meter "corral/engine/usage"
	"corral/ui"
)

// usageDaemon serves the real admin API with a real key manager and
// meter.
func usageDaemon(t *testing.T) (dataDir string, m *meter.Meter) {
	t.Helper()
	dataDir = serveAPI(t, func(st *store.Store) ui.Deps {
		km, err := keys.New(st)
		if err != nil {
			t.Fatal(err)
		}
		if m, err = meter.New(st, km); err != nil {
			t.Fatal(err)
		}
		return ui.Deps{Keys: km, Usage: m}
	})
	return dataDir, m
}

func TestUsageCommand(t *testing.T) {
	dataDir, m := usageDaemon(t)
	dd := []string{"--data-dir", dataDir}
	// An empty report first, then some requests.
	var out bytes.Buffer
	if err := newApp(&out, &out).run(context.Background(), append([]string{"usage", "--since", "2024-03-01"}, dd...)); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "no usage recorded since 2024-03-01\n" {
		t.Fatalf("empty report = %q", got)
	}

	day := func(d int) time.Time { return time.Date(2024, 3, d, 12, 0, 0, 0, time.UTC) }
	for _, r := range []struct {
		at                 time.Time
		key, model, user   string
		prompt, completion int
		status             int
		queued             time.Duration
	}{
		{day(1), "alice", "llama3.2", "ann", 10, 20, 200, 0},
		{day(2), "alice", "qwen3:8b", "", 1, 2, 200, 3 * time.Second},
		{day(2), "bob", "llama3.2", "ben", 100, 0, 503, 150 * time.Millisecond},
		{time.Time{}, "carol", "llama3.2", "", 5, 5, 200, 0}, // now
	} {
		res, err := m.Reserve(context.Background(), r.key, r.model, 10)
		if err != nil {
			t.Fatal(err)
		}
		res.Settle(meter.Record{Time: r.at, User: r.user, PromptTokens: r.prompt, CompletionTokens: r.completion, Status: r.status, Queued: r.queued})
	}

	steps := []struct {
		name string
		args []string
		code int
		want []string // lines of stdout, fields separated by single spaces; or text in the error
	}{
		{"help", []string{"usage", "--help"}, 0, nil},
		{"bad by", append([]string{"usage", "--by", "instance"}, dd...), 2, []string{`--by "instance": use key, model, user or day`}},
		{"bad since", append([]string{"usage", "--since", "last week"}, dd...), 2, []string{`--since "last week"`}},
		{"bad until", append([]string{"usage", "--until", "7d"}, dd...), 2, []string{`--until "7d"`}},
		{"extra argument", append([]string{"usage", "alice"}, dd...), 2, []string{`unexpected argument "alice"`}},
		{"until before since", append([]string{"usage", "--since", "2024-03-02", "--until", "2024-03-01"}, dd...), 1, []string{"is not after since"}},
		{"by key", append([]string{"usage"}, dd...), 0, []string{
			"KEY REQUESTS PROMPT TOKENS COMPLETION TOKENS TOTAL TOKENS ERRORS AVG QUEUE",
			"bob 1 100 0 100 1 150ms",
			"alice 2 11 22 33 0 1.5s",
			"carol 1 5 5 10 0 0s",
			"TOTAL 4 116 27 143 1 788ms",
			"(UTC days, in the days kept)",
		}},
		{"by user", append([]string{"usage", "--by", "user", "--until", "2024-03-31"}, dd...), 0, []string{
			"USER REQUESTS PROMPT TOKENS COMPLETION TOKENS TOTAL TOKENS ERRORS AVG QUEUE",
			"ben 1 100 0 100 1 150ms",
			"ann 1 10 20 30 0 0s",
			"(none) 1 1 2 3 0 3s",
			"TOTAL 3 111 22 133 1 1.1s",
			"(UTC days, through 2024-03-31)",
		}},
		{"by day for one key", append([]string{"usage", "--by", "day", "--key", "alice", "--since", "2024-03-01", "--until", "2024-03-02"}, dd...), 0, []string{
			"DAY REQUESTS PROMPT TOKENS COMPLETION TOKENS TOTAL TOKENS ERRORS AVG QUEUE",
			"2024-03-01 1 10 20 30 0 0s",
			"2024-03-02 1 1 2 3 0 3s",
			"TOTAL 2 11 22 33 0 1.5s",
			"(UTC days, from 2024-03-01 through 2024-03-02 for key alice)",
		}},
		{"by model, last day", append([]string{"usage", "--by", "model", "--since", "1d"}, dd...), 0, []string{
			"MODEL REQUESTS PROMPT TOKENS COMPLETION TOKENS TOTAL TOKENS ERRORS AVG QUEUE",
			"llama3.2 1 5 5 10 0 0s",
			"TOTAL 1 5 5 10 0 0s",
		}},
		{"no daemon", []string{"usage", "--data-dir", t.TempDir()}, 1, []string{"corral is not running"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := newApp(&out, &errOut).run(ctx, s.args)
			if s.code != 0 {
				if err == nil || exitCode(err) != s.code || !strings.Contains(err.Error(), s.want[0]) {
					t.Fatalf("err = %v (exit %d), want exit %d with %q", err, exitCode(err), s.code, s.want[0])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.want == nil {
				if !strings.Contains(out.String(), "--since") {
					t.Fatalf("help = %s", out.String())
				}
				return
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			for i, want := range s.want {
				if i >= len(lines) || strings.Join(strings.Fields(lines[i]), " ") != want {
					t.Fatalf("stdout:\n%s\nline %d: want %q", out.String(), i, want)
				}
			}
		})
	}

	// --json prints the API's report.
	out.Reset()
	if err := newApp(&out, &out).run(context.Background(), append([]string{"usage", "--by", "key", "--key", "bob", "--json"}, dd...)); err != nil {
		t.Fatal(err)
	}
	var rep ui.UsageReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.By != "key" || len(rep.Rows) != 1 || rep.Rows[0] != (meter.Row{Group: "bob", Requests: 1, PromptTokens: 100, Errors: 1, Queued: 150 * time.Millisecond}) {
		t.Fatalf("report = %+v", rep)
	}
}
