package keys

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSetLimits(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	m := newManager(t, st, WithClock(clk.Now))
	ctx := context.Background()
	secret, _ := mustCreate(t, m, CreateOptions{Name: "alice"})
	if l, ok := m.Limits("alice"); !ok || l != (Limits{}) {
		t.Fatalf("limits of a new key = %+v, %v; want none", l, ok)
	}
	if _, ok := m.Limits("nobody"); ok {
		t.Fatal("limits of an unknown key")
	}

	cases := []struct {
		name   string
		key    string
		limits Limits
		want   error // nil: set
		msg    string
	}{
		{"all four", "alice", Limits{RequestsPerMinute: 60, TokensPerMinute: 100_000, TokensPerDay: 1_000_000, TokensPerMonth: 20_000_000}, nil, ""},
		{"back to unlimited but one", "alice", Limits{TokensPerDay: 5000}, nil, ""},
		{"negative", "alice", Limits{TokensPerMinute: -1}, ErrInvalid, "tokens per minute limit -1"},
		{"too large", "alice", Limits{TokensPerMonth: maxLimit + 1}, ErrInvalid, "tokens per month limit"},
		{"queue settings at their bounds", "alice", Limits{TokensPerDay: 5000, Weight: 1000, Batch: true, MaxQueue: 100_000, MaxWaitSeconds: 86400}, nil, ""},
		{"queue settings", "alice", Limits{TokensPerDay: 5000, Weight: 4, MaxQueue: 10, MaxWaitSeconds: 30}, nil, ""},
		{"weight too large", "alice", Limits{Weight: 1001}, ErrInvalid, "weight 1001: give a whole number from 0 (the default, 1) to 1000"},
		{"negative weight", "alice", Limits{Weight: -1}, ErrInvalid, "weight -1:"},
		{"queue too long", "alice", Limits{MaxQueue: 100_001}, ErrInvalid, "max queue 100001 requests: give a whole number from 0 (the server's default) to 100000"},
		{"wait too long", "alice", Limits{MaxWaitSeconds: 86401}, ErrInvalid, "max wait 86401 seconds: give a whole number from 0 (the server's default) to 86400"},
		{"negative wait", "alice", Limits{MaxWaitSeconds: -5}, ErrInvalid, "max wait -5 seconds"},
		{"back to the defaults", "alice", Limits{TokensPerDay: 5000}, nil, ""},
		{"unknown key", "bob", Limits{RequestsPerMinute: 1}, ErrNotFound, `no API key named "bob"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := m.Limits(tc.key)
			k, err := m.SetLimits(ctx, tc.key, tc.limits)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.msg)
				}
				if after, _ := m.Limits(tc.key); after != before {
					t.Fatalf("a refused change changed the limits: %+v", after)
				}
				return
			}
			if err != nil || k.Limits != tc.limits || k.Name != tc.key {
				t.Fatalf("set = %+v, %v", k, err)
			}
			if got, _ := m.Limits(tc.key); got != tc.limits {
				t.Fatalf("limits = %+v, want %+v", got, tc.limits)
			}
		})
	}

	// The key still works, its last use survives the write, and a restart
	// keeps the limits.
	clk.Add(time.Minute)
	if _, err := m.Authorize(ctx, secret, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetLimits(ctx, "alice", Limits{TokensPerDay: 7}); err != nil {
		t.Fatal(err)
	}
	rec, err := st.KeyByName("alice")
	if err != nil || !rec.LastUsed.Equal(clk.Now()) || rec.Limits.TokensPerDay != 7 {
		t.Fatalf("stored = %+v, %v", rec, err)
	}
	m2 := newManager(t, st)
	if l, _ := m2.Limits("alice"); l != (Limits{TokensPerDay: 7}) {
		t.Fatalf("limits after restart = %+v", l)
	}
	raw, _ := json.Marshal(m2.List()[0])
	if !strings.Contains(string(raw), `"limits":{"requests_per_minute":0,"tokens_per_minute":0,"tokens_per_day":7,"tokens_per_month":0}`) {
		t.Fatalf("view = %s", raw)
	}
}

func TestRotateInternal(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	m := newManager(t, st, WithClock(clk.Now))
	ctx := context.Background()

	if _, _, err := m.Create(ctx, CreateOptions{Name: InternalName}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "rotate-internal") {
		t.Fatalf("create with the internal name: %v", err)
	}
	first, err := m.RotateInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := m.Authorize(ctx, first, "any-model"); err != nil || name != InternalName {
		t.Fatalf("authorize the internal key = %q, %v", name, err)
	}
	k := m.List()[0]
	if k.Name != InternalName || !k.Internal || k.Status != StatusActive || !strings.HasPrefix(first, k.Prefix) || len(k.Models) != 0 {
		t.Fatalf("internal key = %+v", k)
	}
	if _, err := m.SetLimits(ctx, InternalName, Limits{RequestsPerMinute: 600}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, InternalName); err != nil {
		t.Fatal(err)
	}

	clk.Add(time.Hour)
	second, err := m.RotateInternal(ctx)
	if err != nil || second == first {
		t.Fatalf("rotate = %q, %v", second, err)
	}
	if _, err := m.Authorize(ctx, first, ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("the old secret after rotation: %v", err)
	}
	if _, err := m.Authorize(ctx, second, ""); err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	k2 := m.List()[0]
	if len(m.List()) != 1 || k2.ID != k.ID || k2.Status != StatusActive || !k2.Created.Equal(clk.Now()) || k2.Limits.RequestsPerMinute != 600 || !strings.HasPrefix(second, k2.Prefix) {
		t.Fatalf("after rotation = %+v (was %+v)", k2, k)
	}

	// A restart knows only the new secret.
	m2 := newManager(t, st)
	if _, err := m2.Authorize(ctx, first, ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old secret after restart: %v", err)
	}
	if name, err := m2.Authorize(ctx, second, ""); err != nil || name != InternalName {
		t.Fatalf("new secret after restart = %q, %v", name, err)
	}
	if l, _ := m2.Limits(InternalName); l.RequestsPerMinute != 600 {
		t.Fatalf("limits after restart = %+v", l)
	}
}
