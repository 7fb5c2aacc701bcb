// Package scheduler decides where and when each model request runs. It
// keeps a live view of every instance (its parallel slots, the models it
// holds or is loading and the requests on each), holds the queue itself
// rather than leaving it to Ollama, and dispatches waiting requests by
// weighted fair queueing across consumers, to an instance that holds the
// model whenever one frees soon enough, so that models are not swapped
// for nothing and one consumer's flood delays only itself.
//
// With PassThrough it places every request at once and leaves the waiting
// to Ollama, as corral did before it held the queue: a baseline for
// benchmarks, and a choice for instances with many parallel slots.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Clock is the time the scheduler runs on; tests give it a fake one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Class orders waiting requests before fairness does: interactive ones
// go before batch ones.
type Class int

const (
	Interactive Class = iota
	Batch
)

// Config tunes the scheduler; zero values take the defaults.
type Config struct {
	// MaxQueue is how many requests one consumer (or group) may have
	// waiting.
	MaxQueue int
	// MaxWait is how long a request may wait for an instance.
	MaxWait time.Duration
	// LoadTime and RequestTime are what a model's load and a request are
	// assumed to take until some have been seen.
	LoadTime, RequestTime time.Duration
	// PassThrough places every request at once, on a holder of its model
	// with the fewest requests in flight even when it is full, and never
	// holds a queue.
	PassThrough bool
	Clock       Clock
}

func (c *Config) defaults() {
	if c.MaxQueue <= 0 {
		c.MaxQueue = 256
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Minute
	}
	if c.LoadTime <= 0 {
		c.LoadTime = 10 * time.Second
	}
	if c.RequestTime <= 0 {
		c.RequestTime = 5 * time.Second
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
}

// Instance is what the scheduler is told of an instance.
type Instance struct {
	Name      string
	Available bool // healthy and not draining
	Slots     int  // requests one loaded model serves at once (OLLAMA_NUM_PARALLEL)
	Weight    int  // relative capacity; 0 counts as 1
	Models    map[string]bool
	// Loaded is what /api/ps said at PolledAt.
	Loaded     map[string]bool
	PolledAt   time.Time
	FreeMemory uint64
}

// Ticket is one request asking for an instance.
type Ticket struct {
	Consumer string // the key's name, or the key and chat user
	// Group, when set, is the key whose share its consumers split: while
	// three chat users of one key wait, each gets a third of its weight,
	// so a key's users together weigh what the key does.
	Group  string
	Weight float64 // the consumer's (or group's) share; 0 counts as 1
	Class  Class
	Model  string
	// Avoid names instances the request must not go to: those a retry
	// already tried.
	Avoid map[string]bool
	// MaxWait and MaxQueue override the configured limits for this
	// consumer when set.
	MaxWait  time.Duration
	MaxQueue int
}

// Refused is a request the scheduler will not queue, or queued too long:
// the client gets 429 with RetryAfter.
type Refused struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *Refused) Error() string { return e.Reason }

// ErrNoInstance means no available instance has the model.
var ErrNoInstance = errors.New("no available instance has the model")

// Scheduler dispatches requests to instances. It is safe for concurrent
// use.
type Scheduler struct {
	cfg   Config
	clock Clock

	mu        sync.Mutex
	instances map[string]*instance
	order     []string // instance names, sorted, for deterministic choices
	waiting   []*waiter
	consumers map[string]*consumer
	groups    map[string]*group // those with requests waiting
	vtime     float64           // the virtual time of weighted fair queueing
	seq       uint64
	loadTime  map[string]time.Duration // by model, observed
	reqTime   map[string]time.Duration // by model, observed
}

type instance struct {
	Instance
	held map[string]*hold // models loaded or loading
}

// hold is one model on one instance.
type hold struct {
	inflight int
	loading  bool      // a cold load was started and no request has finished since
	since    time.Time // when corral last sent it a request
}

type consumer struct {
	finish  float64 // the finish tag of its last request
	waiting int
	group   string
}

type group struct {
	waiting int // requests
	active  int // consumers with requests waiting
}

type waiter struct {
	t       Ticket
	start   float64 // WFQ start tag
	finish  float64 // WFQ finish tag
	seq     uint64
	enqAt   time.Time
	granted chan *Grant
	err     error
	done    bool
	stop    func() bool
}

// New makes a scheduler over no instances; Update gives it some.
func New(cfg Config) *Scheduler {
	cfg.defaults()
	return &Scheduler{
		cfg:       cfg,
		clock:     cfg.Clock,
		instances: map[string]*instance{},
		consumers: map[string]*consumer{},
		groups:    map[string]*group{},
		loadTime:  map[string]time.Duration{},
		reqTime:   map[string]time.Duration{},
	}
}

