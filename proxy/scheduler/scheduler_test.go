package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock moves only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock and runs the timers that come due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func inst(name string, slots int, loaded ...string) Instance {
	l := map[string]bool{}
	for _, m := range loaded {
		l[m] = true
	}
	return Instance{Name: name, Available: true, Slots: slots, Models: map[string]bool{"a": true, "b": true}, Loaded: l}
}

// acquireAsync starts an Acquire and returns where its answer arrives.
type result struct {
	g   *Grant
	err error
}

func acquireAsync(ctx context.Context, s *Scheduler, t Ticket) chan result {
	ch := make(chan result, 1)
	go func() {
		g, err := s.Acquire(ctx, t)
		ch <- result{g, err}
	}()
	return ch
}

// waitQueued waits until n requests wait in the scheduler.
func waitQueued(t *testing.T, s *Scheduler, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := 0
		for _, q := range s.Queue() {
			got += q.Count
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func get(t *testing.T, ch chan result) *Grant {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.g
	case <-time.After(5 * time.Second):
		t.Fatal("no grant")
	}
	return nil
}

func pending(ch chan result) bool {
	select {
	case r := <-ch:
		ch <- r
		return false
	default:
		return true
	}
}

// Waiting requests are dispatched in proportion to their consumers'
// weights: with one slot and both consumers always waiting, a consumer of
// weight 2 gets two requests through for each of the other's.
func TestDispatchFollowsWeights(t *testing.T) {
	s := New(Config{Clock: newFakeClock()})
	s.Update([]Instance{inst("i0", 1, "a")})
	first := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "warmup", Model: "a"}))
	type grant struct {
		who string
		g   *Grant
	}
	granted := make(chan grant, 48)
	n := 0
	for range 12 {
		for _, c := range []struct {
			name   string
			weight float64
		}{{"heavy", 2}, {"light", 1}} {
			go func() {
				g, err := s.Acquire(context.Background(), Ticket{Consumer: c.name, Weight: c.weight, Model: "a"})
				if err == nil {
					granted <- grant{c.name, g}
				}
			}()
			n++
			waitQueued(t, s, n)
		}
	}
	first.Done(Outcome{OK: true})
	heavy := 0
	var order []string
	for range 18 {
		select {
		case gr := <-granted:
			order = append(order, gr.who)
			if gr.who == "heavy" {
				heavy++
			}
			gr.g.Done(Outcome{OK: true})
		case <-time.After(5 * time.Second):
			t.Fatalf("stalled after %v", order)
		}
	}
	if heavy != 12 {
		t.Fatalf("first 18 dispatched: %v (%d heavy), want 12 heavy and 6 light", order, heavy)
	}
	for range 6 {
		(<-granted).g.Done(Outcome{OK: true})
	}
}

// A waiting request whose client leaves never reaches an instance, and
// the request behind it gets the slot.
func TestCancelledWaitingRequestNeverRuns(t *testing.T) {
	s := New(Config{Clock: newFakeClock()})
	s.Update([]Instance{inst("i0", 1, "a")})
	busy := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"}))
	ctx, cancel := context.WithCancel(context.Background())
	gone := acquireAsync(ctx, s, Ticket{Consumer: "x", Model: "a"})
	waitQueued(t, s, 1)
	next := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	waitQueued(t, s, 2)
	cancel()
	if r := <-gone; !errors.Is(r.err, context.Canceled) || r.g != nil {
		t.Fatalf("cancelled request: %+v", r)
	}
	waitQueued(t, s, 1)
	busy.Done(Outcome{OK: true})
	if g := get(t, next); g.Instance != "i0" {
		t.Fatalf("next went to %s", g.Instance)
	}
}

// Past the queue length and past the longest wait the answer is a refusal
// with Retry-After, never a hung request.
func TestLimitsRefuseWithRetryAfter(t *testing.T) {
	clk := newFakeClock()
	s := New(Config{Clock: clk, MaxQueue: 2, MaxWait: time.Minute, RequestTime: 3 * time.Second})
	s.Update([]Instance{inst("i0", 1, "a")})
	get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"}))
	w1 := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	w2 := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	waitQueued(t, s, 2)
	_, err := s.Acquire(context.Background(), Ticket{Consumer: "x", Model: "a"})
	var ref *Refused
	if !errors.As(err, &ref) || ref.RetryAfter != 3*time.Second {
		t.Fatalf("third waiting request: %v, want a refusal with Retry-After 3s", err)
	}
	// Another consumer still has its own queue.
	w3 := acquireAsync(context.Background(), s, Ticket{Consumer: "y", Model: "a"})
	waitQueued(t, s, 3)
	clk.advance(time.Minute)
	for _, ch := range []chan result{w1, w2, w3} {
		r := <-ch
		if !errors.As(r.err, &ref) || ref.RetryAfter <= 0 {
			t.Fatalf("after the longest wait: %+v, want a refusal with Retry-After", r)
		}
	}
	if _, err := s.Acquire(context.Background(), Ticket{Consumer: "x", Model: "nope"}); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("unknown model: %v", err)
	}
}

