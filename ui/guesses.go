package ui

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// guesses slows whoever keeps sending wrong admin tokens, by address:
// after guessLimit wrong ones within guessWindow the address waits,
// a second at first and twice as long each time it does so again (up to
// guessMaxWait), whether it guesses through the sign-in form or as a
// bearer token. The admin token is long enough that guessing it is
// hopeless anyway; this keeps a scanner from costing the server anything
// and shows in the log who tried.
type guesses struct {
	now func() time.Time

	mu sync.Mutex
	by map[string]*guessRecord
}

type guessRecord struct {
	fails    []time.Time // within the window
	until    time.Time   // no tries before this
	lockouts int
}

const (
	guessLimit    = 10
	guessWindow   = time.Minute
	guessMaxWait  = 5 * time.Minute
	guessMaxAddrs = 4096 // past this, records with nothing pending are dropped
)

func newGuesses(now func() time.Time) *guesses {
	return &guesses{now: now, by: map[string]*guessRecord{}}
}

// clientAddr is the address guesses are counted by: the admin listener
// is reached directly, so the connection's own.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wait is how long addr must wait before it may try again; 0: now.
func (g *guesses) wait(addr string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if rec := g.by[addr]; rec != nil {
		if d := rec.until.Sub(g.now()); d > 0 {
			return d
		}
	}
	return 0
}

// failed records a wrong token from addr.
func (g *guesses) failed(addr string) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := g.by[addr]
	if rec == nil {
		if len(g.by) >= guessMaxAddrs {
			g.prune(now)
		}
		rec = &guessRecord{}
		g.by[addr] = rec
	}
	kept := rec.fails[:0]
	for _, t := range rec.fails {
		if now.Sub(t) < guessWindow {
			kept = append(kept, t)
		}
	}
	rec.fails = append(kept, now)
	if len(rec.fails) >= guessLimit {
		rec.until = now.Add(min(time.Second<<min(rec.lockouts, 16), guessMaxWait))
		rec.lockouts++
		rec.fails = rec.fails[:0]
	}
}

// succeeded forgets addr's wrong tries.
func (g *guesses) succeeded(addr string) {
	g.mu.Lock()
	delete(g.by, addr)
	g.mu.Unlock()
}

// prune drops the records that hold nothing back; the caller holds g.mu.
func (g *guesses) prune(now time.Time) {
	for a, rec := range g.by {
		if !rec.until.After(now) && (len(rec.fails) == 0 || now.Sub(rec.fails[len(rec.fails)-1]) >= guessWindow) {
			delete(g.by, a)
		}
	}
}
