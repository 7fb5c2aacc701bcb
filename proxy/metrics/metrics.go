// Package metrics keeps the gateway's Prometheus metrics: requests, latency,
// time to first token, tokens, in-flight requests, retries, cut streams,
// content-filter hits and the time requests wait in corral's queue, plus
// instance health, GPU load and what waits in the queue now, read at
// scrape time. Each Metrics has its own registry; nothing is registered
// globally.
//
// The methods the gateway calls per request cost no allocation once a
// (route, model, instance) has been seen: the label children are resolved
// once and kept in a copy-on-write map that readers use without a lock.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Bucket boundaries, in seconds or tokens per second. LLM requests range
// from a cached embedding (milliseconds) to a long generation after a cold
// model load (minutes).
var (
	durationBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}
	ttftBuckets     = []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60, 120}
	tpsBuckets      = []float64{1, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000}
	// A request waits from nothing (a free slot) to minutes (behind others
	// for a model a cold instance loads).
	queueBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}
)

// Stream failure reasons, the values of corral_gateway_stream_failures_total's
// reason label.
const (
	ReasonIdleTimeout = "idle_timeout" // the instance sent nothing for the idle timeout
	ReasonEndedEarly  = "ended_early"  // the stream closed without its end marker
	ReasonReadError   = "read_error"   // reading from the instance failed
)

// OtherModel is the model label of requests for models beyond MaxModels
// distinct ones, so a client inventing model names cannot grow the series
// without bound.
const OtherModel = "other"

// DefaultMaxModels is the number of distinct model label values kept when
// WithMaxModels is not given.
const DefaultMaxModels = 256

// OtherKey is the key label of queue waits of keys beyond MaxKeys distinct
// ones. Keys are made by the admin, so the bound is a backstop.
const OtherKey = "other"

// DefaultMaxKeys is the number of distinct key label values kept when
// WithMaxKeys is not given.
const DefaultMaxKeys = 1024

// InstanceInfo is one Ollama instance as the engine sees it at scrape time.
type InstanceInfo struct {
	Name    string // instance name, as in the gateway's instance label
	GPU     string // GPU index or UUID it runs on; "" in CPU mode
	Phase   string // pending, pulling, starting, healthy, unhealthy, failed, draining
	Healthy bool
}

// GPUInfo is one sample of one GPU. A value the device does not report is
// zero, and that gauge is then left out rather than shown as 0.
type GPUInfo struct {
	Index        int
	UUID         string
	Name         string
	Utilization  float64 // 0..1
	MemoryUsed   uint64  // bytes
	MemoryTotal  uint64  // bytes
	TemperatureC float64
	PowerW       float64
}

// Option configures New.
type Option func(*options)

type options struct {
	instances func() []InstanceInfo
	gpus      func() []GPUInfo
	queue     func() []QueueInfo
	maxModels int
	maxKeys   int
	noRuntime bool
}

// WithInstances makes every scrape call f for corral_instance_up and
// corral_instance_phase. f must be safe to call from any goroutine.
func WithInstances(f func() []InstanceInfo) Option {
	return func(o *options) { o.instances = f }
}

// WithGPUs makes every scrape call f for the corral_gpu_* gauges. f must be
// safe to call from any goroutine and should return the last sample rather
// than query the devices.
func WithGPUs(f func() []GPUInfo) Option {
	return func(o *options) { o.gpus = f }
}

// WithQueue makes every scrape call f for corral_queue_waiting and
// corral_queue_oldest_wait_seconds. f must be safe to call from any
// goroutine; it may return nil.
func WithQueue(f func() []QueueInfo) Option {
	return func(o *options) { o.queue = f }
}

// WithMaxModels bounds the distinct model label values; later ones are
// counted as OtherModel.
func WithMaxModels(n int) Option {
	return func(o *options) { o.maxModels = n }
}

// WithMaxKeys bounds the distinct key label values of the queue metrics;
// later ones are counted as OtherKey.
func WithMaxKeys(n int) Option {
	return func(o *options) { o.maxKeys = n }
}

