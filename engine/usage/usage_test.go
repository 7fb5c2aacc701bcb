package usage

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corral/engine/keys"
	"corral/engine/store"
)

var _ LimitSource = (*keys.Manager)(nil)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// t0 is a Sunday morning in the middle of a month.
var t0 = time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)

func newClock() *clock { return &clock{t: t0} }

// limitMap is a LimitSource for tests.
type limitMap map[string]Limits

func (l limitMap) Limits(key string) (Limits, bool) {
	v, ok := l[key]
	return v, ok
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newMeter(t testing.TB, st *store.Store, limits LimitSource, opts ...Option) *Meter {
	t.Helper()
	m, err := New(st, limits, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func reserve(t *testing.T, m *Meter, key string, tokens int) *Reservation {
	t.Helper()
	r, err := m.Reserve(context.Background(), key, "llama3.2", tokens)
	if err != nil {
		t.Fatalf("reserve %d tokens for %s: %v", tokens, key, err)
	}
	return r
}

func storedRecords(t *testing.T, st *store.Store) []store.UsageRecord {
	t.Helper()
	var out []store.UsageRecord
	if err := st.UsageRecords(time.Time{}, time.Time{}, func(r store.UsageRecord) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReserveWindows walks each window through filling up, refusing with
// the right wait, and freeing up again, on a clock that never sleeps.
func TestReserveWindows(t *testing.T) {
	type step struct {
		at     time.Duration // clock moves by this before the reserve
		tokens int           // 0: the default hold
		limit  string        // "": granted; else the limit named by the refusal
		wait   time.Duration // of the refusal
	}
	cases := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{"requests per minute, fixed start", Limits{RequestsPerMinute: 2}, []step{
			{0, 1, "", 0},
			{0, 1, "", 0},
			{0, 1, LimitRequestsPerMinute, time.Minute},
			{59 * time.Second, 1, LimitRequestsPerMinute, time.Second},
			{time.Second, 1, "", 0}, // both earlier requests left the window
			{0, 1, "", 0},
			{0, 1, LimitRequestsPerMinute, time.Minute},
		}},
		{"requests per minute slide", Limits{RequestsPerMinute: 2}, []step{
			{0, 1, "", 0},
			{30 * time.Second, 1, "", 0},
			{29*time.Second + 500*time.Millisecond, 1, LimitRequestsPerMinute, 500 * time.Millisecond},
			{500 * time.Millisecond, 1, "", 0}, // the first left; the second still counts
			{0, 1, LimitRequestsPerMinute, 30 * time.Second},
		}},
		{"tokens per minute", Limits{TokensPerMinute: 1000}, []step{
			{0, 600, "", 0},
			{10 * time.Second, 600, LimitTokensPerMinute, 50 * time.Second},
			{0, 400, "", 0},
			{0, 1, LimitTokensPerMinute, 50 * time.Second},
			{50 * time.Second, 600, "", 0}, // the 600 left; the 400 counts
			{0, 1, LimitTokensPerMinute, 10 * time.Second},
			{10 * time.Second, 400, "", 0}, // the first 400 left too
			{0, 1, LimitTokensPerMinute, 50 * time.Second},
		}},
		{"a hold over the limit is cut to it", Limits{TokensPerMinute: 1000}, []step{
			{0, 0, "", 0}, // DefaultReserve, 4096, held as 1000
			{0, 1, LimitTokensPerMinute, time.Minute},
			{time.Minute, 5000, "", 0},
		}},
		{"tokens per day, UTC calendar day", Limits{TokensPerDay: 1000}, []step{
			{0, 700, "", 0},
			{0, 700, LimitTokensPerDay, 14 * time.Hour}, // t0 is 10:00 UTC
			{13*time.Hour + 59*time.Minute, 300, "", 0},
			{0, 1, LimitTokensPerDay, time.Minute},
			{time.Minute, 1000, "", 0}, // midnight: a new day
		}},
		{"tokens per month, UTC calendar month", Limits{TokensPerMonth: 1000}, []step{
			{0, 1000, "", 0},
			{0, 1, LimitTokensPerMonth, 15*24*time.Hour + 14*time.Hour}, // to 2026-12-01
			{15 * 24 * time.Hour, 1, LimitTokensPerMonth, 14 * time.Hour},
			{14 * time.Hour, 1000, "", 0},
		}},
		{"the refusal names the limit that frees last", Limits{RequestsPerMinute: 1, TokensPerDay: 150}, []step{
			{0, 100, "", 0},
			{0, 100, LimitTokensPerDay, 14 * time.Hour},
			{time.Minute, 50, "", 0},
			{0, 1, LimitTokensPerDay, 14*time.Hour - time.Minute},
		}},
		{"no limits", Limits{}, []step{
			{0, 1 << 30, "", 0},
			{0, 1 << 30, "", 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			m := newMeter(t, openStore(t), limitMap{"alice": tc.limits}, WithClock(clk.Now))
			for i, s := range tc.steps {
				clk.Add(s.at)
				_, err := m.Reserve(context.Background(), "alice", "llama3.2", s.tokens)
				if s.limit == "" {
					if err != nil {
						t.Fatalf("step %d: %v; want granted", i, err)
					}
					continue
				}
				var le *LimitError
				if !errors.As(err, &le) {
					t.Fatalf("step %d: err = %v; want a *LimitError", i, err)
				}
				if le.Limit != s.limit || le.Wait != s.wait || le.Key != "alice" {
					t.Fatalf("step %d: refused by %q, wait %s; want %q, wait %s (%v)", i, le.Limit, le.Wait, s.limit, s.wait, err)
				}
			}
			// Another key has windows of its own.
			if _, err := m.Reserve(context.Background(), "bob", "llama3.2", 10); err != nil {
				t.Fatalf("another key: %v", err)
			}
		})
	}
}

func TestLimitError(t *testing.T) {
	cases := []struct {
		e     LimitError
		msg   string
		retry time.Duration
	}{
		{
			LimitError{Key: "alice", Limit: LimitTokensPerDay, Max: 100000, Used: 100000, Want: 4096, Wait: 3*time.Hour + 12*time.Minute},
			"tokens per day limit of 100000 reached for key alice; resets in 3h12m", 3*time.Hour + 12*time.Minute,
		},
		{
			LimitError{Key: "alice", Limit: LimitTokensPerDay, Max: 100000, Used: 99000, Want: 4096, Wait: 90 * time.Second},
			"tokens per day limit of 100000 reached for key alice (1000 left, and this request may use up to 4096: a lower max_tokens may fit); resets in 1m30s", 90 * time.Second,
		},
		{
			LimitError{Key: "ci", Limit: LimitRequestsPerMinute, Max: 60, Used: 60, Want: 1, Wait: 12*time.Second + time.Millisecond},
			"requests per minute limit of 60 reached for key ci; retry in 13s", 13 * time.Second,
		},
		{
			LimitError{Key: "ci", Limit: LimitTokensPerMonth, Max: 5, Used: 5, Want: 1, Wait: 20*24*time.Hour + 4*time.Hour + 59*time.Minute},
			"tokens per month limit of 5 reached for key ci; resets in 20d4h", 20*24*time.Hour + 4*time.Hour + 59*time.Minute,
		},
		{
			LimitError{Key: "ci", Limit: LimitTokensPerMinute, Max: 5, Used: 5, Want: 1, Wait: 200 * time.Millisecond},
			"tokens per minute limit of 5 reached for key ci; retry in 1s", time.Second,
		},
	}
	for _, tc := range cases {
		var err error = &tc.e
		if err.Error() != tc.msg {
			t.Errorf("message = %q\n         want %q", err, tc.msg)
		}
		// The gateway finds the wait by duck typing.
		var ra interface{ RetryAfter() time.Duration }
		if !errors.As(err, &ra) || ra.RetryAfter() != tc.retry {
			t.Errorf("RetryAfter of %q = %v, want %v", tc.msg, tc.e.RetryAfter(), tc.retry)
		}
	}
}

// TestConcurrentReserve sends 50 concurrent requests against a quota of
// 10 requests' worth of tokens: the tokens granted never exceed it (run
// with -race).
func TestConcurrentReserve(t *testing.T) {
	const (
		requests = 50
		each     = 100
		quota    = 10 * each
	)
	for _, tc := range []struct {
		name   string
		limits Limits
		limit  string
	}{
		{"tokens per minute", Limits{TokensPerMinute: quota}, LimitTokensPerMinute},
		{"tokens per day", Limits{TokensPerDay: quota}, LimitTokensPerDay},
		{"tokens per month", Limits{TokensPerMonth: quota}, LimitTokensPerMonth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeter(t, openStore(t), limitMap{"shared": tc.limits}, WithClock(newClock().Now))
			var granted, refused atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range requests {
				wg.Go(func() {
					<-start
					_, err := m.Reserve(context.Background(), "shared", "llama3.2", each)
					var le *LimitError
					switch {
					case err == nil:
						granted.Add(each)
					case errors.As(err, &le) && le.Limit == tc.limit:
						refused.Add(1)
					default:
						t.Errorf("reserve: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if granted.Load() > quota {
				t.Fatalf("granted %d tokens against a quota of %d", granted.Load(), quota)
			}
			if granted.Load() != quota || refused.Load() != requests-quota/each {
				t.Fatalf("granted %d tokens, refused %d requests; want %d and %d", granted.Load(), refused.Load(), quota, requests-quota/each)
			}
		})
	}
}

// TestConcurrentReserveSettle mixes reserves and settles with random real
// counts, and checks the windows end at exactly what was settled.
func TestConcurrentReserveSettle(t *testing.T) {
	const quota = 5000
	m := newMeter(t, openStore(t), limitMap{"k": {TokensPerDay: quota}}, WithClock(newClock().Now))
	var settled atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r, err := m.Reserve(context.Background(), "k", "m", 200)
			if err != nil {
				return
			}
			used := i % 7 * 30 // less than the hold
			settled.Add(int64(used))
			r.Settle(Record{PromptTokens: used / 2, CompletionTokens: used - used/2, Status: 200})
		})
	}
	wg.Wait()
	a := m.account("k")
	if a.day.tokens != settled.Load() || a.month.tokens != settled.Load() {
		t.Fatalf("day window %d, month %d; settled %d", a.day.tokens, a.month.tokens, settled.Load())
	}
	if a.day.tokens > quota {
		t.Fatalf("day window %d over the quota %d", a.day.tokens, quota)
	}
}

// TestSettleAdjusts checks that the real count replaces the hold, when it
// is less and when it is more.
func TestSettleAdjusts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		limits Limits
	}{
		{"tokens per minute", Limits{TokensPerMinute: 1000}},
		{"tokens per day", Limits{TokensPerDay: 1000}},
		{"tokens per month", Limits{TokensPerMonth: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeter(t, openStore(t), limitMap{"alice": tc.limits}, WithClock(newClock().Now))
			r := reserve(t, m, "alice", 800)
			if _, err := m.Reserve(ctx, "alice", "llama3.2", 300); err == nil {
				t.Fatal("300 more granted while 800 of 1000 are held")
			}
			// Less than held: the rest is free again.
			r.Settle(Record{PromptTokens: 50, CompletionTokens: 50, Status: 200})
			r2 := reserve(t, m, "alice", 900)
			// More than held: the excess counts too.
			r2.Settle(Record{PromptTokens: 400, CompletionTokens: 600, Status: 200})
			_, err := m.Reserve(ctx, "alice", "llama3.2", 1)
			var le *LimitError
			if !errors.As(err, &le) || le.Used != 1100 {
				t.Fatalf("after settling 100 and 1000: %v; want a refusal with 1100 used", err)
			}
		})
	}
}

func TestReleaseAndIdempotence(t *testing.T) {
	ctx := context.Background()
	m := newMeter(t, openStore(t), limitMap{"alice": {RequestsPerMinute: 2, TokensPerDay: 1000}}, WithClock(newClock().Now))
	held := func() (reqs, day int64) {
		a := m.account("alice")
		a.mu.Lock()
		defer a.mu.Unlock()
		reqs, _ = a.minute(t0.Unix())
		return reqs, a.day.tokens
	}

	r := reserve(t, m, "alice", 1000)
	r.Release()
	if reqs, day := held(); reqs != 0 || day != 0 {
		t.Fatalf("after release: %d requests, %d tokens held; want none", reqs, day)
	}
	r.Release()
	r.Settle(Record{PromptTokens: 5000, Status: 200}) // after Release: nothing
	if reqs, day := held(); reqs != 0 || day != 0 {
		t.Fatalf("a settle after release counted: %d requests, %d tokens", reqs, day)
	}

	r = reserve(t, m, "alice", 1000)
	r.Settle(Record{PromptTokens: 10, CompletionTokens: 20, Status: 200})
	r.Settle(Record{PromptTokens: 500, Status: 200}) // a second settle: nothing
	r.Release()                                      // after Settle: nothing
	if reqs, day := held(); reqs != 1 || day != 30 {
		t.Fatalf("after settle: %d requests, %d tokens held; want 1 and 30", reqs, day)
	}
	rows, err := m.Query(ctx, Query{})
	if err != nil || len(rows) != 1 || rows[0].Requests != 1 || rows[0].PromptTokens != 10 || rows[0].CompletionTokens != 20 {
		t.Fatalf("rows = %+v, %v; want the one settled request", rows, err)
	}
}

// TestDroppedReservation loses a reservation without Settle or Release:
// the garbage collector's cleanup gives its tokens back.
func TestDroppedReservation(t *testing.T) {
	m := newMeter(t, openStore(t), limitMap{"alice": {TokensPerDay: 1000}}, WithClock(newClock().Now))
	func() {
		if _, err := m.Reserve(context.Background(), "alice", "llama3.2", 1000); err != nil {
			t.Fatal(err)
		}
	}()
	a := m.account("alice")
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		a.mu.Lock()
		day := a.day.tokens
		a.mu.Unlock()
		if day == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropped reservation still holds %d tokens", day)
		}
		time.Sleep(10 * time.Millisecond) // the cleanup runs on its own goroutine
	}
	reserve(t, m, "alice", 1000)
}

// TestRestartKeepsDayAndMonth stores usage, then starts a new Meter on
// the same store: the day and month windows go on from the totals.
func TestRestartKeepsDayAndMonth(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	limits := limitMap{"alice": {TokensPerDay: 1000, TokensPerMonth: 3100}}
	m := newMeter(t, st, limits, WithClock(clk.Now))
	settle := func(at time.Time, tokens int) {
		clk.Set(at)
		reserve(t, m, "alice", tokens).Settle(Record{PromptTokens: tokens, Status: 200})
	}
	settle(time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC), 900) // last month: counts for neither
	settle(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), 1000)
	settle(t0.Add(-24*time.Hour), 1000)
	settle(t0, 600)
	if err := m.flush(); err != nil {
		t.Fatal(err)
	}

	clk.Set(t0.Add(time.Hour))
	m2 := newMeter(t, st, limits, WithClock(clk.Now))
	_, err := m2.Reserve(context.Background(), "alice", "llama3.2", 401)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitTokensPerDay || le.Used != 600 {
		t.Fatalf("after restart: %v; want tokens per day with 600 used", err)
	}
	reserve(t, m2, "alice", 400)
	// Tomorrow the day is new but the month holds 3000 of 3100.
	clk.Set(t0.Add(24 * time.Hour))
	_, err = m2.Reserve(context.Background(), "alice", "llama3.2", 101)
	if !errors.As(err, &le) || le.Limit != LimitTokensPerMonth || le.Used != 3000 {
		t.Fatalf("next day: %v; want tokens per month with 3000 used", err)
	}
}

