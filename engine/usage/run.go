package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"corral/engine/store"
)

// Run writes the recorded requests to the store every flush interval and
// once more when ctx ends, so a crash loses at most one interval of
// them. It prunes old usage when it starts and then once an hour. The
// daemon runs it for as long as it serves; it returns the last write's
// error.
func (m *Meter) Run(ctx context.Context) error {
	if err := m.prune(); err != nil {
		m.log.Warn("usage: old usage not pruned; will retry in an hour", "err", err)
	}
	pruned := m.now()
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m.flush()
		case <-t.C:
			if err := m.flush(); err != nil {
				// The cause alone: the count of records held grows at every
				// try, and the daemon's log writes a cause said again only
				// now and then, with a count.
				m.log.Warn("usage: records not saved; will retry", "err", cause(err))
			}
			if now := m.now(); now.Sub(pruned) >= pruneEvery || now.Before(pruned) {
				pruned = now
				if err := m.prune(); err != nil {
					m.log.Warn("usage: old usage not pruned; will retry in an hour", "err", err)
				}
			}
		}
	}
}

// cause is what a failed flush's error wraps.
func cause(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

// Flush saves the records settled since the last save. The daemon calls
// it once more after its listeners have drained: requests that finish
// while corral shuts down settle after Run's last write.
func (m *Meter) Flush() error { return m.flush() }

// flush moves the buffered records to the store in one transaction. When
// the store refuses them they go back to the buffer for the next try.
func (m *Meter) flush() error {
	m.flushing.Lock()
	defer m.flushing.Unlock()
	m.bufMu.Lock()
	batch, dropped := m.buf, m.dropped
	m.buf, m.dropped = nil, 0
	m.bufMu.Unlock()
	if dropped > 0 {
		m.log.Error("usage: the record buffer was full while the store refused writes; records lost", "records", dropped)
	}
	if len(batch) == 0 {
		return nil
	}
	recs := make([]store.UsageRecord, len(batch))
	type group struct{ day, key, model, user string }
	days := map[group]*store.UsageDay{}
	var order []group
	for i, r := range batch {
		recs[i] = store.UsageRecord{
			Time: r.Time.UTC(), Key: r.Key, User: r.User, Model: r.Model, Instance: r.Instance, Route: r.Route,
			PromptTokens: int64(r.PromptTokens), CompletionTokens: int64(r.CompletionTokens),
			TTFT: r.TTFT, Queued: r.Queued, Duration: r.Duration, Status: r.Status, Outcome: r.Outcome,
		}
		g := group{r.Time.UTC().Format(time.DateOnly), r.Key, r.Model, r.User}
		d := days[g]
		if d == nil {
			d = &store.UsageDay{Day: g.day, Key: g.key, Model: g.model, User: g.user}
			days[g] = d
			order = append(order, g)
		}
		d.Requests++
		d.PromptTokens += int64(r.PromptTokens)
		d.CompletionTokens += int64(r.CompletionTokens)
		d.Duration += r.Duration
		d.Queued += r.Queued
		if r.failed() {
			d.Errors++
		}
	}
	sums := make([]store.UsageDay, len(order))
	for i, g := range order {
		sums[i] = *days[g]
	}
	if err := m.st.AddUsage(recs, sums); err != nil {
		m.bufMu.Lock()
		room := max(0, m.maxBuffer-len(m.buf))
		if len(batch) > room {
			m.dropped += len(batch) - room
			batch = batch[:room]
		}
		m.buf = append(batch, m.buf...)
		m.bufMu.Unlock()
		return fmt.Errorf("usage: save %d records: %w", len(recs), err)
	}
	m.log.Debug("usage: records saved", "records", len(recs), "days", len(sums))
	return nil
}

// prune deletes raw records older than the raw retention, and daily
// totals older than the retention, except this month's.
func (m *Meter) prune() error {
	now := m.now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	before := now.Add(-m.keep)
	if before.After(first) {
		before = first
	}
	raw, days, err := m.st.PruneUsage(now.Add(-m.keepRaw), before.Format(time.DateOnly))
	if raw > 0 || days > 0 {
		m.log.Info("usage: pruned old usage", "records", raw, "daily_totals", days)
	}
	if err != nil {
		return fmt.Errorf("usage: prune: %w", err)
	}
	return nil
}
