package wire

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"corral/proxy/gateway"
	"corral/proxy/metrics"
)

// Every finished request's queue time reaches the queue metrics, by
// model and by key.
func TestObserverQueueWait(t *testing.T) {
	m := metrics.New(metrics.WithoutRuntimeMetrics())
	o := Observer{M: m}
	for _, u := range []gateway.Usage{
		{Route: "/api/chat", Model: "llama3.2:1b", Key: "alice", Instance: "corral-ollama-0", Status: 200, Queued: 1500 * time.Millisecond, Duration: 2 * time.Second},
		{Route: "/api/chat", Model: "llama3.2:1b", Key: "bob", Instance: "corral-ollama-0", Status: 200, Duration: time.Second},
	} {
		o.Attempt(u.Route, u.Model, u.Instance)
		o.Observe(u)
	}
	want := `
# HELP corral_queue_key_wait_seconds_total Time requests of each API key waited in corral's queue for an instance, summed.
# TYPE corral_queue_key_wait_seconds_total counter
corral_queue_key_wait_seconds_total{key="alice"} 1.5
corral_queue_key_wait_seconds_total{key="bob"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "corral_queue_key_wait_seconds_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "corral_queue_wait_seconds"); err != nil || n != 1 {
		t.Fatalf("queue wait series = %d, %v; want 1", n, err)
	}
}

// Before the gateway is built a scrape finds nothing waiting, and fails
// nothing.
func TestQueueMetricsBeforeGateway(t *testing.T) {
	m := metrics.New(metrics.WithoutRuntimeMetrics(), QueueMetrics(func() *gateway.Gateway { return nil }))
	if n, err := testutil.GatherAndCount(m.Registry(), "corral_queue_waiting", "corral_queue_oldest_wait_seconds"); err != nil || n != 0 {
		t.Fatalf("queue gauges = %d, %v; want none", n, err)
	}
}