// A request never waits behind a load on one instance while another that
// holds the model has a slot free, and concurrent first requests for a
// model loaded nowhere start one load, not one per instance.
func TestPlacementPrefersWarmAndLoadsOnce(t *testing.T) {
	s := New(Config{Clock: newFakeClock()})
	s.Update([]Instance{inst("i0", 2, "a"), inst("i1", 2), inst("i2", 2)})
	for range 2 {
		if g := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})); g.Instance != "i0" || g.Cold {
			t.Fatalf("a went to %s (cold %v), want warm i0", g.Instance, g.Cold)
		}
	}
	// b is loaded nowhere: the first request starts a load, the next goes
	// to the same instance's free slot.
	g1 := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "b"}))
	g2 := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "y", Model: "b"}))
	if !g1.Cold || g2.Cold || g1.Instance != g2.Instance || g1.Instance == "i0" {
		t.Fatalf("first b requests: %s cold %v, %s cold %v; want one load on an idle instance", g1.Instance, g1.Cold, g2.Instance, g2.Cold)
	}
}

// With every holder full, a request waits for one when that is quicker
// than a load elsewhere, and starts a load on an idle instance when the
// queue ahead would take longer: a one-model workload spreads.
func TestColdInstanceOnlyWhenTheWaitIsLonger(t *testing.T) {
	s := New(Config{Clock: newFakeClock(), LoadTime: 10 * time.Second, RequestTime: 4 * time.Second})
	s.Update([]Instance{inst("i0", 1, "a"), inst("i1", 1)})
	busy := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"}))
	// One waiting: 4 s expected, less than a 10 s load: it waits.
	w := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	waitQueued(t, s, 1)
	// Two more: the third in line would wait 12 s, more than a load.
	w2 := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	waitQueued(t, s, 2)
	w3 := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	g3 := get(t, w3)
	if g3.Instance != "i1" || !g3.Cold {
		t.Fatalf("third in line: %s cold %v, want a load on i1", g3.Instance, g3.Cold)
	}
	if !pending(w) || !pending(w2) {
		t.Fatal("the first two in line did not wait for the warm instance")
	}
	busy.Done(Outcome{OK: true, Duration: 4 * time.Second})
	if g := get(t, w); g.Instance != "i0" {
		t.Fatalf("first in line went to %s", g.Instance)
	}
}

// Interactive requests go before batch ones, whatever the weights.
func TestInteractiveBeforeBatch(t *testing.T) {
	s := New(Config{Clock: newFakeClock()})
	s.Update([]Instance{inst("i0", 1, "a")})
	busy := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"}))
	batch := acquireAsync(context.Background(), s, Ticket{Consumer: "bulk", Weight: 100, Class: Batch, Model: "a"})
	waitQueued(t, s, 1)
	chat := acquireAsync(context.Background(), s, Ticket{Consumer: "chat", Class: Interactive, Model: "a"})
	waitQueued(t, s, 2)
	busy.Done(Outcome{OK: true})
	get(t, chat)
	if !pending(batch) {
		t.Fatal("the batch request went first")
	}
}

// What /api/ps says corrects the view: a model evicted since corral last
// sent it a request no longer counts as held.
func TestPollCorrectsHeldModels(t *testing.T) {
	clk := newFakeClock()
	s := New(Config{Clock: clk})
	s.Update([]Instance{inst("i0", 1, "a"), inst("i1", 1, "b")})
	g := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"}))
	g.Done(Outcome{OK: true})
	clk.advance(time.Second)
	i0 := inst("i0", 1) // a was evicted
	i0.PolledAt = clk.Now()
	s.Update([]Instance{i0, inst("i1", 1, "b")})
	// a is held nowhere now: its next request loads it on an idle instance.
	if g := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})); !g.Cold {
		t.Fatalf("a on %s counted as still loaded", g.Instance)
	}
}

// A retry never goes back to an instance it tried, and a request with
// nowhere left to go is told so at once.
func TestAvoidTriedInstances(t *testing.T) {
	s := New(Config{Clock: newFakeClock()})
	s.Update([]Instance{inst("i0", 1, "a"), inst("i1", 1)})
	g := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a", Avoid: map[string]bool{"i0": true}}))
	if g.Instance != "i1" || !g.Cold {
		t.Fatalf("retry went to %s (cold %v), want a load on i1", g.Instance, g.Cold)
	}
	if _, err := s.Acquire(context.Background(), Ticket{Consumer: "x", Model: "a", Avoid: map[string]bool{"i0": true, "i1": true}}); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("every instance tried: %v, want ErrNoInstance", err)
	}
}

// A request waiting for instances that then go away is refused when they
// go, not at the longest wait.
func TestWaitingRequestRefusedWhenInstancesGo(t *testing.T) {
	s := New(Config{Clock: newFakeClock()})
	s.Update([]Instance{inst("i0", 1, "a")})
	get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"}))
	w := acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})
	waitQueued(t, s, 1)
	down := inst("i0", 1, "a")
	down.Available = false
	s.Update([]Instance{down})
	if r := <-w; !errors.Is(r.err, ErrNoInstance) {
		t.Fatalf("waiting request after its instance went down: %+v", r)
	}
}