// Update replaces what the scheduler knows of the instances. What /api/ps
// says corrects what the scheduler recorded itself: a model it lists is
// held; one it does not list, with nothing in flight and nothing sent
// since the poll, was evicted.
func (s *Scheduler) Update(list []Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]*instance{}
	s.order = s.order[:0]
	for _, in := range list {
		st := s.instances[in.Name]
		if st == nil {
			st = &instance{held: map[string]*hold{}}
		}
		st.Instance = in
		st.correct(in.Loaded, in.PolledAt)
		next[in.Name] = st
		s.order = append(s.order, in.Name)
	}
	sort.Strings(s.order)
	s.instances = next
	s.dispatch()
}

// correct makes held agree with a list of loaded models read at at: a
// model listed is held; one not listed, with nothing in flight, no load
// of corral's pending and nothing sent since the read, was evicted.
func (in *instance) correct(loaded map[string]bool, at time.Time) {
	for m := range loaded {
		if in.held[m] == nil {
			in.held[m] = &hold{}
		}
	}
	if at.IsZero() {
		return
	}
	for m, h := range in.held {
		if !loaded[m] && h.inflight == 0 && !h.loading && h.since.Before(at) {
			delete(in.held, m)
		}
	}
}

// Acquire waits until the request may run and says where. It fails at
// once when no instance has the model or the consumer has MaxQueue
// requests waiting, and after MaxWait or when ctx ends while it waits: a
// request whose client left never reaches an instance.
func (s *Scheduler) Acquire(ctx context.Context, t Ticket) (*Grant, error) {
	maxQueue, maxWait := s.cfg.MaxQueue, s.cfg.MaxWait
	if t.MaxQueue > 0 {
		maxQueue = t.MaxQueue
	}
	if t.MaxWait > 0 {
		maxWait = t.MaxWait
	}
	s.mu.Lock()
	if !s.anyHas(t.Model, t.Avoid) {
		s.mu.Unlock()
		return nil, ErrNoInstance
	}
	gname := t.Group
	if gname == "" {
		gname = t.Consumer
	}
	g := s.groups[gname]
	if g == nil {
		g = &group{}
		s.groups[gname] = g
	}
	if g.waiting >= maxQueue {
		s.mu.Unlock()
		return nil, &Refused{Reason: fmt.Sprintf("%d requests of yours are already waiting for an instance: wait for some to finish", g.waiting), RetryAfter: s.retryAfter(t.Model)}
	}
	c := s.consumers[t.Consumer]
	if c == nil {
		if len(s.consumers) >= 1024 {
			s.forgetIdle()
		}
		c = &consumer{group: gname}
		s.consumers[t.Consumer] = c
	}
	if c.waiting == 0 {
		c.group = gname
		g.active++
	}
	w := &waiter{t: t, granted: make(chan *Grant, 1), enqAt: s.clock.Now()}
	s.seq++
	w.seq = s.seq
	weight := t.Weight
	if weight <= 0 {
		weight = 1
	}
	weight /= float64(g.active)
	w.start = max(s.vtime, c.finish)
	w.finish = w.start + 1/weight
	c.finish = w.finish
	c.waiting++
	g.waiting++
	s.waiting = append(s.waiting, w)
	s.dispatch()
	if !w.done {
		w.stop = s.clock.AfterFunc(maxWait, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.drop(w, &Refused{Reason: fmt.Sprintf("no instance was free for %s within %s: every one that has it is busy", t.Model, maxWait), RetryAfter: s.retryAfter(t.Model)})
		})
	}
	s.mu.Unlock()

	select {
	case g := <-w.granted:
		if g == nil {
			return nil, w.err
		}
		return g, nil
	case <-ctx.Done():
		s.mu.Lock()
		s.drop(w, ctx.Err())
		s.mu.Unlock()
		// It may have been granted in between: give the slot back.
		if g := <-w.granted; g != nil {
			g.Done(Outcome{})
		}
		return nil, ctx.Err()
	}
}

// drop takes a waiter out of the queue with err, unless it was granted.
func (s *Scheduler) drop(w *waiter, err error) {
	if w.done {
		return
	}
	w.done, w.err = true, err
	s.unqueue(w)
	w.granted <- nil
}

