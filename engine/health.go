package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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

// Recheck probes every instance now, as Refresh asks, and returns once a
// round of probes that began after the call has published its routes, or
// ctx ends. The gateway calls it before it says a model does not exist.
func (e *Engine) Recheck(ctx context.Context) error {
	want := e.checks.next()
	e.Refresh()
	for {
		done, ended := e.checks.wait(want)
		if done {
			return nil
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return fmt.Errorf("engine: re-reading the instances: %w", ctx.Err())
		}
	}
}

// checkCount counts the health loop's rounds of probes.
type checkCount struct {
	mu           sync.Mutex
	begun, ended uint64
	end          chan struct{} // closed when a round ends, then replaced
}

// next is the number of the next round to begin.
func (c *checkCount) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.begun + 1
}

// wait reports whether round n has ended, or returns a channel closed
// when the round running now ends.
func (c *checkCount) wait(n uint64) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended >= n, c.end
}

func (c *checkCount) begin() {
	c.mu.Lock()
	c.begun++
	c.mu.Unlock()
}

func (c *checkCount) finish() {
	c.mu.Lock()
	c.ended = c.begun
	close(c.end)
	c.end = make(chan struct{})
	c.mu.Unlock()
}

// unhealthyAfter consecutive failed probes take a healthy instance out.
const unhealthyAfter = 2

func (e *Engine) healthLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.HealthInterval)
	defer t.Stop()
	for {
		e.checks.begin()
		e.checkHealth(ctx)
		e.checks.finish()
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
	type target struct {
		name, id, endpoint string
		spec               Spec
	}
	var targets []target
	e.mu.Lock()
	for name, in := range e.inst {
		switch in.phase {
		case PhaseStarting, PhaseHealthy, PhaseUnhealthy:
			if in.endpoint != "" {
				targets = append(targets, target{name, in.containerID, in.endpoint, in.spec})
			}
		}
	}
	e.mu.Unlock()

	results := make([]probeResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			var r probeResult
			if isApp(t.spec) {
				r = e.probeApp(ctx, t.endpoint, t.spec.Health)
			} else {
				r = e.probe(ctx, t.endpoint)
			}
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
			if isApp(in.spec) {
				e.setPhase(in, PhaseHealthy, "answering "+healthCheck(in.spec))
			} else {
				e.setPhase(in, PhaseHealthy, "ollama "+r.version)
			}
			return true
		}
		return false
	}
	in.healthFails++
	reason := fmt.Sprintf("%s: %v", healthCheck(in.spec), r.err)
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

// healthCheck says what the health check of s asks.
func healthCheck(s Spec) string {
	switch {
	case !isApp(s):
		return "GET /api/version"
	case s.Health == "tcp":
		return fmt.Sprintf("a connection to port %d", portOf(s))
	}
	return "GET " + s.Health
}

// probeApp checks a companion: its health path answers below 500 (a
// redirect to a sign-in page is an answer), or, for "tcp", its port
// accepts a connection.
func (e *Engine) probeApp(ctx context.Context, endpoint, health string) probeResult {
	var r probeResult
	r.at = e.now()
	if health == "tcp" {
		u, err := url.Parse(endpoint)
		if err != nil {
			r.err = err
			return r
		}
		c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			r.err = netReason(err)
			return r
		}
		c.Close()
		return r
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+health, nil)
	if err != nil {
		r.err = err
		return r
	}
	resp, err := e.appClient.Do(req)
	if err != nil {
		r.err = netReason(err)
		return r
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		r.err = fmt.Errorf("status %s", resp.Status)
	}
	return r
}

// netReason is a failed probe's error without the address it went to:
// the reason an instance shows (corral status, the pages, the gateway's
// 503s, the chat UI's waiting page) names the instance and the check, and
// its endpoint is shown apart, to admins only. "connect: connection
// refused", not `Get "http://172.18.0.3:11434/api/version": dial tcp
// 172.18.0.3:11434: connect: connection refused`.
func netReason(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("lookup %s: %s", dns.Name, dns.Err)
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("no answer in time")
	case errors.As(err, &op) && op.Err != nil:
		return op.Err
	}
	return err
}
