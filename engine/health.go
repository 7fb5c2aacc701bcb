package engine

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Refresh asks for an immediate probe of every instance, so a change made
// through Ollama (a pull, a load) shows in the routes without waiting.
func (e *Engine) Refresh() {
	select {
	case e.refresh <- struct{}{}:
	default:
	}
}

// unhealthyAfter consecutive failed probes take a healthy instance out.
const unhealthyAfter = 2

func (e *Engine) healthLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.HealthInterval)
	defer t.Stop()
	for {
		e.checkHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.refresh:
		}
	}
}

type probeResult struct {
	name, containerID string
	version           string
	err               error

	models             []ModelInfo
	loaded             []LoadedModel
	modelsOK, loadedOK bool
	at                 time.Time
}

// checkHealth probes every instance with a running container, all at once.
func (e *Engine) checkHealth(ctx context.Context) {
	type target struct{ name, id, endpoint string }
	var targets []target
	e.mu.Lock()
	for name, in := range e.inst {
		switch in.phase {
		case PhaseStarting, PhaseHealthy, PhaseUnhealthy:
			if in.endpoint != "" {
				targets = append(targets, target{name, in.containerID, in.endpoint})
			}
		}
	}
	e.mu.Unlock()

	results := make([]probeResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			r := e.probe(ctx, t.endpoint)
			r.name, r.containerID = t.name, t.id
			results[i] = r
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	becameHealthy := false
	e.mu.Lock()
	for _, r := range results {
		in, ok := e.inst[r.name]
		if !ok || in.containerID != r.containerID {
			continue // replaced meanwhile
		}
		becameHealthy = e.applyProbe(in, r) || becameHealthy
	}
	e.publish()
	e.mu.Unlock()
	if becameHealthy {
		e.poke() // a rolling replacement may be waiting for this
	}
}

// applyProbe updates one instance; the caller holds e.mu.
func (e *Engine) applyProbe(in *instance, r probeResult) (becameHealthy bool) {
	switch in.phase {
	case PhaseStarting, PhaseHealthy, PhaseUnhealthy:
	default:
		// Draining (or failed) since the probe went out: the reconciler
		// owns the phase now.
		return false
	}
	if r.err == nil {
		in.healthFails = 0
		if r.modelsOK {
			in.models = r.models
		}
		if r.loadedOK {
			in.loaded = r.loaded
		}
		in.polledAt = r.at
		if in.phase != PhaseHealthy {
			e.setPhase(in, PhaseHealthy, "ollama "+r.version)
			return true
		}
		return false
	}
	in.healthFails++
	reason := fmt.Sprintf("GET /api/version: %v", r.err)
	switch in.phase {
	case PhaseHealthy:
		if in.healthFails >= unhealthyAfter {
			e.setPhase(in, PhaseUnhealthy, reason)
		}
	case PhaseStarting:
		if e.now().Sub(in.since) > e.cfg.StartTimeout {
			e.setPhase(in, PhaseUnhealthy, fmt.Sprintf("no answer for %s: %s", e.cfg.StartTimeout, reason))
		}
	case PhaseUnhealthy:
		if in.reason != "container exited" {
			e.setPhase(in, PhaseUnhealthy, reason)
		}
	}
	return false
}
