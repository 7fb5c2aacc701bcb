package main

import (
	"net/url"
	"sync/atomic"

	"corral/engine"
	"corral/gpu"
	"corral/proxy/gateway"
)

// upstreams adapts the engine's route table to the gateway's snapshot,
// converting once per table version so the hot path only loads a pointer.
type upstreams struct {
	eng     *engine.Engine
	sampler *gpu.Sampler
	cache   atomic.Pointer[gateway.Snapshot]
}

var _ gateway.Upstreams = (*upstreams)(nil)

func (u *upstreams) Snapshot() *gateway.Snapshot {
	t := u.eng.Routes()
	if s := u.cache.Load(); s != nil && s.Version == t.Version {
		return s
	}
	free := map[string]uint64{}
	for _, m := range u.sampler.Latest() {
		if m.MemoryTotal > m.MemoryUsed {
			free[m.UUID] = m.MemoryTotal - m.MemoryUsed
		}
	}
	s := &gateway.Snapshot{Version: t.Version, Upstreams: make([]gateway.Upstream, 0, len(t.Routes))}
	for _, r := range t.Routes {
		base, err := url.Parse(r.URL)
		if err != nil {
			continue
		}
		up := gateway.Upstream{
			Name: r.Name, URL: base, Healthy: r.Healthy, Draining: r.Draining, Status: r.Status,
			Weight: r.Weight, Parallel: r.Parallel, PolledAt: r.PolledAt, FreeMemory: free[r.GPU],
			Models: make(map[string]bool, len(r.Models)), Loaded: make(map[string]bool, len(r.Loaded)),
		}
		for _, m := range r.Models {
			up.Models[gateway.CanonicalModel(m)] = true
		}
		for _, m := range r.Loaded {
			up.Loaded[gateway.CanonicalModel(m.Name)] = true
		}
		s.Upstreams = append(s.Upstreams, up)
	}
	u.cache.Store(s)
	return s
}
