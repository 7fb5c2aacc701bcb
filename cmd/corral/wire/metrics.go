package wire

import (
	"corral/engine"
	"corral/gpu"
	"corral/proxy/gateway"
	"corral/proxy/metrics"
)

// Observer feeds the gateway's events to the Prometheus metrics.
type Observer struct {
	M *metrics.Metrics
	// Tokens, when set, counts each instance's generated tokens for the
	// overview's tokens/s.
	Tokens interface {
		Add(instance string, tokens int)
	}
}

var _ gateway.Observer = Observer{}

func (o Observer) Attempt(route, model, instance string) { o.M.RequestStarted(route, model, instance) }
func (o Observer) Retry(instance string)                 { o.M.Retry(instance) }
func (o Observer) FilterHit(where string)                { o.M.FilterHit(where) }
func (o Observer) Observe(u gateway.Usage) {
	o.M.RequestDone(u.Route, u.Model, u.Instance, u.Status, u.Outcome, u.Duration, u.TTFT, u.PromptTokens, u.CompletionTokens)
	o.M.QueueWait(u.Model, u.Key, u.Queued)
	if o.Tokens != nil {
		o.Tokens.Add(u.Instance, u.CompletionTokens)
	}
}

// QueueMetrics reads the gateway's queue at scrape time, for the
// corral_queue_waiting and corral_queue_oldest_wait_seconds gauges. gw
// returns the gateway; until it is built, nil, and nothing waits.
func QueueMetrics(gw func() *gateway.Gateway) metrics.Option {
	return metrics.WithQueue(func() []metrics.QueueInfo {
		g := gw()
		if g == nil {
			return nil
		}
		q := g.Queue()
		out := make([]metrics.QueueInfo, len(q))
		for i, e := range q {
			out[i] = metrics.QueueInfo{Model: e.Model, Key: e.Group, Waiting: e.Count, Oldest: e.Oldest}
		}
		return out
	})
}

// NewMetrics reads instance health and GPU samples at scrape time, and
// takes further options such as QueueMetrics.
func NewMetrics(eng *engine.Engine, inv gpu.Inventory, sampler *gpu.Sampler, opts ...metrics.Option) *metrics.Metrics {
	names := map[string]string{}
	for _, d := range inv.Devices {
		names[d.UUID] = d.Name
	}
	return metrics.New(append([]metrics.Option{
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
	}, opts...)...)
}
