package certs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

const (
	// lockTTL is how long a lock outlives its holder's last refresh: long
	// enough that a slow disk or a busy holder never loses a live lock,
	// short enough that a crashed holder's lock is taken over in minutes.
	lockTTL = 2 * time.Minute
	// lockPoll is how often a waiting Lock asks again; waits are for ACME
	// orders that take seconds, so a faster poll would only cost writes.
	lockPoll = 500 * time.Millisecond
)

// KV is the part of corral's store that certificates need; *store.Store
// satisfies it. It is declared here so that the store stays free of
// certmagic and this package free of bbolt. Keys are slash-separated
// paths; CertGet's error for a missing key must match fs.ErrNotExist.
type KV interface {
	CertPut(key string, value []byte) error
	CertGet(key string) ([]byte, time.Time, error)
	CertDelete(key string) error
	CertKeys(prefix string) ([]string, error)
	CertTryLock(name, owner string, ttl time.Duration, now time.Time) (bool, error)
	CertUnlock(name, owner string) error
}

// Storage keeps certmagic's certificates, keys and ACME accounts in
// corral's store, so that a backup of the data directory holds them.
type Storage struct {
	kv    KV
	owner string // names this Storage's locks in the store; random, so a restart never inherits a crashed run's locks
	ttl   time.Duration
	poll  time.Duration

	mu   sync.Mutex
	held map[string]*lease
}

var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
)

// lease is a lock this Storage holds or is taking. Its goroutines share
// one owner, which the store would let in all at once, so they queue on
// the lease first.
type lease struct {
	released chan struct{}      // closed when the lease ends, to wake the Storage's other waiters
	stop     context.CancelFunc // ends the refresher; nil until the store's lock is taken, and again once Unlock begins
	done     chan struct{}      // closed when the refresher has returned
}

// NewStorage returns a certmagic Storage over kv.
func NewStorage(kv KV) *Storage {
	return &Storage{
		kv:    kv,
		owner: rand.Text(),
		ttl:   lockTTL,
		poll:  lockPoll,
		held:  map[string]*lease{},
	}
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "corral store" }

// Store puts value at key, replacing any value there.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("certs: store %s: %w", key, err)
	}
	if err := s.kv.CertPut(key, value); err != nil {
		return fmt.Errorf("certs: store %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key; a missing key, or a directory, is an
// error matching fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("certs: load %s: %w", key, err)
	}
	v, _, err := s.kv.CertGet(key)
	if err != nil {
		return nil, fmt.Errorf("certs: load %s: %w", key, err)
	}
	return v, nil
}

// Delete deletes key and everything under it; nothing there is not an
// error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("certs: delete %s: %w", key, err)
	}
	if err := s.kv.CertDelete(key); err != nil {
		return fmt.Errorf("certs: delete %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory of others.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	if ctx.Err() != nil {
		return false
	}
	keys, err := s.kv.CertKeys(key)
	return err == nil && len(keys) > 0
}

// List returns the full keys beneath prefix: with recursive, every file;
// without, its immediate children, files and directories alike, as
// certmagic's FileStorage lists a folder. A missing prefix is an error
// matching fs.ErrNotExist; a file has nothing beneath it.
func (s *Storage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("certs: list %s: %w", prefix, err)
	}
	keys, err := s.kv.CertKeys(prefix)
	if err != nil {
		return nil, fmt.Errorf("certs: list %s: %w", prefix, err)
	}
	// The root always exists, as FileStorage's folder does once made.
	if len(keys) == 0 && prefix != "" {
		return nil, fmt.Errorf("certs: list %s: %w", prefix, fs.ErrNotExist)
	}
	var out []string
	for _, k := range keys {
		if k == prefix {
			continue
		}
		if recursive {
			out = append(out, k)
			continue
		}
		rel := k
		if prefix != "" {
			rel = k[len(prefix)+1:]
		}
		child, _, _ := strings.Cut(rel, "/")
		if prefix != "" {
			child = prefix + "/" + child
		}
		out = append(out, child)
	}
	// A directory's keys are contiguous but sort after siblings such as
	// "name.txt", so sorting is what brings its duplicates together.
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Stat describes key. A directory's Modified is that of its newest key:
// certmagic picks the most recent ACME account by it.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, err)
	}
	v, mod, err := s.kv.CertGet(key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: mod, Size: int64(len(v)), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, err)
	}
	keys, err := s.kv.CertKeys(key)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, err)
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, fs.ErrNotExist)
	}
	info := certmagic.KeyInfo{Key: key}
	for _, k := range keys {
		// A key deleted since the listing just no longer counts.
		if _, mod, err := s.kv.CertGet(k); err == nil && mod.After(info.Modified) {
			info.Modified = mod
		}
	}
	return info, nil
}