// WithoutRuntimeMetrics leaves out the Go runtime and process collectors
// (go_*, process_*), which are registered by default.
func WithoutRuntimeMetrics() Option {
	return func(o *options) { o.noRuntime = true }
}

// Metrics holds the gateway's collectors and its registry.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec   // route, model, instance, status
	duration       *prometheus.HistogramVec // route, model
	ttft           *prometheus.HistogramVec // route, model
	tokens         *prometheus.CounterVec   // model, instance, kind
	inflight       *prometheus.GaugeVec     // instance
	streamFailures *prometheus.CounterVec   // instance, reason
	retries        *prometheus.CounterVec   // instance
	tps            *prometheus.HistogramVec // model
	filterHits     *prometheus.CounterVec   // where
	hitPrompt      prometheus.Counter
	hitOutput      prometheus.Counter
	queueWait      *prometheus.HistogramVec // model
	keyWait        *prometheus.CounterVec   // key

	maxModels, maxKeys int

	// series, insts and waits are read without a lock and replaced whole
	// under mu.
	series atomic.Pointer[map[seriesKey]*series]
	insts  atomic.Pointer[map[string]*instSeries]
	waits  atomic.Pointer[map[waitKey]*waitSeries]
	mu     sync.Mutex
	models map[string]bool // distinct model labels so far; guarded by mu
	keys   map[string]bool // distinct key labels so far; guarded by mu
}

type seriesKey struct{ route, model, instance string }

// series holds the resolved children of one (route, model, instance).
type series struct {
	inst       *instSeries
	route      string
	model      string // the label value: model, or OtherModel
	instance   string
	duration   prometheus.Observer
	ttft       prometheus.Observer
	tps        prometheus.Observer
	prompt     prometheus.Counter
	completion prometheus.Counter
	byStatus   atomic.Pointer[[]statusCounter] // copy-on-write, under Metrics.mu
}

type statusCounter struct {
	code int
	c    prometheus.Counter
}

// instSeries holds the children labelled by instance alone.
type instSeries struct {
	inflight    prometheus.Gauge
	retries     prometheus.Counter
	idleTimeout prometheus.Counter
	endedEarly  prometheus.Counter
	readError   prometheus.Counter
}

// New builds the gateway's metrics on a registry of their own.
func New(opts ...Option) *Metrics {
	o := options{maxModels: DefaultMaxModels, maxKeys: DefaultMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_gateway_requests_total",
			Help: "Requests the gateway answered, by route, model, the instance that answered and HTTP status.",
		}, []string{"route", "model", "instance", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corral_gateway_request_duration_seconds",
			Help:    "Time from a request's arrival to the last byte of its answer.",
			Buckets: durationBuckets,
		}, []string{"route", "model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corral_gateway_time_to_first_token_seconds",
			Help:    "Time from a streaming request's arrival to the first byte of the instance's answer reaching the client.",
			Buckets: ttftBuckets,
		}, []string{"route", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_gateway_tokens_total",
			Help: "Tokens processed, as the instances counted them (estimated for a stream that ended before its counts): kind is prompt or completion.",
		}, []string{"model", "instance", "kind"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "corral_gateway_in_flight",
			Help: "Requests being answered by each instance now.",
		}, []string{"instance"}),
		streamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_gateway_stream_failures_total",
			Help: "Streams an instance cut before their end marker, by reason (idle_timeout, ended_early, read_error).",
		}, []string{"instance", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_gateway_retries_total",
			Help: "Attempts that failed on an instance before the client saw a byte and were moved to another one.",
		}, []string{"instance"}),
		tps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corral_gateway_generation_tokens_per_second",
			Help:    "Completion tokens per second of generation, after the first token.",
			Buckets: tpsBuckets,
		}, []string{"model"}),
		filterHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_filter_hits_total",
			Help: "Content-filter matches: where is prompt (request refused) or output (stream cut).",
		}, []string{"where"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corral_queue_wait_seconds",
			Help:    "Time a request waited in corral's queue for an instance, by model; 0 for one that found a free slot at once.",
			Buckets: queueBuckets,
		}, []string{"model"}),
		// Not corral_queue_wait_seconds_total: in OpenMetrics that counter's
		// family would be corral_queue_wait_seconds, the histogram's name.
		keyWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_queue_key_wait_seconds_total",
			Help: "Time requests of each API key waited in corral's queue for an instance, summed.",
		}, []string{"key"}),
		maxModels: o.maxModels,
		maxKeys:   o.maxKeys,
		models:    map[string]bool{},
		keys:      map[string]bool{},
	}
	m.hitPrompt = m.filterHits.WithLabelValues("prompt")
	m.hitOutput = m.filterHits.WithLabelValues("output")
	m.reg.MustRegister(m.requests, m.duration, m.ttft, m.tokens, m.inflight,
		m.streamFailures, m.retries, m.tps, m.filterHits, m.queueWait, m.keyWait)
	if o.instances != nil {
		m.reg.MustRegister(newInstanceCollector(o.instances))
	}
	if o.gpus != nil {
		m.reg.MustRegister(newGPUCollector(o.gpus))
	}
	if o.queue != nil {
		m.reg.MustRegister(newQueueCollector(m, o.queue))
	}
	if !o.noRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	empty := map[seriesKey]*series{}
	m.series.Store(&empty)
	emptyInst := map[string]*instSeries{}
	m.insts.Store(&emptyInst)
	emptyWaits := map[waitKey]*waitSeries{}
	m.waits.Store(&emptyWaits)
	return m
}

