// Package keys manages the gateway's API keys: it creates and revokes
// them in the store and answers the gateway's per-request question, "may
// this key use this model?", from memory, so a request costs no disk
// access. Last-use times are batched to the store by Run.
package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"corral/engine/store"
)

// Status says whether a key can be used.
type Status string

// The statuses of a key.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"
)

// Key is what admins see of a key: never the secret, nor its hash.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"` // "crl_" and the secret's next 8 characters
	Note      string    `json:"note,omitempty"`
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Models    []string  `json:"models,omitempty"` // empty: all models
	Limits    Limits    `json:"limits"`
	Internal  bool      `json:"internal,omitempty"` // corral's own key for the chat UI
	Status    Status    `json:"status"`
}

// CreateOptions describe a new key.
type CreateOptions struct {
	Name          string    // unique; 1-64 letters, digits, '-', '_', '.' or '@'
	Note          string    // free text for admins
	ExpiresAt     time.Time // zero: never
	AllowedModels []string  // empty: all models
}

// Limits on what a key may hold.
const (
	maxNote      = 1000
	maxModels    = 100
	maxModelName = 200
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Manager holds every key in memory, indexed by hash, and writes changes
// through to the store. It is safe for concurrent use.
type Manager struct {
	st    *store.Store
	now   func() time.Time
	log   *slog.Logger
	every time.Duration

	// write serialises the store writes (Create, Revoke, flush), so the
	// maps below match the store whenever it is free.
	write sync.Mutex

	mu     sync.RWMutex
	byHash map[string]*entry
	byName map[string]*entry
}

// entry is one key in memory.
type entry struct {
	rec     store.Key       // as stored; replaced whole under Manager.mu
	models  map[string]bool // normalised AllowedModels, nil for all; never changes
	used    atomic.Int64    // Unix nanoseconds of the latest successful Authorize
	flushed int64           // the used value the store has; under Manager.write
}

func newEntry(rec store.Key) *entry {
	e := &entry{rec: rec}
	if len(rec.AllowedModels) > 0 {
		e.models = make(map[string]bool, len(rec.AllowedModels))
		for _, m := range rec.AllowedModels {
			e.models[normalizeModel(m)] = true
		}
	}
	if !rec.LastUsed.IsZero() {
		e.used.Store(rec.LastUsed.UnixNano())
		e.flushed = rec.LastUsed.UnixNano()
	}
	return e
}

// Option changes a Manager's defaults.
type Option func(*Manager)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithLogger sets the logger (default: none).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// DefaultFlushInterval is how often Run writes last-use times: a crash
// loses at most this much of them.
const DefaultFlushInterval = 10 * time.Second

// WithFlushInterval sets how often Run writes last-use times (default
// DefaultFlushInterval).
func WithFlushInterval(d time.Duration) Option { return func(m *Manager) { m.every = d } }

// New loads every key from st.
func New(st *store.Store, opts ...Option) (*Manager, error) {
	m := &Manager{
		st:     st,
		now:    time.Now,
		log:    slog.New(slog.DiscardHandler),
		every:  DefaultFlushInterval,
		byHash: map[string]*entry{},
		byName: map[string]*entry{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.every <= 0 {
		return nil, fmt.Errorf("keys: flush interval %s: must be positive", m.every)
	}
	recs, err := st.Keys()
	if err != nil {
		return nil, fmt.Errorf("keys: load: %w", err)
	}
	for _, rec := range recs {
		e := newEntry(rec)
		m.byHash[rec.Hash] = e
		m.byName[rec.Name] = e
	}
	return m, nil
}

// Authorize checks secret, and that its key may use model, and returns
// the key's name. An empty model checks the key alone, for requests that
// name none. It touches no disk. A refused model comes back as a
// *ModelError; the other refusals are ErrNoKey, ErrUnknownKey, ErrRevoked
// and ErrExpired.
func (m *Manager) Authorize(_ context.Context, secret, model string) (string, error) {
	if secret == "" {
		return "", ErrNoKey
	}
	// The lookup is the whole comparison: it compares hashes, which tell
	// nothing of a secret.
	hash := secretHash(secret)
	m.mu.RLock()
	e := m.byHash[string(hash[:])]
	var rec store.Key
	if e != nil {
		rec = e.rec
	}
	m.mu.RUnlock()
	if e == nil {
		return "", ErrUnknownKey
	}
	now := m.now()
	if !rec.RevokedAt.IsZero() {
		return "", ErrRevoked
	}
	if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
		return "", ErrExpired
	}
	if model != "" && e.models != nil && !e.models[normalizeModel(model)] {
		return "", &ModelError{Model: model, Allowed: slices.Clone(rec.AllowedModels)}
	}
	e.used.Store(now.UnixNano())
	return rec.Name, nil
}

// Create makes a key and returns its secret, which is kept nowhere: the
// caller shows it once.
func (m *Manager) Create(_ context.Context, o CreateOptions) (string, Key, error) {
	now := m.now().UTC()
	models, err := validate(o, now)
	if err != nil {
		return "", Key{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return "", Key{}, err
	}
	m.write.Lock()
	defer m.write.Unlock()
	m.mu.RLock()
	_, taken := m.byName[o.Name]
	m.mu.RUnlock()
	if taken {
		return "", Key{}, nameTaken(o.Name)
	}
	id, err := m.freeID()
	if err != nil {
		return "", Key{}, err
	}
	rec := store.Key{
		ID:            id,
		Name:          o.Name,
		Hash:          hashSecret(secret),
		Prefix:        secret[len(SecretPrefix) : len(SecretPrefix)+prefixLen],
		Note:          o.Note,
		Created:       now,
		ExpiresAt:     o.ExpiresAt.UTC(),
		AllowedModels: models,
	}
	if err := m.st.CreateKey(rec); errors.Is(err, store.ErrExists) {
		return "", Key{}, nameTaken(o.Name)
	} else if err != nil {
		return "", Key{}, fmt.Errorf("keys: create %q: %w", o.Name, err)
	}
	e := newEntry(rec)
	m.mu.Lock()
	m.byHash[rec.Hash] = e
	m.byName[rec.Name] = e
	m.mu.Unlock()
	m.log.Info("API key created", "name", rec.Name, "id", rec.ID, "prefix", SecretPrefix+rec.Prefix)
	return secret, view(e, rec, now), nil
}

func nameTaken(name string) error {
	return adminErrorf(ErrNameTaken, "an API key named %q already exists (revoked keys keep their names): pick another name", name)
}

// freeID draws an ID no key has. The caller holds m.write.
func (m *Manager) freeID() (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for range 10 {
		id, err := newID()
		if err != nil {
			return "", err
		}
		if !m.hasID(id) {
			return id, nil
		}
	}
	return "", errors.New("keys: no free key ID after 10 draws")
}

// hasID reports whether a key has id. The caller holds m.mu.
func (m *Manager) hasID(id string) bool {
	for _, e := range m.byName {
		if e.rec.ID == id {
			return true
		}
	}
	return false
}

// validate checks o and returns its models, trimmed and without repeats.
func validate(o CreateOptions, now time.Time) ([]string, error) {
	if !nameRE.MatchString(o.Name) {
		return nil, adminErrorf(ErrInvalid, "key name %q: use 1-64 letters, digits, '-', '_', '.' or '@'", o.Name)
	}
	if o.Name == InternalName {
		return nil, adminErrorf(ErrInvalid, "key name %q is corral's own, for the chat UI: pick another name (corral keys rotate-internal renews that key)", o.Name)
	}
	if len(o.Note) > maxNote {
		return nil, adminErrorf(ErrInvalid, "key note is %d bytes: keep it to %d", len(o.Note), maxNote)
	}
	if !o.ExpiresAt.IsZero() && !o.ExpiresAt.After(now) {
		return nil, adminErrorf(ErrInvalid, "key expiry %s is not in the future", o.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if len(o.AllowedModels) > maxModels {
		return nil, adminErrorf(ErrInvalid, "%d models: a key may list at most %d (none means all)", len(o.AllowedModels), maxModels)
	}
	var models []string
	seen := map[string]bool{}
	for _, name := range o.AllowedModels {
		name = strings.TrimSpace(name)
		if name == "" || len(name) > maxModelName || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, adminErrorf(ErrInvalid, "model name %q: want a name such as llama3.2 or qwen3:8b", name)
		}
		if n := normalizeModel(name); !seen[n] {
			seen[n] = true
			models = append(models, name)
		}
	}
	return models, nil
}

// entry finds a key by name and copies its record, so the caller can
// work on it without holding m.mu; nil when there is none.
func (m *Manager) entry(name string) (*entry, store.Key) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.byName[name]
	if e == nil {
		return nil, store.Key{}
	}
	return e, e.rec
}

// Revoke stops the key called name from working, from the next request
// on. The key stays listed, and keeps its name.
func (m *Manager) Revoke(_ context.Context, name string) (Key, error) {
	m.write.Lock()
	defer m.write.Unlock()
	e, rec := m.entry(name)
	now := m.now().UTC()
	if e == nil {
		return Key{}, adminErrorf(ErrNotFound, "no API key named %q: see corral keys list", name)
	}
	if !rec.RevokedAt.IsZero() {
		return view(e, rec, now), adminErrorf(ErrAlreadyRevoked, "API key %q was already revoked at %s: nothing to do", name, rec.RevokedAt.Format(time.RFC3339))
	}
	rec.RevokedAt = now
	// The record in memory lags the flushed last-use time; write the latest.
	used := e.used.Load()
	if t := time.Unix(0, used).UTC(); used > 0 && t.After(rec.LastUsed) {
		rec.LastUsed = t
	}
	if err := m.st.PutKey(rec); err != nil {
		return Key{}, fmt.Errorf("keys: revoke %q: %w", name, err)
	}
	m.mu.Lock()
	e.rec = rec
	m.mu.Unlock()
	e.flushed = max(e.flushed, used)
	m.log.Info("API key revoked", "name", name, "id", rec.ID)
	return view(e, rec, now), nil
}

// List returns every key, revoked and expired ones included, oldest first.
func (m *Manager) List() []Key {
	now := m.now()
	m.mu.RLock()
	out := make([]Key, 0, len(m.byName))
	for _, e := range m.byName {
		out = append(out, view(e, e.rec, now))
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.Name, b.Name))
	})
	return out
}

// view is what admins see of e, whose record is rec.
func view(e *entry, rec store.Key, now time.Time) Key {
	k := Key{
		ID:        rec.ID,
		Name:      rec.Name,
		Prefix:    SecretPrefix + rec.Prefix,
		Note:      rec.Note,
		Created:   rec.Created,
		ExpiresAt: rec.ExpiresAt,
		RevokedAt: rec.RevokedAt,
		LastUsed:  rec.LastUsed,
		Models:    slices.Clone(rec.AllowedModels),
		Limits:    rec.Limits,
		Internal:  rec.Internal,
		Status:    StatusActive,
	}
	if used := e.used.Load(); used > 0 && time.Unix(0, used).After(k.LastUsed) {
		k.LastUsed = time.Unix(0, used).UTC()
	}
	switch {
	case !rec.RevokedAt.IsZero():
		k.Status = StatusRevoked
	case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		k.Status = StatusExpired
	}
	return k
}
