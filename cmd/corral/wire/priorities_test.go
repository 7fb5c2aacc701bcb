package wire

import (
	"context"
	"testing"
	"time"

	"corral/engine/keys"
	"corral/engine/store"
	"corral/proxy/gateway"
)

func TestPriorities(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := keys.New(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, l := range map[string]keys.Limits{
		"plain":   {},
		"capped":  {RequestsPerMinute: 60, TokensPerDay: 1000},
		"batch":   {Batch: true},
		"heavy":   {Weight: 4, MaxQueue: 10, MaxWaitSeconds: 30},
		"patient": {Weight: 1, Batch: true, MaxQueue: 100_000, MaxWaitSeconds: 86400},
	} {
		if _, _, err := m.Create(ctx, keys.CreateOptions{Name: name}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SetLimits(ctx, name, l); err != nil {
			t.Fatal(err)
		}
	}
	p := Priorities{K: m}
	cases := []struct {
		key  string
		want gateway.Priority
	}{
		{"plain", gateway.Priority{}},
		{"capped", gateway.Priority{}},
		{"batch", gateway.Priority{Batch: true}},
		{"heavy", gateway.Priority{Weight: 4, MaxQueue: 10, MaxWait: 30 * time.Second}},
		{"patient", gateway.Priority{Weight: 1, Batch: true, MaxQueue: 100_000, MaxWait: 24 * time.Hour}},
		{"nobody", gateway.Priority{}},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			if got := p.Priority(tc.key); got != tc.want {
				t.Fatalf("Priority(%q) = %+v, want %+v", tc.key, got, tc.want)
			}
		})
	}

	// A change shows on the next call.
	if _, err := m.SetLimits(ctx, "plain", keys.Limits{Weight: 2}); err != nil {
		t.Fatal(err)
	}
	if got := p.Priority("plain"); got != (gateway.Priority{Weight: 2}) {
		t.Fatalf("after a change = %+v", got)
	}
}