// Lock takes the named lock, waiting while another Storage, or another
// goroutine of this one, holds it, until ctx ends. The lock is refreshed
// in the background until Unlock, so a holder keeps it through a long
// ACME order, and a crashed one's lock goes stale after the TTL.
func (s *Storage) Lock(ctx context.Context, name string) error {
	l, err := s.reserve(ctx, name)
	if err != nil {
		return fmt.Errorf("certs: lock %s: %w", name, err)
	}
	for {
		ok, err := s.kv.CertTryLock(name, s.owner, s.ttl, time.Now())
		if err != nil {
			s.release(name, l)
			return fmt.Errorf("certs: lock %s: %w", name, err)
		}
		if ok {
			s.hold(name, l)
			return nil
		}
		select {
		case <-time.After(s.poll):
		case <-ctx.Done():
			s.release(name, l)
			return fmt.Errorf("certs: lock %s: %w", name, ctx.Err())
		}
	}
}

// TryLock takes the named lock if it is free now, without waiting.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("certs: lock %s: %w", name, err)
	}
	l := s.tryReserve(name)
	if l == nil {
		return false, nil
	}
	ok, err := s.kv.CertTryLock(name, s.owner, s.ttl, time.Now())
	if err != nil || !ok {
		s.release(name, l)
		if err != nil {
			return false, fmt.Errorf("certs: lock %s: %w", name, err)
		}
		return false, nil
	}
	s.hold(name, l)
	return true, nil
}

// Unlock releases a lock this Storage took. ctx is not consulted: a lock
// left behind would block every other holder until it went stale.
func (s *Storage) Unlock(_ context.Context, name string) error {
	s.mu.Lock()
	l := s.held[name]
	if l == nil || l.stop == nil {
		s.mu.Unlock()
		return fmt.Errorf("certs: unlock %s: not locked by this storage", name)
	}
	stop := l.stop
	l.stop = nil
	s.mu.Unlock()

	// The refresher must be gone first, or it could write the lock back.
	stop()
	<-l.done
	err := s.kv.CertUnlock(name, s.owner)
	s.release(name, l)
	if err != nil {
		return fmt.Errorf("certs: unlock %s: %w", name, err)
	}
	return nil
}

// reserve makes this goroutine the only one of s going for name.
func (s *Storage) reserve(ctx context.Context, name string) (*lease, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		other := s.held[name]
		if other == nil {
			l := &lease{released: make(chan struct{})}
			s.held[name] = l
			s.mu.Unlock()
			return l, nil
		}
		s.mu.Unlock()
		select {
		case <-other.released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tryReserve is reserve without waiting; nil means another has name.
func (s *Storage) tryReserve(name string) *lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[name] != nil {
		return nil
	}
	l := &lease{released: make(chan struct{})}
	s.held[name] = l
	return l
}

// hold starts refreshing the store's lock behind l.
func (s *Storage) hold(name string, l *lease) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	l.stop, l.done = stop, done
	s.mu.Unlock()
	go s.refresh(ctx, name, done)
}

// release ends l and lets the next waiter of s in.
func (s *Storage) release(name string, l *lease) {
	s.mu.Lock()
	if s.held[name] == l {
		delete(s.held, name)
	}
	s.mu.Unlock()
	close(l.released)
}

// refresh pushes the lock's expiry ahead three times per TTL, so that a
// refresh or two may fail without the lock going stale.
func (s *Storage) refresh(ctx context.Context, name string, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := s.kv.CertTryLock(name, s.owner, s.ttl, time.Now())
		if err == nil && !ok {
			// Taken over after going stale (this process stalled past
			// the TTL): no longer ours to keep alive.
			return
		}
	}
}
