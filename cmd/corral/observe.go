package main

import (
	"context"
	"errors"
	"sync/atomic"

	"corral/engine"
	"corral/engine/store"
	"corral/gpu"
	"corral/proxy/filter"
	"corral/proxy/gateway"
	"corral/proxy/metrics"
)

// observer feeds the gateway's events to the Prometheus metrics.
type observer struct{ m *metrics.Metrics }

var _ gateway.Observer = observer{}

func (o observer) Attempt(route, model, instance string) { o.m.RequestStarted(route, model, instance) }
func (o observer) Retry(instance string)                 { o.m.Retry(instance) }
func (o observer) FilterHit(where string)                { o.m.FilterHit(where) }
func (o observer) Observe(u gateway.Usage) {
	o.m.RequestDone(u.Route, u.Model, u.Instance, u.Status, u.Outcome, u.Duration, u.TTFT, u.PromptTokens, u.CompletionTokens)
}

// newMetrics reads instance health and GPU samples at scrape time.
func newMetrics(eng *engine.Engine, inv gpu.Inventory, sampler *gpu.Sampler) *metrics.Metrics {
	names := map[string]string{}
	for _, d := range inv.Devices {
		names[d.UUID] = d.Name
	}
	return metrics.New(
		metrics.WithInstances(func() []metrics.InstanceInfo {
			st := eng.Status()
			out := make([]metrics.InstanceInfo, 0, len(st.Instances))
			for _, in := range st.Instances {
				out = append(out, metrics.InstanceInfo{Name: in.Name, GPU: in.GPU, Phase: string(in.Phase), Healthy: in.Phase == engine.PhaseHealthy})
			}
			return out
		}),
		metrics.WithGPUs(func() []metrics.GPUInfo {
			var out []metrics.GPUInfo
			for _, s := range sampler.Latest() {
				out = append(out, metrics.GPUInfo{
					Index: s.Index, UUID: s.UUID, Name: names[s.UUID], Utilization: float64(s.UtilizationGPU) / 100,
					MemoryUsed: s.MemoryUsed, MemoryTotal: s.MemoryTotal, TemperatureC: float64(s.TemperatureC), PowerW: s.PowerW,
				})
			}
			return out
		}),
	)
}

// filterSetting is where the admin's phrase list is stored.
const filterSetting = "filter_phrases"

// contentFilter is the admin-set phrase list, swappable at run time; an
// empty list is off and costs the gateway one pointer load.
type contentFilter struct {
	st  *store.Store
	cur atomic.Pointer[filter.Filter]
}

var _ gateway.Filter = (*contentFilter)(nil)

func newContentFilter(st *store.Store) (*contentFilter, error) {
	cf := &contentFilter{st: st}
	var phrases []string
	if err := st.Setting(filterSetting, &phrases); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	f, err := filter.New(phrases)
	if err != nil {
		return nil, err
	}
	cf.cur.Store(f)
	return cf, nil
}

// Phrases lists the current phrases.
func (cf *contentFilter) Phrases() []string { return cf.cur.Load().Phrases() }

// SetPhrases replaces the list (empty turns the filter off); a bad list
// changes nothing.
func (cf *contentFilter) SetPhrases(_ context.Context, phrases []string) error {
	f, err := filter.New(phrases)
	if err != nil {
		return err
	}
	if err := cf.st.PutSettings(map[string]any{filterSetting: f.Phrases()}); err != nil {
		return err
	}
	cf.cur.Store(f)
	return nil
}

func (cf *contentFilter) Prompt(route string, body []byte) (string, bool) {
	f := cf.cur.Load()
	if f.Len() == 0 {
		return "", false
	}
	return f.Match(filter.PromptText(route, body))
}

func (cf *contentFilter) NewStream() gateway.StreamFilter {
	f := cf.cur.Load()
	if f.Len() == 0 {
		return nil
	}
	return streamFilter{f.NewStream()}
}

type streamFilter struct{ s *filter.Stream }

func (s streamFilter) Feed(sse bool, frame []byte) (string, bool) { return s.s.FeedDelta(sse, frame) }
