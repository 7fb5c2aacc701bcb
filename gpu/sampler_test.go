package gpu

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProbe counts its samples and can panic.
type fakeProbe struct {
	samples atomic.Int32
	closed  atomic.Bool
	panics  bool
}

func (p *fakeProbe) sample(at time.Time) []Metrics {
	if p.panics {
		panic("boom")
	}
	n := p.samples.Add(1)
	return []Metrics{{Index: 0, UtilizationGPU: uint32(n), At: at}}
}

func (p *fakeProbe) close() { p.closed.Store(true) }

func TestSamplerRun(t *testing.T) {
	p := &fakeProbe{}
	s := newSampler(func() (probe, error) { return p, nil }, time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.Now().Add(5 * time.Second)
	for p.samples.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no samples")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Run(ctx); err == nil || err.Error() != "gpu: sampler is already running" {
		t.Errorf("second Run = %v, want already running", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if !p.closed.Load() {
		t.Error("probe not closed when Run returned")
	}
	if got := s.Latest(); len(got) != 1 || got[0].UtilizationGPU < 3 {
		t.Errorf("Latest = %+v, want the last sample", got)
	}
}

func TestSamplerPanic(t *testing.T) {
	p := &fakeProbe{panics: true}
	s := newSampler(func() (probe, error) { return p, nil }, time.Millisecond)
	if err := s.Run(t.Context()); err == nil || err.Error() != "gpu: sampling failed: boom" {
		t.Errorf("Run = %v, want the panic as an error", err)
	}
	if !p.closed.Load() {
		t.Error("probe not closed")
	}
}

func TestSamplerWithoutNVML(t *testing.T) {
	s := newSampler(nil, 0)
	if s.interval != defaultInterval {
		t.Errorf("interval = %v, want the default %v", s.interval, defaultInterval)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run = %v, want nil at once", err)
	}
	if got := s.Latest(); got != nil {
		t.Errorf("Latest = %v, want nil", got)
	}
}
