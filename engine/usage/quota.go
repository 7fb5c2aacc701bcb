package usage

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The limits a LimitError names.
const (
	LimitRequestsPerMinute = "requests per minute"
	LimitTokensPerMinute   = "tokens per minute"
	LimitTokensPerDay      = "tokens per day"
	LimitTokensPerMonth    = "tokens per month"
)

// LimitError refuses a request that would pass one of its key's limits.
// The gateway answers it with 429 and a Retry-After of RetryAfter().
type LimitError struct {
	Key   string        // the key's name
	Limit string        // which limit: LimitRequestsPerMinute, ...
	Max   int64         // the limit's value
	Used  int64         // what the window held, other requests' holds included
	Want  int64         // what this request would have added
	Wait  time.Duration // until the request would fit, if nothing else came
}

func (e *LimitError) Error() string {
	var b []byte
	b = fmt.Appendf(b, "%s limit of %d reached for key %s", e.Limit, e.Max, e.Key)
	if e.Used < e.Max && e.Want > 1 {
		b = fmt.Appendf(b, " (%d left, and this request may use up to %d: a lower max_tokens may fit)", e.Max-e.Used, e.Want)
	}
	if e.Limit == LimitTokensPerDay || e.Limit == LimitTokensPerMonth {
		b = fmt.Appendf(b, "; resets in %s", humanDuration(e.RetryAfter()))
	} else {
		b = fmt.Appendf(b, "; retry in %s", humanDuration(e.RetryAfter()))
	}
	return string(b)
}

// RetryAfter is how long the client should wait, in whole seconds,
// rounded up.
func (e *LimitError) RetryAfter() time.Duration {
	return max(time.Second, (e.Wait + time.Second - 1).Truncate(time.Second))
}

// humanDuration writes d as 45s, 12m30s, 3h12m or 20d4h.
func humanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s >= 48*3600:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	case s >= 3600:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	}
	return fmt.Sprintf("%ds", s)
}

// window is the length, in one-second buckets, of the minute windows.
const window = 60

// second is one bucket of the minute windows.
type second struct {
	at     int64 // the Unix second it counts; a bucket of another second is stale
	reqs   int64
	tokens int64
}

// period is a day or month window: its number and the tokens in it.
type period struct{ id, tokens int64 }

// account is one key's windows.
type account struct {
	mu    sync.Mutex
	ring  [window]second
	day   period
	month period
}

func dayOf(t time.Time) int64 { return t.Unix() / 86400 }

func monthOf(t time.Time) int64 {
	t = t.UTC()
	return int64(t.Year())*12 + int64(t.Month()) - 1
}

// roll starts new day and month windows when the calendar has moved on.
func (a *account) roll(day, month int64) {
	if a.day.id != day {
		a.day = period{id: day}
	}
	if a.month.id != month {
		a.month = period{id: month}
	}
}

// minute sums the minute windows ending at Unix second sec.
func (a *account) minute(sec int64) (reqs, tokens int64) {
	for i := range a.ring {
		if b := &a.ring[i]; b.at > sec-window && b.at <= sec {
			reqs += b.reqs
			tokens += b.tokens
		}
	}
	return reqs, tokens
}

// wait is how long from now until the buckets that leave the minute
// window have freed excess of what field counts.
func (a *account) wait(now time.Time, excess int64, field func(*second) int64) time.Duration {
	sec := now.Unix()
	for s := sec - window + 1; s <= sec; s++ {
		b := &a.ring[s%window]
		if b.at != s {
			continue
		}
		if excess -= field(b); excess <= 0 {
			return time.Unix(s+window, 0).Sub(now)
		}
	}
	return window * time.Second
}

func requestsOf(b *second) int64 { return b.reqs }
func tokensOf(b *second) int64   { return b.tokens }

// Reservation is one request's hold on its key's windows. Settle or
// Release ends it; whichever comes first counts, later calls do nothing.
// A Reservation dropped without either is released when the garbage
// collector finds it, with a warning in the log, so a forgotten one
// does not hold tokens for good; callers should still defer Release.
type Reservation struct {
	h *hold
}

// hold is a Reservation's state, apart from it so that the cleanup of a
// dropped Reservation can release it.
type hold struct {
	m          *Meter
	a          *account
	key, model string
	at         time.Time
	sec        int64 // the minute bucket
	day, month int64 // the day and month windows
	minute     int64 // tokens added to the minute bucket
	dayTokens  int64 // tokens added to the day window
	monthTok   int64 // tokens added to the month window
	done       atomic.Bool
}

