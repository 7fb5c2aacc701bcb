package metrics

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestQueueWait(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	m.QueueWait("llama3.2:1b", "alice", 0)
	m.QueueWait("llama3.2:1b", "alice", 2*time.Second)
	m.QueueWait("llama3.2:1b", "bob", 500*time.Millisecond)
	m.QueueWait("qwen2.5:0.5b", "bob", 3*time.Millisecond)
	m.QueueWait("qwen2.5:0.5b", "bob", -time.Second) // a clock step back counts as none

	for _, c := range []struct {
		what      string
		model     string
		count     uint64
		sum       float64
		underTenM uint64 // observations in the bucket le=0.01
	}{
		{"llama3.2:1b", "llama3.2:1b", 3, 2.5, 1},
		{"qwen2.5:0.5b", "qwen2.5:0.5b", 2, .003, 2},
	} {
		h := histogramOf(t, m, "corral_queue_wait_seconds", "model", c.model)
		if h.GetSampleCount() != c.count || h.GetSampleSum() != c.sum {
			t.Errorf("%s: count %d sum %v, want %d and %v", c.what, h.GetSampleCount(), h.GetSampleSum(), c.count, c.sum)
		}
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == .01 && b.GetCumulativeCount() != c.underTenM {
				t.Errorf("%s: %d waits up to 10ms, want %d", c.what, b.GetCumulativeCount(), c.underTenM)
			}
		}
	}
	want := `
# HELP corral_queue_key_wait_seconds_total Time requests of each API key waited in corral's queue for an instance, summed.
# TYPE corral_queue_key_wait_seconds_total counter
corral_queue_key_wait_seconds_total{key="alice"} 2
corral_queue_key_wait_seconds_total{key="bob"} 0.503
`
	if err := testutil.CollectAndCompare(m.keyWait, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestQueueWaitLabelsBounded(t *testing.T) {
	m := New(WithoutRuntimeMetrics(), WithMaxModels(1), WithMaxKeys(2))
	// A model seen by RequestDone first takes the one model label.
	m.RequestDone("/api/chat", "a", "", 200, "ok", time.Second, 0, 0, 0)
	for _, r := range []struct{ model, key string }{{"a", "k1"}, {"b", "k2"}, {"c", "k3"}, {"a", "k4"}, {"a", "k1"}} {
		m.QueueWait(r.model, r.key, time.Second)
	}
	if n := testutil.CollectAndCount(m.queueWait); n != 2 {
		t.Errorf("model series = %d, want 2 (a and %s)", n, OtherModel)
	}
	for key, want := range map[string]float64{"k1": 2, "k2": 1, OtherKey: 2} {
		if got := testutil.ToFloat64(m.keyWait.WithLabelValues(key)); got != want {
			t.Errorf("seconds waited by %s = %v, want %v", key, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.keyWait); n != 3 {
		t.Errorf("key series = %d, want 3", n)
	}
	if h := histogramOf(t, m, "corral_queue_wait_seconds", "model", OtherModel); h.GetSampleCount() != 2 {
		t.Errorf("waits of other models = %d, want 2", h.GetSampleCount())
	}
}

func TestQueueWaitAllocates(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	m.QueueWait("llama3.2:1b", "alice", time.Second)
	if n := testing.AllocsPerRun(100, func() { m.QueueWait("llama3.2:1b", "alice", time.Second) }); n != 0 {
		t.Errorf("QueueWait allocates %v times, want 0", n)
	}
}

func TestQueueGauges(t *testing.T) {
	var mu sync.Mutex
	var queue []QueueInfo
	m := New(WithoutRuntimeMetrics(), WithMaxModels(2), WithMaxKeys(2), WithQueue(func() []QueueInfo {
		mu.Lock()
		defer mu.Unlock()
		return queue
	}))
	set := func(q ...QueueInfo) {
		mu.Lock()
		queue = q
		mu.Unlock()
	}
	names := []string{"corral_queue_waiting", "corral_queue_oldest_wait_seconds"}
	cases := []struct {
		name  string
		queue []QueueInfo
		want  string
	}{
		{"nothing waits", nil, ""},
		{"by model and key", []QueueInfo{
			{Model: "llama3.2:1b", Key: "a", Waiting: 10, Oldest: 3200 * time.Millisecond},
			{Model: "llama3.2:1b", Key: "b", Waiting: 2, Oldest: time.Second},
			{Model: "qwen2.5:0.5b", Key: "b", Waiting: 1, Oldest: 250 * time.Millisecond},
		}, `
# HELP corral_queue_waiting Requests waiting in corral's queue for an instance now, by model and API key.
# TYPE corral_queue_waiting gauge
corral_queue_waiting{key="a",model="llama3.2:1b"} 10
corral_queue_waiting{key="b",model="llama3.2:1b"} 2
corral_queue_waiting{key="b",model="qwen2.5:0.5b"} 1
# HELP corral_queue_oldest_wait_seconds How long the longest-waiting request for each model has waited in corral's queue so far.
# TYPE corral_queue_oldest_wait_seconds gauge
corral_queue_oldest_wait_seconds{model="llama3.2:1b"} 3.2
corral_queue_oldest_wait_seconds{model="qwen2.5:0.5b"} 0.25
`},
		// Past the bounds, models and keys add up under other, with the
		// longest wait among them.
		{"past the bounds", []QueueInfo{
			{Model: "llama3.2:1b", Key: "a", Waiting: 1, Oldest: time.Second},
			{Model: "mistral", Key: "a", Waiting: 4, Oldest: 5 * time.Second},
			{Model: "phi3", Key: "a", Waiting: 1, Oldest: 7 * time.Second},
			{Model: "phi3", Key: "c", Waiting: 2, Oldest: 6 * time.Second},
			{Model: "phi3", Key: "d", Waiting: 3, Oldest: 2 * time.Second},
		}, `
# HELP corral_queue_waiting Requests waiting in corral's queue for an instance now, by model and API key.
# TYPE corral_queue_waiting gauge
corral_queue_waiting{key="a",model="llama3.2:1b"} 1
corral_queue_waiting{key="a",model="other"} 5
corral_queue_waiting{key="other",model="other"} 5
# HELP corral_queue_oldest_wait_seconds How long the longest-waiting request for each model has waited in corral's queue so far.
# TYPE corral_queue_oldest_wait_seconds gauge
corral_queue_oldest_wait_seconds{model="llama3.2:1b"} 1
corral_queue_oldest_wait_seconds{model="other"} 7
`},
		{"drained again", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.queue...)
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(tc.want), names...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOpenMetricsFamiliesUnique writes every family in OpenMetrics, as
// Prometheus asks for it, where a counter's family name drops _total: no
// two families may then share a name. (The Go runtime collector's
// go_memstats_alloc_bytes and _total do; they are upstream's.)
func TestOpenMetricsFamiliesUnique(t *testing.T) {
	m := New(WithoutRuntimeMetrics(),
		WithInstances(func() []InstanceInfo { return []InstanceInfo{{Name: "ollama-0", Phase: "healthy", Healthy: true}} }),
		WithGPUs(func() []GPUInfo { return []GPUInfo{{Index: 0, UUID: "GPU-1", Name: "H100", MemoryTotal: 2}} }),
		WithQueue(func() []QueueInfo {
			return []QueueInfo{{Model: "llama3:8b", Key: "a", Waiting: 1, Oldest: time.Second}}
		}))
	traffic(m)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToOpenMetrics(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for line := range strings.Lines(b.String()) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name = strings.Fields(name)[0]
			if seen[name] {
				t.Errorf("family %s written twice", name)
			}
			seen[name] = true
		}
	}
	for _, name := range []string{"corral_queue_wait_seconds", "corral_queue_key_wait_seconds", "corral_queue_waiting", "corral_queue_oldest_wait_seconds"} {
		if !seen[name] {
			t.Errorf("family %s missing", name)
		}
	}
}

// histogramOf is the histogram of name whose label is value.
func histogramOf(t *testing.T, m *Metrics, name, label, value string) *dto.Histogram {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return mm.GetHistogram()
				}
			}
		}
	}
	t.Fatalf("%s{%s=%q} not gathered", name, label, value)
	return nil
}
