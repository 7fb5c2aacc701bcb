package main

import (
	"context"
	"net/url"
	"sync/atomic"

	"corral/engine"
	"corral/engine/models"
	"corral/gpu"
	"corral/proxy/gateway"
)

// upstreams adapts the engine's route table and the placement targets to
// the gateway's snapshot, converting once per version of either so the hot
// path only loads a pointer.
type upstreams struct {
	eng     *engine.Engine
	models  *models.Manager
	sampler *gpu.Sampler
	cache   atomic.Pointer[cachedSnapshot]
}

type cachedSnapshot struct {
	routes, targets uint64
	snap            *gateway.Snapshot
}

var (
	_ gateway.Upstreams = (*upstreams)(nil)
	_ gateway.Refresher = (*upstreams)(nil)
	_ gateway.Rechecker = (*upstreams)(nil)
)

// Refresh re-reads every instance at once.
func (u *upstreams) Refresh() { u.eng.Refresh() }

// Recheck re-reads every instance and returns once the routes show it.
func (u *upstreams) Recheck(ctx context.Context) error { return u.eng.Recheck(ctx) }

func (u *upstreams) Snapshot() *gateway.Snapshot {
	t := u.eng.Routes()
	targets := u.models.Targets()
	if c := u.cache.Load(); c != nil && c.routes == t.Version && c.targets == targets.Version {
		return c.snap
	}
	free := map[string]uint64{}
	for _, m := range u.sampler.Latest() {
		free[m.UUID], _ = gpuFree(m)
	}
	placed := map[string]map[string]bool{} // instance → models
	for model, names := range targets.ByModel {
		for _, n := range names {
			if placed[n] == nil {
				placed[n] = map[string]bool{}
			}
			placed[n][model] = true
		}
	}
	s := &gateway.Snapshot{Version: t.Version<<32 | targets.Version, Upstreams: make([]gateway.Upstream, 0, len(t.Routes))}
	for _, r := range t.Routes {
		base, err := url.Parse(r.URL)
		if err != nil {
			continue
		}
		up := gateway.Upstream{
			Name: r.Name, URL: base, Healthy: r.Healthy, Draining: r.Draining, Status: r.Status,
			Weight: r.Weight, Parallel: r.Parallel, PolledAt: r.PolledAt, Since: r.Since, FreeMemory: free[r.GPU],
			Models: make(map[string]bool, len(r.Models)), Loaded: make(map[string]bool, len(r.Loaded)),
			Placed: placed[r.Name], Listed: make([]gateway.Listed, 0, len(r.Models)),
		}
		for _, m := range r.Models {
			up.Models[gateway.CanonicalModel(m.Name)] = true
			up.Listed = append(up.Listed, gateway.Listed{Name: m.Name, ModifiedAt: m.ModifiedAt, Entry: m.Raw})
		}
		for _, m := range r.Loaded {
			up.Loaded[gateway.CanonicalModel(m.Name)] = true
		}
		s.Upstreams = append(s.Upstreams, up)
	}
	for _, r := range t.Waiting {
		s.Waiting = append(s.Waiting, gateway.Upstream{Name: r.Name, Status: r.Status, Since: r.Since})
	}
	u.cache.Store(&cachedSnapshot{routes: t.Version, targets: targets.Version, snap: s})
	return s
}

// gpuFree is a device's free and total memory from its latest sample.
func gpuFree(m gpu.Metrics) (free, total uint64) {
	if m.MemoryTotal > m.MemoryUsed {
		free = m.MemoryTotal - m.MemoryUsed
	}
	return free, m.MemoryTotal
}

// freeByUUID answers the model manager's fit check from the sampler.
func freeByUUID(s *gpu.Sampler) func(uuid string) (free, total uint64, ok bool) {
	return func(uuid string) (uint64, uint64, bool) {
		for _, m := range s.Latest() {
			if m.UUID == uuid {
				free, total := gpuFree(m)
				return free, total, true
			}
		}
		return 0, 0, false
	}
}
