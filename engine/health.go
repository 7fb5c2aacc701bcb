package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

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
		}
	}
}

type probeResult struct {
	name, containerID string
	version           string
	err               error
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
			v, err := e.probeVersion(ctx, t.endpoint)
			results[i] = probeResult{t.name, t.id, v, err}
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
	e.mu.Unlock()
	if becameHealthy {
		e.poke() // a rolling replacement may be waiting for this
	}
}

// applyProbe updates one instance; the caller holds e.mu.
func (e *Engine) applyProbe(in *instance, r probeResult) (becameHealthy bool) {
	if r.err == nil {
		in.healthFails = 0
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

func (e *Engine) probeVersion(ctx context.Context, endpoint string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/api/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := e.probe.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<16)).Decode(&v); err != nil {
		return "", fmt.Errorf("decode version: %w", err)
	}
	return v.Version, nil
}