// A cold load displaces the instance's idle models until a read of
// /api/ps after the load says which stayed.
func TestColdLoadDisplacesUntilObserved(t *testing.T) {
	clk := newFakeClock()
	s := New(Config{Clock: clk})
	s.Update([]Instance{inst("i0", 1, "a"), inst("i1", 1)})
	gb := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "b"}))
	if gb.Instance != "i1" {
		t.Fatalf("b went to %s, want i1, which holds nothing", gb.Instance)
	}
	// i0 gets a model c that only it has: loading it there displaces a.
	s.Update([]Instance{
		{Name: "i0", Available: true, Slots: 1, Models: map[string]bool{"a": true, "c": true}, Loaded: map[string]bool{"a": true}},
		{Name: "i1", Available: true, Slots: 1, Models: map[string]bool{"b": true}},
	})
	gc := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "c"}))
	if gc.Instance != "i0" || !gc.Cold {
		t.Fatalf("c went to %s (cold %v)", gc.Instance, gc.Cold)
	}
	if h := s.Holding()["i0"]; len(h) != 1 || h[0].Model != "c" || !h[0].Loading {
		t.Fatalf("i0 holds %+v while loading c, want c alone", h)
	}
	// The load ended and /api/ps lists both: a stayed.
	clk.advance(time.Second)
	s.Update([]Instance{
		{Name: "i0", Available: true, Slots: 1, Models: map[string]bool{"a": true, "c": true}, Loaded: map[string]bool{"a": true, "c": true}, PolledAt: clk.Now()},
		{Name: "i1", Available: true, Slots: 1, Models: map[string]bool{"b": true}},
	})
	gc.Done(Outcome{OK: true, TTFB: time.Second, Duration: 2 * time.Second})
	if g := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})); g.Instance != "i0" || g.Cold {
		t.Fatalf("a went to %s (cold %v), want warm i0", g.Instance, g.Cold)
	}
	gb.Done(Outcome{OK: true})
}

// Pass-through places every request at once, on the warm holder even when
// it is full, and holds no queue.
func TestPassThroughNeverQueues(t *testing.T) {
	s := New(Config{Clock: newFakeClock(), PassThrough: true})
	s.Update([]Instance{inst("i0", 1, "a"), inst("i1", 1, "b")})
	for range 3 {
		if g := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "x", Model: "a"})); g.Instance != "i0" || g.Cold {
			t.Fatalf("a went to %s (cold %v)", g.Instance, g.Cold)
		}
	}
	if q := s.Queue(); len(q) != 0 {
		t.Fatalf("queue %+v", q)
	}
}

// A key's chat users split the key's share: three users of one key
// waiting beside another key get half the dispatches between them, not
// three quarters; and the queue limit counts the key's requests.
func TestGroupSplitsItsShare(t *testing.T) {
	s := New(Config{Clock: newFakeClock(), MaxQueue: 24})
	s.Update([]Instance{inst("i0", 1, "a")})
	first := get(t, acquireAsync(context.Background(), s, Ticket{Consumer: "warmup", Model: "a"}))
	type grant struct {
		who string
		g   *Grant
	}
	granted := make(chan grant, 48)
	n := 0
	for range 8 {
		for _, tk := range []Ticket{
			{Consumer: "ui/ann", Group: "ui", Model: "a"},
			{Consumer: "ui/bob", Group: "ui", Model: "a"},
			{Consumer: "ui/cy", Group: "ui", Model: "a"},
			{Consumer: "api", Model: "a"},
		} {
			go func() {
				if g, err := s.Acquire(context.Background(), tk); err == nil {
					granted <- grant{tk.Consumer, g}
				}
			}()
			n++
			waitQueued(t, s, n)
		}
	}
	// The ui key has 24 waiting: its limit.
	var ref *Refused
	if _, err := s.Acquire(context.Background(), Ticket{Consumer: "ui/dee", Group: "ui", Model: "a"}); !errors.As(err, &ref) {
		t.Fatalf("a 25th request of the ui key: %v, want a refusal", err)
	}
	first.Done(Outcome{OK: true})
	count := map[string]int{}
	var order []string
	for range 12 {
		select {
		case gr := <-granted:
			order = append(order, gr.who)
			count[gr.who]++
			gr.g.Done(Outcome{OK: true})
		case <-time.After(5 * time.Second):
			t.Fatalf("stalled after %v", order)
		}
	}
	if count["api"] < 5 || count["api"] > 7 || count["ui/ann"] == 0 || count["ui/bob"] == 0 || count["ui/cy"] == 0 {
		t.Fatalf("first 12 dispatched: %v, want about 6 for api and the rest shared by ann, bob and cy", order)
	}
	for range 20 {
		(<-granted).g.Done(Outcome{OK: true})
	}
}
