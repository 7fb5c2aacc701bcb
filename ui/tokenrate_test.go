package ui

import (
	"testing"
	"time"
)

func TestTokenRates(t *testing.T) {
	at := time.Unix(1_000_000, 0)
	r := NewTokenRates(func() time.Time { return at })
	r.Add("a", 300)
	at = at.Add(10 * time.Second)
	r.Add("a", 600)
	r.Add("b", 30)
	r.Add("b", -5) // nothing
	if got := r.PerSecond(); got["a"] != 30 || got["b"] != 1 {
		t.Fatalf("rates = %v, want a 30/s, b 1/s", got)
	}
	// The first burst leaves the window, then everything.
	at = at.Add(25 * time.Second)
	if got := r.PerSecond(); got["a"] != 20 {
		t.Fatalf("after 35 s: %v, want a 20/s", got)
	}
	at = at.Add(time.Hour)
	if got := r.PerSecond(); got["a"] != 0 || got["b"] != 0 {
		t.Fatalf("an hour later: %v", got)
	}
}
