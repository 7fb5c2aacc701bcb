package gateway

import (
	"context"
	"sync"
	"time"
)

// Rechecker, when the Upstreams has it, reads every instance again now
// and returns once the snapshot shows what they said, or ctx ends. The
// gateway asks before it answers that a model does not exist: a model
// made on an instance since the last poll (a pull, or an import behind
// corral's back) is then served rather than refused until the next one.
type Rechecker interface {
	Recheck(ctx context.Context) error
}

// A stranger with a key can name models that exist nowhere as fast as
// they like; what that costs the instances is bounded: one re-check runs
// at a time, however many requests wait for it, the next starts no sooner
// than recheckEvery after it ended, and none takes longer than
// recheckWait. Requests that find none allowed get their 404 from the
// snapshot they have, which is then that fresh.
const (
	recheckEvery = time.Second
	recheckWait  = 3 * time.Second
)

// recheck coalesces the gateway's re-checks.
type recheck struct {
	mu      sync.Mutex
	running chan struct{} // closed when the running re-check ends; nil when none runs
	ended   time.Time     // when the latest ended
}

// recheckUpstreams has the instances read again, or joins a re-check
// under way, and waits for it (or for ctx). It reports whether the
// snapshot may have changed, which is false when the Upstreams cannot
// re-check, one ran too recently to start another, or ctx ended first.
func (g *Gateway) recheckUpstreams(ctx context.Context) bool {
	rc, ok := g.upstreams.(Rechecker)
	if !ok {
		return false
	}
	g.rc.mu.Lock()
	done := g.rc.running
	if done == nil {
		if !g.rc.ended.IsZero() && g.now().Sub(g.rc.ended) < recheckEvery {
			g.rc.mu.Unlock()
			return false
		}
		done = make(chan struct{})
		g.rc.running = done
		// The re-check is the gateway's, not the request's: a client that
		// leaves does not cut it short for the others waiting on it.
		g.bg.Go(func() {
			ctx, cancel := context.WithTimeout(g.bgCtx, recheckWait)
			defer cancel()
			if err := rc.Recheck(ctx); err != nil {
				g.log.Warn("instances not re-read in time", "err", err)
			}
			g.rc.mu.Lock()
			g.rc.running, g.rc.ended = nil, g.now()
			g.rc.mu.Unlock()
			close(done)
		})
	}
	g.rc.mu.Unlock()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// hasModel reports whether some instance of s lists model.
func hasModel(s *Snapshot, model string) bool {
	for i := range s.Upstreams {
		if s.Upstreams[i].Models[model] {
			return true
		}
	}
	return false
}

// findModel reports whether some instance lists model, re-checking the
// instances once when the snapshot has it nowhere, and returns the
// snapshot it looked at last.
func (g *Gateway) findModel(ctx context.Context, model string) (*Snapshot, bool) {
	s := g.upstreams.Snapshot()
	if hasModel(s, model) {
		return s, true
	}
	if !g.recheckUpstreams(ctx) {
		return s, false
	}
	s = g.upstreams.Snapshot()
	return s, hasModel(s, model)
}