// Reserve counts a request of key for model against the key's requests
// per minute and holds maxTokens (DefaultReserve or the Meter's default
// when maxTokens <= 0) against its token windows. When that would pass a
// limit it returns a *LimitError naming the limit that frees up last,
// and holds nothing. It touches no disk.
func (m *Meter) Reserve(ctx context.Context, key, model string, maxTokens int) (*Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := int64(maxTokens)
	if want <= 0 {
		want = m.defaultReserve
	}
	var lim Limits
	if m.limits != nil {
		lim, _ = m.limits.Limits(key)
	}
	now := m.now()
	sec, day, month := now.Unix(), dayOf(now), monthOf(now)
	h := &hold{m: m, key: key, model: model, at: now.UTC(), sec: sec, day: day, month: month,
		minute: capAt(want, lim.TokensPerMinute), dayTokens: capAt(want, lim.TokensPerDay), monthTok: capAt(want, lim.TokensPerMonth)}
	a := m.account(key)
	h.a = a

	a.mu.Lock()
	a.roll(day, month)
	var reqs, tokens int64
	if lim.RequestsPerMinute > 0 || lim.TokensPerMinute > 0 {
		// A scan of the minute's buckets, for the limits that need it:
		// Reserve is on the way of every request.
		reqs, tokens = a.minute(sec)
	}
	var worst *LimitError
	over := func(limit string, max, used, want int64, wait time.Duration) {
		if worst == nil || wait > worst.Wait {
			worst = &LimitError{Key: key, Limit: limit, Max: max, Used: used, Want: want, Wait: wait}
		}
	}
	if l := lim.RequestsPerMinute; l > 0 && reqs+1 > l {
		over(LimitRequestsPerMinute, l, reqs, 1, a.wait(now, reqs+1-l, requestsOf))
	}
	if l := lim.TokensPerMinute; l > 0 && tokens+h.minute > l {
		over(LimitTokensPerMinute, l, tokens, h.minute, a.wait(now, tokens+h.minute-l, tokensOf))
	}
	if l := lim.TokensPerDay; l > 0 && a.day.tokens+h.dayTokens > l {
		over(LimitTokensPerDay, l, a.day.tokens, h.dayTokens, time.Unix((day+1)*86400, 0).Sub(now))
	}
	if l := lim.TokensPerMonth; l > 0 && a.month.tokens+h.monthTok > l {
		t := now.UTC()
		next := time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		over(LimitTokensPerMonth, l, a.month.tokens, h.monthTok, next.Sub(now))
	}
	if worst == nil {
		b := &a.ring[sec%window]
		if b.at != sec {
			*b = second{at: sec}
		}
		b.reqs++
		b.tokens += h.minute
		a.day.tokens += h.dayTokens
		a.month.tokens += h.monthTok
	}
	a.mu.Unlock()

	if worst != nil {
		return nil, worst
	}
	r := &Reservation{h: h}
	runtime.AddCleanup(r, (*hold).dropped, h)
	return r, nil
}

// capAt is want, but no more than limit when there is one.
func capAt(want, limit int64) int64 {
	if limit > 0 {
		return min(want, limit)
	}
	return want
}

// Settle ends the reservation with the request's real use: the windows
// count rec's prompt and completion tokens instead of the hold (the
// request itself stays counted), and rec joins the records, under the
// reservation's key. A second call, or one after Release, does nothing.
func (r *Reservation) Settle(rec Record) {
	h := r.h
	if h.done.CompareAndSwap(false, true) {
		used := int64(max(rec.PromptTokens, 0)) + int64(max(rec.CompletionTokens, 0))
		h.adjust(used, false)
		rec.Key = h.key
		if rec.Model == "" {
			rec.Model = h.model
		}
		if rec.Time.IsZero() {
			rec.Time = h.at
		}
		rec.PromptTokens = max(rec.PromptTokens, 0)
		rec.CompletionTokens = max(rec.CompletionTokens, 0)
		h.m.add(rec)
	}
	runtime.KeepAlive(r)
}

// Release ends the reservation as if the request had never been: for one
// that reached no upstream, or a handler that panicked. It records
// nothing. After Settle, or a first Release, it does nothing, so it is
// safe to defer.
func (r *Reservation) Release() {
	if r.h.done.CompareAndSwap(false, true) {
		r.h.adjust(0, true)
	}
	runtime.KeepAlive(r)
}

// dropped releases the hold of a Reservation that was garbage collected
// without Settle or Release.
func (h *hold) dropped() {
	if h.done.CompareAndSwap(false, true) {
		h.adjust(0, true)
		h.m.log.Warn("usage: a reservation was dropped without Settle or Release; released it", "key", h.key, "model", h.model, "reserved", h.at)
	}
}

// adjust replaces the hold's tokens by used in the windows that are still
// the hold's own, and with undo takes the request off the minute window.
func (h *hold) adjust(used int64, undo bool) {
	a := h.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := &a.ring[h.sec%window]; b.at == h.sec {
		b.tokens = max(0, b.tokens+used-h.minute)
		if undo {
			b.reqs = max(0, b.reqs-1)
		}
	}
	if a.day.id == h.day {
		a.day.tokens = max(0, a.day.tokens+used-h.dayTokens)
	}
	if a.month.id == h.month {
		a.month.tokens = max(0, a.month.tokens+used-h.monthTok)
	}
}
