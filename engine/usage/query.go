package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"corral/engine/store"
)

// The groupings of a Query.
const (
	ByKey   = "key"
	ByModel = "model"
	ByUser  = "user"
	ByDay   = "day"
)

// ErrInvalidQuery is the kind of the errors of a malformed Query.
var ErrInvalidQuery = errors.New("invalid usage query")

// Query asks for usage totals. Totals are kept by UTC day, so a query
// covers the whole days that overlap [Since, Until): the day of Since
// through the day of the last instant before Until. A zero bound is open.
type Query struct {
	Since, Until time.Time
	By           string // ByKey (the default when empty), ByModel, ByUser or ByDay
	Key          string // only this key's usage; empty: all keys
}

// Row is the total of one group.
type Row struct {
	Group            string        `json:"group"` // the key, model, user ("" for none) or day (YYYY-MM-DD)
	Requests         int64         `json:"requests"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	Errors           int64         `json:"errors"`
	Queued           time.Duration `json:"queued_ns"` // waited in corral's queue for an instance, summed; records from before the queue add none
}

// Query totals the stored daily totals and the records not yet written,
// so a request shows as soon as it is settled. Rows by day come in date
// order; others with the most tokens first, then by name. It never
// returns nil rows without an error.
func (m *Meter) Query(ctx context.Context, q Query) ([]Row, error) {
	pick, err := grouping(q.By)
	if err != nil {
		return nil, err
	}
	var from, to string
	if !q.Since.IsZero() {
		from = q.Since.UTC().Format(time.DateOnly)
	}
	if !q.Until.IsZero() {
		if !q.Until.After(q.Since) {
			return []Row{}, nil
		}
		to = q.Until.Add(-1).UTC().Format(time.DateOnly)
	}
	rows := map[string]*Row{}
	add := func(d store.UsageDay) {
		if q.Key != "" && d.Key != q.Key {
			return
		}
		g := pick(d)
		r := rows[g]
		if r == nil {
			r = &Row{Group: g}
			rows[g] = r
		}
		r.Requests += d.Requests
		r.PromptTokens += d.PromptTokens
		r.CompletionTokens += d.CompletionTokens
		r.Errors += d.Errors
		r.Queued += d.Queued
	}

	m.flushing.RLock()
	defer m.flushing.RUnlock()
	n := 0
	err = m.st.UsageDays(from, to, func(d store.UsageDay) error {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		add(d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("usage: query: %w", err)
	}
	m.bufMu.Lock()
	for _, r := range m.buf {
		day := r.Time.UTC().Format(time.DateOnly)
		if (from != "" && day < from) || (to != "" && day > to) {
			continue
		}
		d := store.UsageDay{Day: day, Key: r.Key, Model: r.Model, User: r.User, Requests: 1,
			PromptTokens: int64(r.PromptTokens), CompletionTokens: int64(r.CompletionTokens), Queued: r.Queued}
		if r.failed() {
			d.Errors = 1
		}
		add(d)
	}
	m.bufMu.Unlock()

	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	if q.By == ByDay {
		slices.SortFunc(out, func(a, b Row) int { return strings.Compare(a.Group, b.Group) })
	} else {
		slices.SortFunc(out, func(a, b Row) int {
			return cmp.Or(
				cmp.Compare(b.PromptTokens+b.CompletionTokens, a.PromptTokens+a.CompletionTokens),
				cmp.Compare(b.Requests, a.Requests),
				strings.Compare(a.Group, b.Group))
		})
	}
	return out, nil
}

// grouping returns what a Query's By groups by.
func grouping(by string) (func(store.UsageDay) string, error) {
	switch by {
	case ByKey, "":
		return func(d store.UsageDay) string { return d.Key }, nil
	case ByModel:
		return func(d store.UsageDay) string { return d.Model }, nil
	case ByUser:
		return func(d store.UsageDay) string { return d.User }, nil
	case ByDay:
		return func(d store.UsageDay) string { return d.Day }, nil
	}
	return nil, fmt.Errorf("%w: group by %q: use key, model, user or day", ErrInvalidQuery, by)
}

// ParseSince reads the start of a report: a date such as 2026-11-01 (the
// start of that UTC day), an RFC 3339 time, or a number of days such as
// 7d: today (UTC) and the 6 days before it. Empty is the zero time: no
// bound.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 100_000 {
			return time.Time{}, fmt.Errorf("%w: since %q: give a number of days from 1, such as 7d", ErrInvalidQuery, s)
		}
		t := now.UTC()
		return time.Date(t.Year(), t.Month(), t.Day()-(n-1), 0, 0, 0, 0, time.UTC), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: since %q: use a date such as 2026-11-01, a time such as 2026-11-01T15:04:05Z, or days such as 7d", ErrInvalidQuery, s)
}

// ParseUntil reads the end of a report: a date such as 2026-11-30, which
// is included (the bound is the next UTC midnight), or an RFC 3339 time.
// Empty is the zero time: no bound.
func ParseUntil(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: until %q: use a date such as 2026-11-30 (included) or a time such as 2026-11-30T15:04:05Z", ErrInvalidQuery, s)
}
