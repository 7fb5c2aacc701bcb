package gpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// defaultInterval is the sampling interval NewSampler uses when given none.
const defaultInterval = 5 * time.Second

// probe is an open NVML session that reads every device once per call.
type probe interface {
	sample(at time.Time) []Metrics
	close()
}

// Sampler samples every GPU at a fixed interval and keeps the latest
// sample. Run it in its own goroutine; call Latest from any goroutine.
type Sampler struct {
	interval time.Duration
	now      func() time.Time
	// open starts an NVML session; nil when there is no NVML to open.
	open    func() (probe, error)
	running atomic.Bool

	mu     sync.Mutex
	latest []Metrics
}

func newSampler(open func() (probe, error), interval time.Duration) *Sampler {
	if interval <= 0 {
		interval = defaultInterval
	}
	return &Sampler{interval: interval, now: time.Now, open: open}
}

// Run samples every interval until ctx is done, and then returns nil. It
// holds NVML open for as long as it runs. If NVML is unavailable (no
// driver, or a binary built without cgo), Run returns nil at once and
// Latest stays empty: Discover's Reason says why. Run returns an error only
// when it is already running or the NVML bindings panic.
func (s *Sampler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("gpu: sampler is already running")
	}
	defer s.running.Store(false)
	if s.open == nil || ctx.Err() != nil {
		return nil
	}
	p, err := s.open()
	if err != nil {
		return nil
	}
	defer p.close()

	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		m, err := safeSample(p, s.now())
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.latest = m
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// safeSample turns a panic in the NVML bindings into an error, so that a
// broken driver stops sampling instead of the process.
func safeSample(p probe, at time.Time) (m []Metrics, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gpu: sampling failed: %v", r)
		}
	}()
	return p.sample(at), nil
}

// Latest returns a copy of the last sample, one Metrics per device in
// index order; nil before the first sample. After Run returns it keeps the
// last sample; each Metrics carries the time it was taken.
func (s *Sampler) Latest() []Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.latest)
}
