package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// repeatEvery is how often a warning said again and again is written: the
// first time, then once per interval with how many times it came and
// since when.
const repeatEvery = 10 * time.Minute

// repeatHandler holds back warnings and errors that say nothing new. The
// daemon's loops retry what fails (an image pull every 30 s, a reconcile
// pass, a store that refuses writes, the chat UI's bucket): each logs its
// failure where it happens, and this handler, wrapped around the daemon's
// log, writes a record of level Warn or more the first time, then the
// same record (level, message and every attribute) at most once per
// repeatEvery, with repeated=N (times since `since`) and since=T. An error
// that changes is a new record and is written at once; one that stops for
// repeatEvery is forgotten, so its return is written at once too. Records
// below Warn are never held back.
type repeatHandler struct {
	next   slog.Handler
	state  *repeatState
	prefix string // the attributes and groups of With*, as text
}

type repeatState struct {
	mu    sync.Mutex
	now   func() time.Time
	every time.Duration
	seen  map[string]*repeatRun
}

// repeatRun is one record said again and again.
type repeatRun struct {
	first, last, written time.Time
	n                    int // times since first
}

// maxRepeats bounds what the handler remembers; past it, records quiet
// for an interval are forgotten.
const maxRepeats = 512

func newRepeatHandler(next slog.Handler, every time.Duration, now func() time.Time) *repeatHandler {
	return &repeatHandler{next: next, state: &repeatState{now: now, every: every, seen: map[string]*repeatRun{}}}
}

func (h *repeatHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *repeatHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, a)
	}
	return &repeatHandler{next: h.next.WithAttrs(attrs), state: h.state, prefix: b.String()}
}

func (h *repeatHandler) WithGroup(name string) slog.Handler {
	return &repeatHandler{next: h.next.WithGroup(name), state: h.state, prefix: h.prefix + name + "{"}
}

func (h *repeatHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s", r.Level, r.Message, h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	n, since, write := h.state.count(b.String())
	if !write {
		return nil
	}
	if n > 1 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", n), slog.Time("since", since))
	}
	return h.next.Handle(ctx, r)
}

// count notes one more record with signature sig, and says whether to
// write it, and with what count.
func (s *repeatState) count(sig string) (n int, since time.Time, write bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	run, ok := s.seen[sig]
	if !ok || now.Sub(run.last) >= s.every {
		if len(s.seen) >= maxRepeats {
			s.forget(now)
		}
		s.seen[sig] = &repeatRun{first: now, last: now, written: now, n: 1}
		return 1, now, true
	}
	run.n++
	run.last = now
	if now.Sub(run.written) < s.every {
		return run.n, run.first, false
	}
	run.written = now
	return run.n, run.first, true
}

// forget drops the records quiet for an interval, or, when every one is
// recent, all of them.
func (s *repeatState) forget(now time.Time) {
	for sig, run := range s.seen {
		if now.Sub(run.last) >= s.every {
			delete(s.seen, sig)
		}
	}
	if len(s.seen) >= maxRepeats {
		clear(s.seen)
	}
}

// writeAttr writes an attribute for a signature: its key and value, and a
// group's attributes in braces.
func writeAttr(b *strings.Builder, a slog.Attr) {
	v := a.Value.Resolve()
	b.WriteString(a.Key)
	if v.Kind() == slog.KindGroup {
		b.WriteString("{")
		for _, g := range v.Group() {
			writeAttr(b, g)
		}
		b.WriteString("}")
		return
	}
	fmt.Fprintf(b, "=%q ", v.String())
}
