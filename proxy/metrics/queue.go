package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sync"
	"sync/atomic"
)

// QueueInfo is what waits in corral's queue for one model from one API
// key, at scrape time.
type QueueInfo struct {
	Model   string
	Key     string // the API key's name
	Waiting int
	Oldest  time.Duration // how long the first of them has waited
}

type waitKey struct{ model, key string }

// waitSeries holds the resolved children of one (model, key).
type waitSeries struct {
	byModel prometheus.Observer
	byKey   prometheus.Counter
}

// QueueWait records the time a request for model from key waited in
// corral's queue for an instance, 0 for one that found a free slot at
// once. The gateway calls it once per request, with RequestDone.
func (m *Metrics) QueueWait(model, key string, d time.Duration) {
	s := m.wait(model, key)
	sec := max(d, 0).Seconds()
	s.byModel.Observe(sec)
	s.byKey.Add(sec)
}

// wait returns the children of (model, key), creating them on first use.
func (m *Metrics) wait(model, key string) *waitSeries {
	return loadOrAdd(&m.waits, &m.mu, waitKey{model, key}, func() *waitSeries {
		return &waitSeries{
			byModel: m.queueWait.WithLabelValues(m.modelLabelLocked(model)),
			byKey:   m.keyWait.WithLabelValues(m.keyLabelLocked(key)),
		}
	})
}

// loadOrAdd returns the value of k in the copy-on-write map at p, read
// without a lock; a missing one is made by add under mu (which may take
// other locked steps) and stored in a new copy of the map.
func loadOrAdd[K comparable, V any](p *atomic.Pointer[map[K]V], mu *sync.Mutex, k K, add func() V) V {
	if v, ok := (*p.Load())[k]; ok {
		return v
	}
	mu.Lock()
	defer mu.Unlock()
	cur := *p.Load()
	if v, ok := cur[k]; ok {
		return v
	}
	v := add()
	next := make(map[K]V, len(cur)+1)
	for k, x := range cur {
		next[k] = x
	}
	next[k] = v
	p.Store(&next)
	return v
}

// queueCollector reads what waits in the queue at scrape time. Its
// labels share the Metrics' bounds on models and keys, so entries past
// them add up under OtherModel and OtherKey.
type queueCollector struct {
	m       *Metrics
	read    func() []QueueInfo
	waiting *prometheus.Desc
	oldest  *prometheus.Desc
}

func newQueueCollector(m *Metrics, read func() []QueueInfo) *queueCollector {
	return &queueCollector{
		m:    m,
		read: read,
		waiting: prometheus.NewDesc("corral_queue_waiting",
			"Requests waiting in corral's queue for an instance now, by model and API key.", []string{"model", "key"}, nil),
		oldest: prometheus.NewDesc("corral_queue_oldest_wait_seconds",
			"How long the longest-waiting request for each model has waited in corral's queue so far.", []string{"model"}, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queue := c.read()
	if len(queue) == 0 {
		return
	}
	// Entries that share labels add up: a second series with the same
	// labels fails the scrape.
	waiting := map[waitKey]int{}
	oldest := map[string]time.Duration{}
	c.m.mu.Lock()
	for _, q := range queue {
		k := waitKey{c.m.modelLabelLocked(q.Model), c.m.keyLabelLocked(q.Key)}
		waiting[k] += q.Waiting
		oldest[k.model] = max(oldest[k.model], q.Oldest)
	}
	c.m.mu.Unlock()
	for k, n := range waiting {
		ch <- gauge(c.waiting, float64(n), k.model, k.key)
	}
	for model, d := range oldest {
		ch <- gauge(c.oldest, d.Seconds(), model)
	}
}
