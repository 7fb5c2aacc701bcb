package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRepeatHandler: a retry that fails the same way is written once,
// then once per interval with how many times and since when; a changed
// error, or one back after a quiet interval, is written at once; info
// lines are never held back.
func TestRepeatHandler(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	log := slog.New(newRepeatHandler(slog.NewJSONHandler(&buf, nil), 10*time.Minute, clock))
	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatal(err)
			}
			out = append(out, rec)
		}
		buf.Reset()
		return out
	}
	pull := errors.New("pull nope:1: no such host")
	fail := func() { log.Error("image pull failed", "image", "nope:1", "err", pull) }

	// A retry every 30 s for 9.5 minutes: one line.
	for range 20 {
		fail()
		advance(30 * time.Second)
	}
	if got := lines(); len(got) != 1 || got[0]["repeated"] != nil {
		t.Fatalf("20 same failures wrote %v", got)
	}
	// Past the interval: one more, with the count and the first time.
	advance(time.Minute)
	fail()
	got := lines()
	if len(got) != 1 || got[0]["repeated"] != 21.0 || got[0]["since"] != "2026-01-01T00:00:00Z" || got[0]["err"] != pull.Error() {
		t.Fatalf("after the interval: %v", got)
	}
	// Another error is news; so are other attributes, a logger's own, and
	// other levels. Info lines are all written.
	log.Error("image pull failed", "image", "nope:1", "err", "pull nope:1: unauthorized")
	log.Error("image pull failed", "image", "other:2", "err", pull)
	log.With("instance", "t-ollama-0").Error("image pull failed", "image", "nope:1", "err", pull)
	log.Warn("image pull failed", "image", "nope:1", "err", pull)
	for range 3 {
		log.Info("pulling image", "image", "nope:1")
	}
	fail()
	if got := lines(); len(got) != 7 {
		t.Fatalf("news wrote %d lines, want 7: %v", len(got), got)
	}
	// Quiet for an interval: forgotten, so its return is written as new.
	advance(10 * time.Minute)
	fail()
	if got := lines(); len(got) != 1 || got[0]["repeated"] != nil {
		t.Fatalf("after a quiet interval: %v", got)
	}

	// Loggers share what they have seen, from any goroutine.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			l := log.WithGroup("g").With("n", i%2)
			for range 50 {
				l.Warn("usage: records not saved; will retry", "err", "disk full")
			}
		})
	}
	wg.Wait()
	if got := lines(); len(got) != 2 {
		t.Fatalf("concurrent repeats wrote %d lines, want 2", len(got))
	}
}