// TestSettleAfterMidnight settles a request reserved before midnight:
// its tokens belong to the day it began, not the new one.
func TestSettleAfterMidnight(t *testing.T) {
	clk := newClock()
	clk.Set(time.Date(2026, 11, 15, 23, 59, 59, 0, time.UTC))
	m := newMeter(t, openStore(t), limitMap{"alice": {TokensPerDay: 1000}}, WithClock(clk.Now))
	r := reserve(t, m, "alice", 1000)
	clk.Add(2 * time.Second)
	r.Settle(Record{PromptTokens: 800, CompletionTokens: 200, Status: 200})
	reserve(t, m, "alice", 1000) // the new day is empty
	rows, err := m.Query(context.Background(), Query{By: ByDay})
	if err != nil || len(rows) != 1 || rows[0].Group != "2026-11-15" || rows[0].PromptTokens != 800 {
		t.Fatalf("rows = %+v, %v", rows, err)
	}
}

// TestBatching checks that settling writes nothing until a flush, that a
// query sees buffered and flushed records once each, and that Run writes
// on exit.
func TestBatching(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	m := newMeter(t, st, nil, WithClock(clk.Now), WithFlushInterval(time.Hour))
	ctx := context.Background()
	for i := range 3 {
		reserve(t, m, "alice", 100).Settle(Record{User: "u1", Instance: "corral-ollama-0", Route: "/v1/chat/completions",
			PromptTokens: 10, CompletionTokens: i, TTFT: time.Millisecond, Queued: time.Duration(i) * 100 * time.Millisecond, Duration: time.Second, Status: 200, Outcome: OutcomeOK})
	}
	if got := storedRecords(t, st); len(got) != 0 {
		t.Fatalf("settle wrote %d records before a flush", len(got))
	}
	want := []Row{{Group: "alice", Requests: 3, PromptTokens: 30, CompletionTokens: 3, Queued: 300 * time.Millisecond}}
	check := func(when string) {
		t.Helper()
		rows, err := m.Query(ctx, Query{})
		if err != nil || fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Fatalf("%s: rows = %+v, %v; want %+v", when, rows, err, want)
		}
	}
	check("before flush")
	if err := m.flush(); err != nil {
		t.Fatal(err)
	}
	check("after flush")
	recs := storedRecords(t, st)
	if len(recs) != 3 || recs[2].CompletionTokens != 2 || recs[0].Key != "alice" || recs[0].Model != "llama3.2" || recs[0].User != "u1" ||
		recs[0].Instance != "corral-ollama-0" || recs[0].TTFT != time.Millisecond || recs[2].Queued != 200*time.Millisecond || !recs[0].Time.Equal(t0) {
		t.Fatalf("stored records = %+v", recs)
	}

	// Run writes what is left when it stops.
	reserve(t, m, "alice", 100).Settle(Record{PromptTokens: 1, Status: 500, Outcome: "upstream_error"})
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	if got := storedRecords(t, st); len(got) != 4 || got[3].Status != 500 {
		t.Fatalf("after Run: %+v", got)
	}
	want = []Row{{Group: "alice", Requests: 4, PromptTokens: 31, CompletionTokens: 3, Errors: 1, Queued: 300 * time.Millisecond}}
	check("after Run")

	// A request that ends after Run stopped (drained at shutdown) is
	// saved by the daemon's last Flush.
	reserve(t, m, "alice", 100).Settle(Record{PromptTokens: 2, CompletionTokens: 5, Status: 200, Outcome: OutcomeOK})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := storedRecords(t, st); len(got) != 5 || got[4].CompletionTokens != 5 {
		t.Fatalf("after the last Flush: %+v", got)
	}
}

