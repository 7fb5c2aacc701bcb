package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"corral/proxy/scheduler"
)

// Priorities gives each key its share of busy instances; nil makes every
// key equal and interactive.
type Priorities interface {
	Priority(key string) Priority
}

// Priority is one key's place in corral's queue.
type Priority struct {
	Weight   float64       // share against other keys waiting; 0 counts as 1
	Batch    bool          // waits behind every interactive request
	MaxWait  time.Duration // longest wait before a 429; 0: the gateway's
	MaxQueue int           // requests it may have waiting; 0: the gateway's
}

// syncScheduler gives the scheduler the instances of the latest snapshot
// when it changed, and returns that snapshot.
func (g *Gateway) syncScheduler() *Snapshot {
	s := g.upstreams.Snapshot()
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	if s == g.synced {
		return s
	}
	g.synced = s
	// A model placed on some instances goes to those only, while any of
	// them can serve.
	placed := map[string]bool{}
	for i := range s.Upstreams {
		if u := &s.Upstreams[i]; u.Healthy && !u.Draining {
			for m := range u.Placed {
				placed[m] = true
			}
		}
	}
	list := make([]scheduler.Instance, 0, len(s.Upstreams))
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		models := u.Models
		if len(placed) > 0 {
			models = make(map[string]bool, len(u.Models))
			for m := range u.Models {
				if !placed[m] || u.Placed[m] {
					models[m] = true
				}
			}
		}
		list = append(list, scheduler.Instance{
			Name: u.Name, Available: u.Healthy && !u.Draining, Slots: u.Parallel, Weight: u.Weight,
			Models: models, Loaded: u.Loaded, PolledAt: u.PolledAt, FreeMemory: u.FreeMemory,
		})
	}
	g.sched.Update(list)
	return s
}

// watchWhileWaiting keeps the scheduler's view current while requests
// wait in its queue, when no other request comes to do it: an instance
// that comes up or goes down changes where they go. The goroutine runs
// only while some request waits, and Close stops it.
func (g *Gateway) watchWhileWaiting() (done func()) {
	g.watchMu.Lock()
	g.waiting++
	if !g.watching {
		g.watching = true
		g.bg.Add(1)
		go g.watch()
	}
	g.watchMu.Unlock()
	return func() {
		g.watchMu.Lock()
		g.waiting--
		g.watchMu.Unlock()
	}
}

func (g *Gateway) watch() {
	defer g.bg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-g.bgCtx.Done():
			g.watchMu.Lock()
			g.watching = false
			g.watchMu.Unlock()
			return
		case <-t.C:
		}
		g.watchMu.Lock()
		if g.waiting == 0 {
			g.watching = false
			g.watchMu.Unlock()
			return
		}
		g.watchMu.Unlock()
		g.syncScheduler()
	}
}

// acquire waits for the scheduler to give the request an instance, and
// counts it in flight there. Without one it says why: the model is
// nowhere, every instance with it is down, or the queue refused it; a nil
// error and nil upstream mean every instance with it was tried, or the
// client left.
func (g *Gateway) acquire(ctx context.Context, fr forwardReq, tried map[string]bool) (*Upstream, *upstreamState, *scheduler.Grant, *apiError) {
	s := g.syncScheduler()
	t := scheduler.Ticket{Consumer: fr.consumer, Group: fr.key, Model: fr.model, Avoid: g.avoid(s, fr.model, tried)}
	if g.cfg.Priorities != nil {
		p := g.cfg.Priorities.Priority(fr.key)
		t.Weight, t.MaxWait, t.MaxQueue = p.Weight, p.MaxWait, p.MaxQueue
		if p.Batch {
			t.Class = scheduler.Batch
		}
	}
	done := g.watchWhileWaiting()
	grant, err := g.sched.Acquire(ctx, t)
	done()
	var ref *scheduler.Refused
	switch {
	case errors.As(err, &ref):
		return nil, nil, nil, &apiError{Status: http.StatusTooManyRequests, Message: ref.Reason, Code: "rate_limit_exceeded", RetryAfter: ref.RetryAfter}
	case errors.Is(err, scheduler.ErrNoInstance):
		return nil, nil, nil, unavailable(g.upstreams.Snapshot(), fr.model, fr.allowed)
	case err != nil:
		return nil, nil, nil, nil // the client left
	}
	s = g.upstreams.Snapshot()
	for i := range s.Upstreams {
		if u := &s.Upstreams[i]; u.Name == grant.Instance {
			st := g.states.get(u.Name)
			st.inflight.Add(1)
			return u, st, grant, nil
		}
	}
	// Removed since the scheduler last heard: let the caller try again.
	grant.Done(scheduler.Outcome{})
	return nil, nil, nil, &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("model %s is unavailable: instance %s went away", fr.model, grant.Instance), RetryAfter: time.Second}
}

