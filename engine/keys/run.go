package keys

import (
	"context"
	"fmt"
	"time"
)

// Run writes last-use times to the store every flush interval, and once
// more when ctx ends, so a crash loses at most one interval of them. The
// daemon runs it for as long as it serves; it returns the last write's
// error.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m.flush()
		case <-t.C:
			if err := m.flush(); err != nil {
				m.log.Warn("keys: last-use times not saved; will retry", "err", err)
			}
		}
	}
}

// Flush writes the last-use times that changed since the last write. The
// daemon calls it once more after its listeners have drained, for the
// requests that came after Run's last write.
func (m *Manager) Flush() error { return m.flush() }

// flush writes the last-use times that changed since the last flush.
func (m *Manager) flush() error {
	m.write.Lock()
	defer m.write.Unlock()
	m.mu.RLock()
	type pending struct {
		e    *entry
		used int64
	}
	var todo []pending
	batch := map[string]time.Time{}
	for _, e := range m.byName {
		if used := e.used.Load(); used > e.flushed {
			todo = append(todo, pending{e, used})
			batch[e.rec.ID] = time.Unix(0, used).UTC()
		}
	}
	m.mu.RUnlock()
	if len(todo) == 0 {
		return nil
	}
	if err := m.st.TouchKeys(batch); err != nil {
		return fmt.Errorf("keys: save last-use times: %w", err)
	}
	for _, p := range todo {
		p.e.flushed = p.used
	}
	m.log.Debug("keys: last-use times saved", "keys", len(todo))
	return nil
}
