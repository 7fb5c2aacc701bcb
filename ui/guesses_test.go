package ui

import (
	"testing"
	"time"
)

// Ten wrong tokens in a minute make an address wait, longer each time;
// a right one forgets; other addresses are not held back.
func TestGuessesSlowAGuesser(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newGuesses(func() time.Time { return now })
	for i := range guessLimit - 1 {
		g.failed("10.0.0.9")
		if d := g.wait("10.0.0.9"); d != 0 {
			t.Fatalf("waits %s after %d wrong tokens", d, i+1)
		}
	}
	g.failed("10.0.0.9")
	if d := g.wait("10.0.0.9"); d != time.Second {
		t.Fatalf("after %d wrong tokens: waits %s, want 1s", guessLimit, d)
	}
	if d := g.wait("10.0.0.10"); d != 0 {
		t.Fatalf("another address waits %s", d)
	}
	now = now.Add(time.Second)
	for range guessLimit {
		g.failed("10.0.0.9")
	}
	if d := g.wait("10.0.0.9"); d != 2*time.Second {
		t.Fatalf("second lockout: %s, want 2s", d)
	}
	// Slow guessing, under the limit per minute, is never held back.
	g.succeeded("10.0.0.9")
	for range 3 * guessLimit {
		now = now.Add(7 * time.Second)
		g.failed("10.0.0.9")
		if d := g.wait("10.0.0.9"); d != 0 {
			t.Fatalf("a guess every 7s waits %s", d)
		}
	}
}