func (s *Scheduler) unqueue(w *waiter) {
	for i, x := range s.waiting {
		if x == w {
			s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
			break
		}
	}
	c := s.consumers[w.t.Consumer]
	c.waiting--
	g := s.groups[c.group]
	g.waiting--
	if c.waiting == 0 {
		g.active--
	}
	if g.waiting == 0 {
		delete(s.groups, c.group)
	}
	if w.stop != nil {
		w.stop()
	}
}

// forgetIdle drops the consumers with nothing waiting whose last finish
// tag virtual time has passed: they are owed nothing.
func (s *Scheduler) forgetIdle() {
	for name, c := range s.consumers {
		if c.waiting == 0 && c.finish <= s.vtime {
			delete(s.consumers, name)
		}
	}
}

func (s *Scheduler) anyHas(model string, avoid map[string]bool) bool {
	for _, in := range s.instances {
		if in.usable(model, avoid) {
			return true
		}
	}
	return false
}

// retryAfter is when a refused request is worth trying again: about one
// request's time.
func (s *Scheduler) retryAfter(model string) time.Duration {
	return max(s.requestTime(model).Round(time.Second), time.Second)
}

func (s *Scheduler) requestTime(model string) time.Duration {
	if d, ok := s.reqTime[model]; ok {
		return d
	}
	return s.cfg.RequestTime
}

func (s *Scheduler) modelLoadTime(model string) time.Duration {
	if d, ok := s.loadTime[model]; ok {
		return d
	}
	return s.cfg.LoadTime
}

// dispatch grants what can run now, in order: class, then the WFQ finish
// tag, then arrival. A request that cannot run yet does not hold back
// one for another model behind it.
func (s *Scheduler) dispatch() {
	sort.SliceStable(s.waiting, func(i, j int) bool {
		a, b := s.waiting[i], s.waiting[j]
		if a.t.Class != b.t.Class {
			return a.t.Class < b.t.Class
		}
		if a.finish != b.finish {
			return a.finish < b.finish
		}
		return a.seq < b.seq
	})
	ahead := map[string]int{} // by model: requests before this one that wait on
	for i := 0; i < len(s.waiting); {
		w := s.waiting[i]
		in, cold := s.place(w.t.Model, ahead[w.t.Model], w.t.Avoid)
		if in == nil {
			if !s.anyHas(w.t.Model, w.t.Avoid) {
				// Its instances are gone or down: say so now rather than
				// at MaxWait.
				s.drop(w, ErrNoInstance)
				continue
			}
			ahead[w.t.Model]++
			i++
			continue
		}
		s.vtime = max(s.vtime, w.start)
		s.unqueue(w) // removes s.waiting[i]
		w.done = true
		h := in.held[w.t.Model]
		if h == nil {
			h = &hold{}
			in.held[w.t.Model] = h
		}
		if cold {
			h.loading = true
			in.displace(w.t.Model)
		}
		h.inflight++
		now := s.clock.Now()
		h.since = now
		w.granted <- &Grant{Instance: in.Name, Cold: cold, Waited: now.Sub(w.enqAt), s: s, in: in.Name, model: w.t.Model}
	}
}

// displace forgets the idle models on an instance that starts loading
// model: Ollama evicts them when the new one does not fit beside them,
// and until a read of /api/ps after the load (Update) says which stayed,
// a request for one of them is better placed as if it had to load.
func (in *instance) displace(model string) {
	for m, h := range in.held {
		if m != model && h.inflight == 0 && !h.loading {
			delete(in.held, m)
		}
	}
}

func (in *instance) usable(model string, avoid map[string]bool) bool {
	return in.Available && in.Models[model] && !avoid[in.Name]
}

// place chooses an instance for a request of model with ahead requests
// for it waiting before it, and says whether it starts a load there; nil
// means wait.
//
//   - An instance that holds the model (or is loading it) with a slot
//     free: the least busy per weight.
//   - None holds it: start a load, on an idle instance if there is one
//     (the one holding fewest models, then most free memory), else the
//     least busy. Once a load starts,
//     requests behind it go to that instance's slots, so concurrent first
//     requests start one load.
//   - Holders are all full: wait for one, unless the expected wait (the
//     requests ahead, over the holders' slots, times a request's time)
//     exceeds the model's load time and an idle instance can load it:
//     then the model spreads there.
func (s *Scheduler) place(model string, ahead int, avoid map[string]bool) (*instance, bool) {
	var holders, idle, others []*instance
	for _, name := range s.order {
		in := s.instances[name]
		if !in.usable(model, avoid) {
			continue
		}
		switch {
		case in.held[model] != nil:
			holders = append(holders, in)
		case in.inflight() == 0:
			idle = append(idle, in)
		default:
			others = append(others, in)
		}
	}
	if in := leastBusy(holders, model, !s.cfg.PassThrough); in != nil {
		return in, false
	}
	if len(holders) == 0 {
		if len(idle) > 0 {
			return roomiest(idle), true
		}
		if in := leastBusy(others, "", false); in != nil {
			return in, true
		}
		return nil, false
	}
	if len(idle) == 0 {
		return nil, false
	}
	slots := 0
	for _, in := range holders {
		slots += in.slots()
	}
	wait := time.Duration(ahead+1) * s.requestTime(model) / time.Duration(max(slots, 1))
	if wait > s.modelLoadTime(model) {
		return roomiest(idle), true
	}
	return nil, false
}