// Registry is the registry the metrics live in, for tests and for adding
// collectors of other parts.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg, // counts its own scrape errors
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// RequestStarted counts a request in flight on instance; the gateway calls
// it once it has picked the instance for an attempt. An empty instance
// counts nothing.
func (m *Metrics) RequestStarted(route, model, instance string) {
	if instance == "" {
		return
	}
	m.instance(instance).inflight.Inc()
}

// Retry records that the attempt on instance failed before the client saw
// a byte, and ends that attempt's in-flight count. The gateway then picks
// another instance (RequestStarted again) or gives up; either way the
// request ends with RequestDone.
func (m *Metrics) Retry(instance string) {
	if instance == "" {
		return
	}
	is := m.instance(instance)
	is.inflight.Dec()
	is.retries.Inc()
}

// RequestDone records a finished request.
//
// instance is the one that answered, whose attempt began with
// RequestStarted: its in-flight count drops by one. Pass "" when no
// instance answered (no instance had the model, or every attempt ended in
// Retry); the request is then counted with instance="".
//
// status is the HTTP status the client got. outcome is the gateway's word
// for the end: a stream an instance cut ("cut: ...") also counts in
// corral_gateway_stream_failures_total. ttft is the time to the first byte
// of a streamed answer, 0 for an answer sent whole; dur is the whole
// request. Tokens are the instance's own counts, or the gateway's
// estimate for a stream that ended before them (see gateway.Usage).
func (m *Metrics) RequestDone(route, model, instance string, status int, outcome string, dur, ttft time.Duration, promptTokens, completionTokens int) {
	s := m.lookup(route, model, instance)
	if s.inst != nil {
		s.inst.inflight.Dec()
	}
	s.status(m, status).Inc()
	s.duration.Observe(dur.Seconds())
	if ttft > 0 {
		s.ttft.Observe(ttft.Seconds())
	}
	if promptTokens > 0 {
		s.prompt.Add(float64(promptTokens))
	}
	if completionTokens > 0 {
		s.completion.Add(float64(completionTokens))
		gen := dur
		if ttft > 0 && ttft < dur {
			gen = dur - ttft
		}
		if gen > 0 {
			s.tps.Observe(float64(completionTokens) / gen.Seconds())
		}
	}
	if s.inst != nil && strings.HasPrefix(outcome, "cut:") {
		s.inst.streamFailure(outcome).Inc()
	}
}

