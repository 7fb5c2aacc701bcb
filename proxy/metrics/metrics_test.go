package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestRequestCounters(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	m.RequestStarted("/v1/chat/completions", "llama3:8b", "ollama-0")
	if got := testutil.ToFloat64(m.inflight.WithLabelValues("ollama-0")); got != 1 {
		t.Fatalf("in flight after start = %v, want 1", got)
	}
	m.RequestDone("/v1/chat/completions", "llama3:8b", "ollama-0", 200, "ok", 3*time.Second, time.Second, 12, 40)
	m.RequestStarted("/v1/chat/completions", "llama3:8b", "ollama-0")
	m.RequestDone("/v1/chat/completions", "llama3:8b", "ollama-0", 200, "ok", 2*time.Second, 0, 5, 0)
	m.RequestStarted("/api/chat", "llama3:8b", "ollama-1")
	m.RequestDone("/api/chat", "llama3:8b", "ollama-1", 500, "upstream status 500", time.Second, 0, 0, 0)

	want := `
# HELP corral_gateway_requests_total Requests the gateway answered, by route, model, the instance that answered and HTTP status.
# TYPE corral_gateway_requests_total counter
corral_gateway_requests_total{instance="ollama-0",model="llama3:8b",route="/v1/chat/completions",status="200"} 2
corral_gateway_requests_total{instance="ollama-1",model="llama3:8b",route="/api/chat",status="500"} 1
# HELP corral_gateway_tokens_total Tokens processed, as the instances counted them (estimated for a stream that ended before its counts): kind is prompt or completion.
# TYPE corral_gateway_tokens_total counter
corral_gateway_tokens_total{instance="ollama-0",kind="completion",model="llama3:8b"} 40
corral_gateway_tokens_total{instance="ollama-0",kind="prompt",model="llama3:8b"} 17
corral_gateway_tokens_total{instance="ollama-1",kind="completion",model="llama3:8b"} 0
corral_gateway_tokens_total{instance="ollama-1",kind="prompt",model="llama3:8b"} 0
# HELP corral_gateway_in_flight Requests being answered by each instance now.
# TYPE corral_gateway_in_flight gauge
corral_gateway_in_flight{instance="ollama-0"} 0
corral_gateway_in_flight{instance="ollama-1"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"corral_gateway_requests_total", "corral_gateway_tokens_total", "corral_gateway_in_flight"); err != nil {
		t.Fatal(err)
	}

	// Histograms: three durations, one TTFT (the streamed one), one
	// tokens/s observation: 40 tokens over 3s-1s = 20/s.
	if n := histCount(t, m, "corral_gateway_request_duration_seconds"); n != 3 {
		t.Errorf("duration observations = %d, want 3", n)
	}
	if n := histCount(t, m, "corral_gateway_time_to_first_token_seconds"); n != 1 {
		t.Errorf("ttft observations = %d, want 1", n)
	}
	h := histogram(t, m, "corral_gateway_generation_tokens_per_second")
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 20 {
		t.Errorf("tokens/s: count %d sum %v, want 1 and 20", h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestRetriesAndStreamFailures(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	// Attempt on ollama-0 fails before a byte; ollama-1 streams, then cuts.
	m.RequestStarted("/v1/chat/completions", "m", "ollama-0")
	m.Retry("ollama-0")
	m.RequestStarted("/v1/chat/completions", "m", "ollama-1")
	m.RequestDone("/v1/chat/completions", "m", "ollama-1", 200, "cut: stream ended early", time.Second, 100*time.Millisecond, 3, 7)
	// Every attempt failed: no instance answered.
	m.RequestStarted("/api/generate", "m", "ollama-0")
	m.Retry("ollama-0")
	m.RequestDone("/api/generate", "m", "", 503, "failed: no instance could take the request", time.Second, 0, 0, 0)
	// Idle timeout and a read error.
	m.RequestStarted("/api/generate", "m", "ollama-1")
	m.RequestDone("/api/generate", "m", "ollama-1", 200, "cut: no data for 5m0s", time.Second, 0, 0, 0)
	m.RequestStarted("/api/generate", "m", "ollama-1")
	m.RequestDone("/api/generate", "m", "ollama-1", 200, "cut: unexpected EOF", time.Second, 0, 0, 0)

	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.retries.WithLabelValues("ollama-0")), 2, "retries ollama-0"},
		{testutil.ToFloat64(m.retries.WithLabelValues("ollama-1")), 0, "retries ollama-1"},
		{testutil.ToFloat64(m.inflight.WithLabelValues("ollama-0")), 0, "in flight ollama-0"},
		{testutil.ToFloat64(m.inflight.WithLabelValues("ollama-1")), 0, "in flight ollama-1"},
		{testutil.ToFloat64(m.streamFailures.WithLabelValues("ollama-1", ReasonEndedEarly)), 1, "ended early"},
		{testutil.ToFloat64(m.streamFailures.WithLabelValues("ollama-1", ReasonIdleTimeout)), 1, "idle timeout"},
		{testutil.ToFloat64(m.streamFailures.WithLabelValues("ollama-1", ReasonReadError)), 1, "read error"},
		{testutil.ToFloat64(m.requests.WithLabelValues("/api/generate", "m", "", "503")), 1, "unanswered"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestFilterHits(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	m.FilterHit("prompt")
	m.FilterHit("prompt")
	m.FilterHit("output")
	want := `
# HELP corral_filter_hits_total Content-filter matches: where is prompt (request refused) or output (stream cut).
# TYPE corral_filter_hits_total counter
corral_filter_hits_total{where="output"} 1
corral_filter_hits_total{where="prompt"} 2
`
	if err := testutil.CollectAndCompare(m.filterHits, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestModelLabelsBounded(t *testing.T) {
	m := New(WithoutRuntimeMetrics(), WithMaxModels(2))
	for _, model := range []string{"a", "b", "c", "d", "a"} {
		m.RequestDone("/api/chat", model, "", 404, "failed: model not found", time.Millisecond, 0, 0, 0)
	}
	for model, want := range map[string]float64{"a": 2, "b": 1, OtherModel: 2} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("/api/chat", model, "", "404")); got != want {
			t.Errorf("requests for %s = %v, want %v", model, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Errorf("request series = %d, want 3", n)
	}
}

func TestInvalidUTF8Labels(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	m.RequestStarted("/api/chat", "bad\xff", "inst\xfe")
	m.RequestDone("/api/chat", "bad\xff", "inst\xfe", 200, "ok", time.Second, 0, 1, 1)
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorsReadAtScrape(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	insts := []InstanceInfo{
		{Name: "ollama-0", GPU: "0", Phase: "healthy", Healthy: true},
		{Name: "ollama-1", GPU: "1", Phase: "pulling"},
	}
	gpus := []GPUInfo{{Index: 0, UUID: "GPU-abc", Name: "NVIDIA H100", Utilization: 0.5, MemoryUsed: 1 << 30, MemoryTotal: 80 << 30, TemperatureC: 61, PowerW: 250.5}}
	m := New(WithoutRuntimeMetrics(),
		WithInstances(func() []InstanceInfo {
			calls.Add(1)
			mu.Lock()
			defer mu.Unlock()
			return append([]InstanceInfo(nil), insts...)
		}),
		WithGPUs(func() []GPUInfo {
			mu.Lock()
			defer mu.Unlock()
			return append([]GPUInfo(nil), gpus...)
		}))
	if calls.Load() != 0 {
		t.Fatal("instances read before a scrape")
	}
	want := `
# HELP corral_instance_up Whether the instance is healthy (1) or not (0).
# TYPE corral_instance_up gauge
corral_instance_up{gpu="0",instance="ollama-0"} 1
corral_instance_up{gpu="1",instance="ollama-1"} 0
# HELP corral_gpu_utilization_ratio Fraction of time the GPU was busy over the last sample period (0..1).
# TYPE corral_gpu_utilization_ratio gauge
corral_gpu_utilization_ratio{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 0.5
# HELP corral_gpu_memory_used_bytes GPU memory in use.
# TYPE corral_gpu_memory_used_bytes gauge
corral_gpu_memory_used_bytes{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 1.073741824e+09
# HELP corral_gpu_memory_total_bytes GPU memory in all.
# TYPE corral_gpu_memory_total_bytes gauge
corral_gpu_memory_total_bytes{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 8.589934592e+10
# HELP corral_gpu_temperature_celsius GPU core temperature.
# TYPE corral_gpu_temperature_celsius gauge
corral_gpu_temperature_celsius{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 61
# HELP corral_gpu_power_watts GPU power draw.
# TYPE corral_gpu_power_watts gauge
corral_gpu_power_watts{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 250.5
`
	names := []string{"corral_instance_up", "corral_gpu_utilization_ratio", "corral_gpu_memory_used_bytes",
		"corral_gpu_memory_total_bytes", "corral_gpu_temperature_celsius", "corral_gpu_power_watts"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 {
		t.Fatal("instances not read at scrape")
	}
	phase := phaseValues(t, m)
	if phase["ollama-0/healthy"] != 1 || phase["ollama-0/pulling"] != 0 || phase["ollama-1/pulling"] != 1 || len(phase) != 2*len(phases) {
		t.Errorf("phases = %v", phase)
	}

	// The next scrape sees the new state: a power reading of 0 (not
	// reported) is left out, an unknown phase still shows.
	mu.Lock()
	insts[0].Healthy, insts[0].Phase = false, "unhealthy"
	insts[1].Phase = "rebooting"
	gpus[0].PowerW = 0
	gpus[0].Utilization = 1
	mu.Unlock()
	want = `
# HELP corral_instance_up Whether the instance is healthy (1) or not (0).
# TYPE corral_instance_up gauge
corral_instance_up{gpu="0",instance="ollama-0"} 0
corral_instance_up{gpu="1",instance="ollama-1"} 0
# HELP corral_gpu_utilization_ratio Fraction of time the GPU was busy over the last sample period (0..1).
# TYPE corral_gpu_utilization_ratio gauge
corral_gpu_utilization_ratio{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 1
# HELP corral_gpu_memory_used_bytes GPU memory in use.
# TYPE corral_gpu_memory_used_bytes gauge
corral_gpu_memory_used_bytes{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 1.073741824e+09
# HELP corral_gpu_memory_total_bytes GPU memory in all.
# TYPE corral_gpu_memory_total_bytes gauge
corral_gpu_memory_total_bytes{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 8.589934592e+10
# HELP corral_gpu_temperature_celsius GPU core temperature.
# TYPE corral_gpu_temperature_celsius gauge
corral_gpu_temperature_celsius{gpu="0",name="NVIDIA H100",uuid="GPU-abc"} 61
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	phase = phaseValues(t, m)
	if phase["ollama-0/unhealthy"] != 1 || phase["ollama-0/healthy"] != 0 || phase["ollama-1/rebooting"] != 1 {
		t.Errorf("phases = %v", phase)
	}
}

func TestDuplicateInstancesDoNotFailScrape(t *testing.T) {
	m := New(WithoutRuntimeMetrics(), WithInstances(func() []InstanceInfo {
		return []InstanceInfo{{Name: "a", Phase: "healthy", Healthy: true}, {Name: "a", Phase: "failed"}}
	}))
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestLint(t *testing.T) {
	m := New(
		WithInstances(func() []InstanceInfo {
			return []InstanceInfo{{Name: "ollama-0", GPU: "0", Phase: "healthy", Healthy: true}}
		}),
		WithGPUs(func() []GPUInfo {
			return []GPUInfo{{Index: 0, UUID: "GPU-1", Name: "H100", Utilization: .2, MemoryUsed: 1, MemoryTotal: 2, TemperatureC: 40, PowerW: 100}}
		}),
		WithQueue(func() []QueueInfo {
			return []QueueInfo{{Model: "llama3:8b", Key: "alice", Waiting: 2, Oldest: time.Second}}
		}))
	traffic(m)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestHandlerParses(t *testing.T) {
	m := New(
		WithInstances(func() []InstanceInfo {
			return []InstanceInfo{{Name: "ollama-0", GPU: "0", Phase: "healthy", Healthy: true}}
		}),
		WithGPUs(func() []GPUInfo { return []GPUInfo{{Index: 0, UUID: "GPU-1", Name: "H100", MemoryTotal: 2}} }),
		WithQueue(func() []QueueInfo {
			return []QueueInfo{{Model: "llama3:8b", Key: "alice", Waiting: 2, Oldest: time.Second}}
		}))
	traffic(m)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	for _, name := range []string{
		"corral_gateway_requests_total", "corral_gateway_request_duration_seconds",
		"corral_gateway_time_to_first_token_seconds", "corral_gateway_tokens_total",
		"corral_gateway_in_flight", "corral_gateway_stream_failures_total", "corral_gateway_retries_total",
		"corral_gateway_generation_tokens_per_second", "corral_filter_hits_total",
		"corral_instance_up", "corral_instance_phase", "corral_gpu_memory_total_bytes",
		"corral_queue_wait_seconds", "corral_queue_key_wait_seconds_total",
		"corral_queue_waiting", "corral_queue_oldest_wait_seconds",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if v := fams["corral_gateway_requests_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("requests_total = %v, want 1", v)
	}
}

func TestConcurrent(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			inst := []string{"a", "b", "c"}[i%3]
			for j := range 500 {
				model := []string{"x", "y"}[j%2]
				m.RequestStarted("/api/chat", model, inst)
				m.RequestDone("/api/chat", model, inst, 200+j%3, "ok", time.Millisecond, 0, 1, 1)
			}
		})
	}
	wg.Wait()
	total := 0.0
	for _, inst := range []string{"a", "b", "c"} {
		if v := testutil.ToFloat64(m.inflight.WithLabelValues(inst)); v != 0 {
			t.Errorf("in flight %s = %v", inst, v)
		}
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "corral_gateway_requests_total" {
			for _, mm := range f.GetMetric() {
				total += mm.GetCounter().GetValue()
			}
		}
	}
	if total != 16*500 {
		t.Errorf("requests = %v, want %d", total, 16*500)
	}
}

func traffic(m *Metrics) {
	m.RequestStarted("/v1/chat/completions", "llama3:8b", "ollama-0")
	m.RequestDone("/v1/chat/completions", "llama3:8b", "ollama-0", 200, "ok", 2*time.Second, 300*time.Millisecond, 10, 50)
	m.QueueWait("llama3:8b", "alice", 200*time.Millisecond)
	m.FilterHit("output")
}

func histogram(t *testing.T, m *Metrics, name string) *dto.Histogram {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			if len(f.GetMetric()) != 1 {
				t.Fatalf("%s: %d series, want 1", name, len(f.GetMetric()))
			}
			return f.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("%s not gathered", name)
	return nil
}

func histCount(t *testing.T, m *Metrics, name string) uint64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() == name {
			for _, mm := range f.GetMetric() {
				n += mm.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func phaseValues(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "corral_instance_phase" {
			continue
		}
		for _, mm := range f.GetMetric() {
			var inst, phase string
			for _, l := range mm.GetLabel() {
				switch l.GetName() {
				case "instance":
					inst = l.GetValue()
				case "phase":
					phase = l.GetValue()
				}
			}
			out[inst+"/"+phase] = mm.GetGauge().GetValue()
		}
	}
	return out
}

func BenchmarkRequestDone(b *testing.B) {
	m := New(WithoutRuntimeMetrics())
	m.RequestStarted("/v1/chat/completions", "llama3:8b", "ollama-0")
	m.RequestDone("/v1/chat/completions", "llama3:8b", "ollama-0", 200, "ok", time.Second, 100*time.Millisecond, 10, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.RequestStarted("/v1/chat/completions", "llama3:8b", "ollama-0")
		m.RequestDone("/v1/chat/completions", "llama3:8b", "ollama-0", 200, "ok", time.Second, 100*time.Millisecond, 10, 100)
	}
}

func BenchmarkRequestDoneParallel(b *testing.B) {
	m := New(WithoutRuntimeMetrics())
	insts := []string{"ollama-0", "ollama-1", "ollama-2", "ollama-3"}
	b.ReportAllocs()
	var n atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		inst := insts[int(n.Add(1))%len(insts)]
		for pb.Next() {
			m.RequestStarted("/api/chat", "llama3:8b", inst)
			m.RequestDone("/api/chat", "llama3:8b", inst, 200, "ok", time.Second, 100*time.Millisecond, 10, 100)
		}
	})
}