// roomiest is the idle instance where a load displaces least: the one
// holding the fewest models, then the one with the most free memory.
func roomiest(idle []*instance) *instance {
	best := idle[0]
	for _, in := range idle[1:] {
		if len(in.held) < len(best.held) || len(in.held) == len(best.held) && in.FreeMemory > best.FreeMemory {
			best = in
		}
	}
	return best
}

// leastBusy is the instance with the fewest requests in flight per weight
// (on model when free is set, among those with a slot free for it).
func leastBusy(list []*instance, model string, free bool) *instance {
	var best *instance
	var bestLoad float64
	for _, in := range list {
		n := in.inflight()
		if free {
			if in.held[model].inflight >= in.slots() {
				continue
			}
		}
		load := float64(n) / float64(max(in.Weight, 1))
		if best == nil || load < bestLoad {
			best, bestLoad = in, load
		}
	}
	return best
}

func (in *instance) inflight() int {
	n := 0
	for _, h := range in.held {
		n += h.inflight
	}
	return n
}

func (in *instance) slots() int { return max(in.Slots, 1) }

// Outcome is how a granted request went, for the scheduler's estimates.
type Outcome struct {
	OK       bool
	TTFB     time.Duration // to the instance's first byte: a cold request's includes the load
	Duration time.Duration
}

// Grant is a request's place on an instance, held until Done.
type Grant struct {
	Instance string
	Cold     bool          // the request starts a load of its model there
	Waited   time.Duration // in corral's queue

	s     *Scheduler
	in    string
	model string
	once  sync.Once
}

// Done gives the slot back and learns from how the request went.
func (g *Grant) Done(o Outcome) {
	g.once.Do(func() {
		s := g.s
		s.mu.Lock()
		defer s.mu.Unlock()
		if in := s.instances[g.in]; in != nil {
			if h := in.held[g.model]; h != nil {
				h.inflight--
				h.loading = false // a request that ended there found the model loaded
			}
		}
		if o.OK {
			if g.Cold && o.TTFB > 0 {
				s.loadTime[g.model] = ewma(s.loadTime[g.model], o.TTFB)
			} else if o.Duration > 0 {
				s.reqTime[g.model] = ewma(s.reqTime[g.model], o.Duration)
			}
		}
		s.dispatch()
	})
}

// ewma weighs a new observation at a quarter.
func ewma(old, v time.Duration) time.Duration {
	if old == 0 {
		return v
	}
	return old + (v-old)/4
}

// Queued is what waits now for one model from one consumer.
type Queued struct {
	Model, Consumer string
	Group           string // the consumer's group (its key), or the consumer
	Count           int
	Oldest          time.Duration // how long the first of them has waited
}

// Queue lists what waits, by model and consumer, sorted.
func (s *Scheduler) Queue() []Queued {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	by := map[[2]string]*Queued{}
	for _, w := range s.waiting {
		k := [2]string{w.t.Model, w.t.Consumer}
		q := by[k]
		if q == nil {
			q = &Queued{Model: w.t.Model, Consumer: w.t.Consumer, Group: s.consumers[w.t.Consumer].group}
			by[k] = q
		}
		q.Count++
		q.Oldest = max(q.Oldest, now.Sub(w.enqAt))
	}
	out := make([]Queued, 0, len(by))
	for _, q := range by {
		out = append(out, *q)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Consumer < out[j].Consumer
	})
	return out
}

// Held is a model an instance holds or is loading, as the scheduler
// sees it.
type Held struct {
	Model    string
	Inflight int
	Loading  bool
}

// Holding lists, by instance, the models each holds or is loading,
// sorted by name.
func (s *Scheduler) Holding() map[string][]Held {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Held, len(s.instances))
	for name, in := range s.instances {
		list := make([]Held, 0, len(in.held))
		for m, h := range in.held {
			list = append(list, Held{Model: m, Inflight: h.inflight, Loading: h.loading})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Model < list[j].Model })
		out[name] = list
	}
	return out
}