// FilterHit counts a content-filter match; where is "prompt" or "output".
func (m *Metrics) FilterHit(where string) {
	switch where {
	case "prompt":
		m.hitPrompt.Inc()
	case "output":
		m.hitOutput.Inc()
	default:
		m.filterHits.WithLabelValues(validUTF8(where)).Inc()
	}
}

func (is *instSeries) streamFailure(outcome string) prometheus.Counter {
	switch {
	case strings.Contains(outcome, "no data for"):
		return is.idleTimeout
	case strings.Contains(outcome, "ended early"):
		return is.endedEarly
	default:
		return is.readError
	}
}

// lookup returns the children of (route, model, instance), creating them
// on first use.
func (m *Metrics) lookup(route, model, instance string) *series {
	return loadOrAdd(&m.series, &m.mu, seriesKey{route, model, instance}, func() *series { return m.newSeries(route, model, instance) })
}

// newSeries makes the children of (route, model, instance); the caller
// holds m.mu.
func (m *Metrics) newSeries(route, model, instance string) *series {
	// Label values must be UTF-8, or the vec panics.
	route, instance = validUTF8(route), validUTF8(instance)
	label := m.modelLabelLocked(model)
	s := &series{
		route:      route,
		model:      label,
		instance:   instance,
		duration:   m.duration.WithLabelValues(route, label),
		ttft:       m.ttft.WithLabelValues(route, label),
		tps:        m.tps.WithLabelValues(label),
		prompt:     m.tokens.WithLabelValues(label, instance, "prompt"),
		completion: m.tokens.WithLabelValues(label, instance, "completion"),
	}
	if instance != "" {
		s.inst = m.instanceLocked(instance)
	}
	none := []statusCounter{}
	s.byStatus.Store(&none)
	return s
}

// status returns the request counter of code, creating it on first use.
func (s *series) status(m *Metrics, code int) prometheus.Counter {
	for _, sc := range *s.byStatus.Load() {
		if sc.code == code {
			return sc.c
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *s.byStatus.Load()
	for _, sc := range cur {
		if sc.code == code {
			return sc.c
		}
	}
	c := m.requests.WithLabelValues(s.route, s.model, s.instance, strconv.Itoa(code))
	next := append(append(make([]statusCounter, 0, len(cur)+1), cur...), statusCounter{code, c})
	s.byStatus.Store(&next)
	return c
}

// modelLabelLocked is the label value of model: itself, made valid
// UTF-8, while fewer than maxModels are known, else OtherModel.
func (m *Metrics) modelLabelLocked(model string) string {
	return boundedLabel(m.models, m.maxModels, model, OtherModel)
}

// keyLabelLocked is the label value of key, as modelLabelLocked.
func (m *Metrics) keyLabelLocked(key string) string {
	return boundedLabel(m.keys, m.maxKeys, key, OtherKey)
}

// boundedLabel admits v to seen while seen has fewer than limit values,
// and returns it made valid UTF-8, or other once seen is full.
func boundedLabel(seen map[string]bool, limit int, v, other string) string {
	v = validUTF8(v)
	if !seen[v] {
		if len(seen) >= limit {
			return other
		}
		seen[v] = true
	}
	return v
}

func (m *Metrics) instance(name string) *instSeries {
	if is, ok := (*m.insts.Load())[name]; ok {
		return is
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.instanceLocked(name)
}

func (m *Metrics) instanceLocked(name string) *instSeries {
	cur := *m.insts.Load()
	if is, ok := cur[name]; ok {
		return is
	}
	key := name
	name = validUTF8(name)
	is := &instSeries{
		inflight:    m.inflight.WithLabelValues(name),
		retries:     m.retries.WithLabelValues(name),
		idleTimeout: m.streamFailures.WithLabelValues(name, ReasonIdleTimeout),
		endedEarly:  m.streamFailures.WithLabelValues(name, ReasonEndedEarly),
		readError:   m.streamFailures.WithLabelValues(name, ReasonReadError),
	}
	next := make(map[string]*instSeries, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[key] = is
	m.insts.Store(&next)
	return is
}

func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
