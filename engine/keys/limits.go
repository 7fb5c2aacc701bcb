package keys

import (
	"context"
	"fmt"
	"time"

	"corral/engine/store"
)

// Limits cap what a key may use: requests and tokens per minute, tokens
// per UTC day and per UTC month; 0 means unlimited. engine/usage enforces
// them; it uses this same type. They also give the key's place in the
// gateway's queue: its weight, its class, how many requests it may have
// waiting and for how long; 0 there means the default.
type Limits = store.Limits

// maxLimit keeps sums of limits far from overflowing.
const maxLimit = 1_000_000_000_000_000

// Bounds of the queue settings; 0 is the default for each.
const (
	MaxWeight = 1000
	MaxQueue  = 100_000
	MaxWait   = 24 * time.Hour
)

// InternalName is the name of corral's own key for its chat UI, which
// RotateInternal makes and renews. Create refuses the name.
const InternalName = "corral-chat-ui"

// Limits returns the limits of the key called name, and whether there is
// such a key. It touches no disk; engine/usage calls it on every request.
func (m *Manager) Limits(name string) (Limits, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.byName[name]
	if e == nil {
		return Limits{}, false
	}
	return e.rec.Limits, true
}

// SetLimits replaces the limits of the key called name, queue settings
// included, from the next request on.
func (m *Manager) SetLimits(_ context.Context, name string, l Limits) (Key, error) {
	for _, f := range []struct {
		what string
		v    int64
	}{
		{"requests per minute", l.RequestsPerMinute},
		{"tokens per minute", l.TokensPerMinute},
		{"tokens per day", l.TokensPerDay},
		{"tokens per month", l.TokensPerMonth},
	} {
		if f.v < 0 || f.v > maxLimit {
			return Key{}, adminErrorf(ErrInvalid, "%s limit %d: give a whole number from 0 (unlimited) to %d", f.what, f.v, int64(maxLimit))
		}
	}
	for _, f := range []struct {
		what, of, zero string
		v, max         int64
	}{
		{"weight", "", "the default, 1", l.Weight, MaxWeight},
		{"max queue", " requests", "the server's default", l.MaxQueue, MaxQueue},
		{"max wait", " seconds", "the server's default", l.MaxWaitSeconds, int64(MaxWait / time.Second)},
	} {
		if f.v < 0 || f.v > f.max {
			return Key{}, adminErrorf(ErrInvalid, "%s %d%s: give a whole number from 0 (%s) to %d", f.what, f.v, f.of, f.zero, f.max)
		}
	}
	m.write.Lock()
	defer m.write.Unlock()
	e, rec := m.entry(name)
	if e == nil {
		return Key{}, adminErrorf(ErrNotFound, "no API key named %q: see corral keys list", name)
	}
	rec.Limits = l
	if err := m.save(e, rec); err != nil {
		return Key{}, fmt.Errorf("keys: set limits of %q: %w", name, err)
	}
	m.log.Info("API key limits set", "name", name, "rpm", l.RequestsPerMinute, "tpm", l.TokensPerMinute, "tpd", l.TokensPerDay, "tpmo", l.TokensPerMonth,
		"weight", l.Weight, "batch", l.Batch, "max_queue", l.MaxQueue, "max_wait_s", l.MaxWaitSeconds)
	return view(e, rec, m.now()), nil
}

// save writes rec, the new record of e, with the latest last-use time,
// and then puts it in memory. The caller holds m.write and has not
// changed rec.Hash.
func (m *Manager) save(e *entry, rec store.Key) error {
	used := e.used.Load()
	if t := time.Unix(0, used).UTC(); used > 0 && t.After(rec.LastUsed) {
		rec.LastUsed = t
	}
	if err := m.st.PutKey(rec); err != nil {
		return err
	}
	m.mu.Lock()
	e.rec = rec
	m.mu.Unlock()
	e.flushed = max(e.flushed, used)
	return nil
}

// RotateInternal gives corral's chat UI key (InternalName) a new secret
// and returns it; the old secret stops working at once. The first call
// makes the key: all models, no expiry, no limits. Later calls keep its
// ID, models and limits, lift a revocation and set Created to now, the
// time the current secret was made. A hand-made key that holds the name
// (from before the name was reserved) is taken over. The secret is kept
// nowhere: the caller hands it to the chat UI.
func (m *Manager) RotateInternal(_ context.Context) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	m.write.Lock()
	defer m.write.Unlock()
	now := m.now().UTC()
	m.mu.RLock()
	e := m.byName[InternalName]
	var rec store.Key
	if e != nil {
		rec = e.rec
	}
	m.mu.RUnlock()
	if e == nil {
		id, err := m.freeID()
		if err != nil {
			return "", err
		}
		rec = store.Key{ID: id, Name: InternalName, Note: "corral's chat UI; renewed by corral keys rotate-internal"}
	}
	oldHash := rec.Hash
	rec.Hash = hashSecret(secret)
	rec.Prefix = secret[len(SecretPrefix) : len(SecretPrefix)+prefixLen]
	rec.Created = now
	rec.RevokedAt = time.Time{}
	rec.ExpiresAt = time.Time{}
	rec.Internal = true
	var used int64
	if e != nil {
		used = e.used.Load()
		if t := time.Unix(0, used).UTC(); used > 0 && t.After(rec.LastUsed) {
			rec.LastUsed = t
		}
	}
	if err := m.st.PutKey(rec); err != nil {
		return "", fmt.Errorf("keys: rotate %q: %w", InternalName, err)
	}
	m.mu.Lock()
	if e == nil {
		e = newEntry(rec)
		m.byName[rec.Name] = e
	} else {
		delete(m.byHash, oldHash)
		e.rec = rec
		e.flushed = max(e.flushed, used)
	}
	m.byHash[rec.Hash] = e
	m.mu.Unlock()
	m.log.Info("internal API key rotated", "name", rec.Name, "id", rec.ID, "prefix", SecretPrefix+rec.Prefix)
	return secret, nil
}