// avoid is where a request must not go: instances it tried, and those
// passive health ejected, unless every instance with the model is
// ejected: then they are tried anyway rather than refused while the
// engine still calls them healthy.
func (g *Gateway) avoid(s *Snapshot, model string, tried map[string]bool) map[string]bool {
	now := g.now()
	var ejected []string
	usable := 0
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		if !u.Models[model] || !u.Healthy || u.Draining || tried[u.Name] {
			continue
		}
		st := g.states.get(u.Name)
		st.healedSince(u.Since)
		if st.ejected(now) {
			ejected = append(ejected, u.Name)
			continue
		}
		usable++
	}
	if usable == 0 || len(ejected) == 0 {
		return tried
	}
	out := make(map[string]bool, len(tried)+len(ejected))
	for n := range tried {
		out[n] = true
	}
	for _, n := range ejected {
		out[n] = true
	}
	return out
}

// unavailable says why no instance can take a request for model, or nil
// when some could and every one was tried. A 404 lists the models the
// key may use instead (allowed; nil: any).
func unavailable(s *Snapshot, model string, allowed func(string) bool) *apiError {
	var down []string
	has := 0
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		if !u.Models[model] {
			continue
		}
		has++
		if !u.Healthy || u.Draining {
			down = append(down, u.Name+" is "+public(u.Status))
		}
	}
	switch {
	case len(s.Upstreams) == 0:
		return &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("model %s is unavailable: %s", model, noneRunning(s)), RetryAfter: 5 * time.Second}
	case has == 0:
		avail := modelsAvailable(s, allowed)
		list := "none yet: pull one with corral pull MODEL"
		if len(avail) > 0 {
			list = strings.Join(avail, ", ")
		}
		return &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("model %q not found; models available: %s", model, list), Param: "model", Code: "model_not_found"}
	case len(down) == has:
		return &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("all %d instances with %s are unavailable: %s", has, model, strings.Join(down, "; ")), RetryAfter: 5 * time.Second}
	}
	return nil
}

// noneRunning says why no instance takes requests: what those without an
// address yet are doing (pulling their image, failed to start), as the
// engine says it.
func noneRunning(s *Snapshot) string {
	if len(s.Waiting) == 0 {
		return "no Ollama instance is running yet: see corral status"
	}
	why := make([]string, len(s.Waiting))
	for i, u := range s.Waiting {
		why[i] = u.Name + " is " + public(u.Status)
	}
	return "no Ollama instance is running yet: " + strings.Join(why, "; ")
}

// Refresher, when the Upstreams has it, re-reads every instance at once:
// the gateway asks right after a cold load, when Ollama has evicted
// whatever the load displaced, so the scheduler need not wait for the
// next poll to know what each instance holds.
type Refresher interface {
	Refresh()
}

func (g *Gateway) refreshUpstreams() {
	if r, ok := g.upstreams.(Refresher); ok {
		r.Refresh()
	}
}