// TestRunFlushesEveryInterval lets Run's ticker do the writing.
func TestRunFlushesEveryInterval(t *testing.T) {
	st := openStore(t)
	m := newMeter(t, st, nil, WithFlushInterval(5*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	reserve(t, m, "alice", 1).Settle(Record{PromptTokens: 1, Status: 200})
	deadline := time.Now().Add(5 * time.Second)
	for len(storedRecords(t, st)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not write the record")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFlushFailureKeepsRecords closes the store under the Meter: the batch
// stays buffered for the next try.
func TestFlushFailureKeepsRecords(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := newMeter(t, st, nil, WithClock(newClock().Now))
	reserve(t, m, "alice", 1).Settle(Record{PromptTokens: 1, Status: 200})
	reserve(t, m, "alice", 1).Settle(Record{PromptTokens: 2, Status: 200})
	st.Close()
	if err := m.flush(); err == nil || !strings.Contains(err.Error(), "save 2 records") {
		t.Fatalf("flush to a closed store: %v", err)
	}
	m.bufMu.Lock()
	n := len(m.buf)
	m.bufMu.Unlock()
	if n != 2 {
		t.Fatalf("%d records buffered after a failed flush, want 2", n)
	}

	// A full buffer drops new records rather than growing.
	m.maxBuffer = 3
	for range 3 {
		reserve(t, m, "alice", 1).Settle(Record{Status: 200})
	}
	m.bufMu.Lock()
	n, dropped := len(m.buf), m.dropped
	m.bufMu.Unlock()
	if n != 3 || dropped != 2 {
		t.Fatalf("buffer %d, dropped %d; want 3 and 2", n, dropped)
	}
}

func TestPrune(t *testing.T) {
	cases := []struct {
		name       string
		opts       []Option
		keptDays   string
		keptRecent int // raw records kept, of those 1, 10, 29, 31 and 60 days old
	}{
		{"defaults", nil, "2025-10-11 2025-12-01 2026-10-20 2026-11-02 2026-11-15", 3},
		{"a short retention keeps this month", []Option{WithRetention(7 * 24 * time.Hour), WithRawRetention(2 * 24 * time.Hour)}, "2026-11-02 2026-11-15", 1},
		{"a long raw retention", []Option{WithRawRetention(90 * 24 * time.Hour)}, "2025-10-11 2025-12-01 2026-10-20 2026-11-02 2026-11-15", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			var days []store.UsageDay
			for _, d := range []string{"2025-10-01", "2025-10-10", "2025-10-11", "2025-12-01", "2026-10-20", "2026-11-02", "2026-11-15"} {
				days = append(days, store.UsageDay{Day: d, Key: "k", Model: "m", Requests: 1})
			}
			var recs []store.UsageRecord
			for _, age := range []int{1, 10, 29, 31, 60} {
				recs = append(recs, store.UsageRecord{Time: t0.AddDate(0, 0, -age), Key: "k", Status: age})
			}
			if err := st.AddUsage(recs, days); err != nil {
				t.Fatal(err)
			}
			// t0 - 400 days is 2025-10-11.
			m := newMeter(t, st, nil, append([]Option{WithClock(newClock().Now)}, tc.opts...)...)
			if err := m.prune(); err != nil {
				t.Fatal(err)
			}
			var kept []string
			st.UsageDays("", "", func(d store.UsageDay) error { kept = append(kept, d.Day); return nil })
			if got := strings.Join(kept, " "); got != tc.keptDays {
				t.Errorf("days kept: %s\n           want %s", got, tc.keptDays)
			}
			if got := storedRecords(t, st); len(got) != tc.keptRecent {
				t.Errorf("%d raw records kept, want %d: %+v", len(got), tc.keptRecent, got)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	m := newMeter(t, st, nil, WithClock(clk.Now))
	type req struct {
		day                 int // days before t0
		key, model, user    string
		prompt, completion  int
		status              int
		outcome             string
		flushedBeforeLatest bool
	}
	reqs := []req{
		{day: 2, key: "alice", model: "llama3.2", user: "ann", prompt: 10, completion: 100, status: 200},
		{day: 2, key: "alice", model: "qwen3:8b", user: "ann", prompt: 20, completion: 200, status: 200},
		{day: 1, key: "alice", model: "llama3.2", user: "", prompt: 1, completion: 2, status: 200, outcome: "canceled"},
		{day: 1, key: "bob", model: "llama3.2", user: "ben", prompt: 1000, completion: 0, status: 500},
		{day: 0, key: "bob", model: "qwen3:8b", user: "ann", prompt: 5, completion: 5, status: 200},
	}
	for i, r := range reqs {
		clk.Set(t0.AddDate(0, 0, -r.day))
		res, err := m.Reserve(context.Background(), r.key, r.model, 10)
		if err != nil {
			t.Fatal(err)
		}
		res.Settle(Record{User: r.user, PromptTokens: r.prompt, CompletionTokens: r.completion, Status: r.status, Outcome: r.outcome})
		if i == 3 { // the last one stays in the buffer
			if err := m.flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Set(t0)
	day := func(n int) time.Time { return time.Date(2026, 11, 15-n, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		q    Query
		want string // rows as group:requests/prompt/completion/errors
	}{
		{"by key", Query{By: ByKey}, "bob:2/1005/5/1 alice:3/31/302/1"},
		{"default is by key", Query{}, "bob:2/1005/5/1 alice:3/31/302/1"},
		{"by model", Query{By: ByModel}, "llama3.2:3/1011/102/2 qwen3:8b:2/25/205/0"},
		{"by user", Query{By: ByUser}, "ben:1/1000/0/1 ann:3/35/305/0 :1/1/2/1"},
		{"by day", Query{By: ByDay}, "2026-11-13:2/30/300/0 2026-11-14:2/1001/2/2 2026-11-15:1/5/5/0"},
		{"one key", Query{By: ByModel, Key: "alice"}, "qwen3:8b:1/20/200/0 llama3.2:2/11/102/1"},
		{"unknown key", Query{Key: "carol"}, ""},
		{"since a day", Query{By: ByDay, Since: day(1)}, "2026-11-14:2/1001/2/2 2026-11-15:1/5/5/0"},
		{"since within a day counts the whole day", Query{By: ByDay, Since: day(1).Add(23 * time.Hour)}, "2026-11-14:2/1001/2/2 2026-11-15:1/5/5/0"},
		{"until is exclusive", Query{By: ByDay, Until: day(1)}, "2026-11-13:2/30/300/0"},
		{"until within a day counts the whole day", Query{By: ByDay, Until: day(1).Add(time.Minute)}, "2026-11-13:2/30/300/0 2026-11-14:2/1001/2/2"},
		{"one day", Query{By: ByDay, Since: day(0), Until: day(-1)}, "2026-11-15:1/5/5/0"},
		{"until before since", Query{Since: day(0), Until: day(1)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := m.Query(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if rows == nil {
				t.Fatal("nil rows")
			}
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s:%d/%d/%d/%d", r.Group, r.Requests, r.PromptTokens, r.CompletionTokens, r.Errors))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("rows = %s\n  want %s", g, tc.want)
			}
		})
	}
	if _, err := m.Query(context.Background(), Query{By: "instance"}); !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), "key, model, user or day") {
		t.Fatalf("bad by: %v", err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Reserve(canceled, "alice", "m", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("reserve with a canceled context: %v", err)
	}
}

func TestParseBounds(t *testing.T) {
	now := time.Date(2026, 11, 15, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		in       string
		until    bool
		want     time.Time
		wantFail bool
	}{
		{"", false, time.Time{}, false},
		{"1d", false, time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC), false},
		{"7d", false, time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC), false},
		{"30d", false, time.Date(2026, 10, 17, 0, 0, 0, 0, time.UTC), false},
		{"2026-11-01", false, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-11-01T15:04:05+02:00", false, time.Date(2026, 11, 1, 13, 4, 5, 0, time.UTC), false},
		{"0d", false, time.Time{}, true},
		{"-3d", false, time.Time{}, true},
		{"d", false, time.Time{}, true},
		{"7", false, time.Time{}, true},
		{"yesterday", false, time.Time{}, true},
		{"2026-13-01", false, time.Time{}, true},
		{"", true, time.Time{}, false},
		{"2026-11-30", true, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-11-30T12:00:00Z", true, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), false},
		{"7d", true, time.Time{}, true},
		{"30/11/2026", true, time.Time{}, true},
	}
	for _, tc := range cases {
		var got time.Time
		var err error
		if tc.until {
			got, err = ParseUntil(tc.in)
		} else {
			got, err = ParseSince(tc.in, now)
		}
		if tc.wantFail {
			if err == nil || !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("parse %q (until %v) = %v, %v; want an invalid-query error naming it", tc.in, tc.until, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parse %q (until %v) = %v, %v; want %v", tc.in, tc.until, got, err, tc.want)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	st := openStore(t)
	_, err := New(st, nil, WithFlushInterval(0), WithRetention(-time.Hour), WithDefaultReserve(0))
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"flush interval", "retention -1h0m0s", "default reserve"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

// TestNamesCleaned keeps NUL bytes and overlong names out of the store,
// which would otherwise refuse the whole batch.
func TestNamesCleaned(t *testing.T) {
	st := openStore(t)
	m := newMeter(t, st, nil, WithClock(newClock().Now))
	reserve(t, m, "alice", 1).Settle(Record{User: "a\x00b" + strings.Repeat("é", 200), Model: "m\x00", Status: 200})
	if err := m.flush(); err != nil {
		t.Fatal(err)
	}
	recs := storedRecords(t, st)
	if len(recs) != 1 || recs[0].Model != "m" || !strings.HasPrefix(recs[0].User, "abé") || len(recs[0].User) > maxName || strings.ContainsRune(recs[0].User, '\uFFFD') {
		t.Fatalf("records = %+v", recs)
	}
}

// TestKeysManagerLimits runs the Meter on the real key manager: a limit
// set there applies from the next request.
func TestKeysManagerLimits(t *testing.T) {
	st := openStore(t)
	km, err := keys.New(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := km.Create(ctx, keys.CreateOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	m := newMeter(t, st, km, WithClock(newClock().Now))
	reserve(t, m, "alice", 100)
	if _, err := km.SetLimits(ctx, "alice", keys.Limits{RequestsPerMinute: 1}); err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	if _, err := m.Reserve(ctx, "alice", "llama3.2", 1); !errors.As(err, &le) || le.Limit != LimitRequestsPerMinute {
		t.Fatalf("after setting 1 request per minute: %v", err)
	}
	reserve(t, m, "nobody", 1) // a key the manager does not know has no limits
}

func BenchmarkReserveSettle(b *testing.B) {
	m := newMeter(b, openStore(b), limitMap{"k": {RequestsPerMinute: 1 << 40, TokensPerMinute: 1 << 50, TokensPerDay: 1 << 50, TokensPerMonth: 1 << 50}})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := m.Reserve(ctx, "k", "llama3.2", 512)
			if err != nil {
				b.Fatal(err)
			}
			r.Settle(Record{PromptTokens: 10, CompletionTokens: 100, Status: 200})
		}
	})
}
