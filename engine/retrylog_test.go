package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// capture keeps every log record.
type capture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r.Clone())
	c.mu.Unlock()
	return nil
}

// take returns the records logged since the last take, by message, with
// each one's attributes as text.
func (c *capture) take() map[string][]map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]map[string]string{}
	for _, r := range c.recs {
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		out[r.Message] = append(out[r.Message], attrs)
	}
	c.recs = nil
	return out
}

// TestImagePullRetryLogsOnce: a pull that keeps failing the same way is
// said once: its retries every pullRetry neither log "pulling image" nor
// flip the instance to pulling and back; each failure logs the same
// record (which the daemon's log holds back, see cmd/corral's
// repeatHandler), and the pull that works at last says after how many
// failures.
func TestImagePullRetryLogsOnce(t *testing.T) {
	f := newFake()
	f.pullErr = errors.New("pull nope:1: dial tcp: lookup registry-1.docker.io: no such host")
	logs := &capture{}
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEngine(Config{Namespace: "t", Logger: slog.New(logs)}, f, cpuSpecs("t", 1, "nope:1"))
	e.now, e.reach = clock.now, ReachIP
	ctx := context.Background()

	e.reconcile(ctx)
	first := logs.take()
	if len(first["pulling image"]) != 1 || len(first["image pull failed"]) != 1 {
		t.Fatalf("first try logged %v", first)
	}
	failure := first["image pull failed"][0]["err"]
	phase, reason := phaseOf(e, 0)
	const tries = 5
	for i := 2; i <= tries; i++ {
		clock.add(pullRetry + time.Second)
		e.reconcile(ctx)
		got := logs.take()
		if n := len(got["image pull failed"]); n != 1 || got["image pull failed"][0]["err"] != failure {
			t.Fatalf("try %d: failures logged %v, want the same one as the first: %q", i, got["image pull failed"], failure)
		}
		for _, msg := range []string{"pulling image", "instance phase"} {
			if len(got[msg]) > 0 {
				t.Fatalf("try %d logged %q again: %v", i, msg, got[msg])
			}
		}
		if p, r := phaseOf(e, 0); p != phase || r != reason {
			t.Fatalf("try %d: phase %s (%s), want it to stay %s (%s)", i, p, r, phase, reason)
		}
		if evs := e.Events("t-ollama-0"); len(evs) > 3 {
			t.Fatalf("try %d: events grow at every retry: %+v", i, evs)
		}
	}

	f.pullErr = nil
	clock.add(pullRetry + time.Second)
	e.reconcile(ctx)
	got := logs.take()
	if len(got["image pulled"]) != 1 || got["image pulled"][0]["failures"] != "5" {
		t.Fatalf("the pull that worked logged %v", got)
	}
	if p, _ := phaseOf(e, 0); p != PhaseStarting {
		t.Fatalf("after the pull, phase = %s", p)
	}
}

// TestDockerDownLogsOnce: Docker unreachable is logged when it starts and
// when the error changes, not at every retry; its return says how long.
func TestDockerDownLogsOnce(t *testing.T) {
	logs := &capture{}
	e := newEngine(Config{Namespace: "t", Logger: slog.New(logs)}, newFake(), nil)
	refused := errors.New("dial unix /var/run/docker.sock: connect: connection refused")
	for range 5 {
		e.dockerDown(refused)
	}
	e.dockerDown(errors.New("permission denied"))
	e.dockerUp(ReachIP)
	got := logs.take()
	if len(got["docker unreachable; serving what is known and retrying"]) != 1 {
		t.Fatalf("logged %v", got)
	}
	if c := got["docker still unreachable, now with another error; retrying"]; len(c) != 1 || c[0]["failures"] != "5" {
		t.Fatalf("the changed error: %v", c)
	}
	if back := got["docker reachable again"]; len(back) != 1 || back[0]["failures"] != "6" {
		t.Fatalf("back: %v", back)
	}
}
