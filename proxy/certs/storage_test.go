package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"corral/engine/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fastStorage has a short TTL and poll so lock tests run in milliseconds.
func fastStorage(kv KV) *Storage {
	s := NewStorage(kv)
	s.ttl = 300 * time.Millisecond
	s.poll = 10 * time.Millisecond
	return s
}

var fixture = []string{
	"acme/ca/users/u/u.json",
	"acme/ca/users/u/u.key",
	"certificates/ca/example.test/example.test.crt",
	"certificates/ca/example.test/example.test.json",
	"certificates/ca/example.test/example.test.key",
	"certificates/ca/example.test.old",
	"last_clean.json",
}

func fixtureStorage(t *testing.T) *Storage {
	t.Helper()
	s := NewStorage(openStore(t))
	for _, k := range fixture {
		if err := s.Store(t.Context(), k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestLoadExistsStat(t *testing.T) {
	s := fixtureStorage(t)
	tests := []struct {
		key      string
		exists   bool
		file     bool // Load succeeds, Stat says terminal
		notExist bool // Load and Stat fail with fs.ErrNotExist
	}{
		{key: "acme/ca/users/u/u.key", exists: true, file: true},
		{key: "last_clean.json", exists: true, file: true},
		{key: "acme/ca/users/u", exists: true},
		{key: "certificates", exists: true},
		{key: "acme/ca/users/u/u", notExist: true},
		{key: "certificates/c", notExist: true},
		{key: "nope", notExist: true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			ctx := t.Context()
			if got := s.Exists(ctx, tt.key); got != tt.exists {
				t.Errorf("Exists = %v, want %v", got, tt.exists)
			}
			v, err := s.Load(ctx, tt.key)
			switch {
			case tt.file && (err != nil || string(v) != tt.key):
				t.Errorf("Load = %q, %v; want %q", v, err, tt.key)
			case !tt.file && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("Load error %v, want fs.ErrNotExist", err)
			}
			info, err := s.Stat(ctx, tt.key)
			if tt.notExist {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat error %v, want fs.ErrNotExist", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if info.Key != tt.key || info.IsTerminal != tt.file || info.Modified.IsZero() {
				t.Errorf("Stat = %+v, want key %q, terminal %v, a modified time", info, tt.key, tt.file)
			}
			if tt.file && info.Size != int64(len(tt.key)) {
				t.Errorf("Stat size = %d, want %d", info.Size, len(tt.key))
			}
		})
	}
}

func TestStatDirectoryIsNewestKey(t *testing.T) {
	s := NewStorage(openStore(t))
	ctx := t.Context()
	for _, k := range []string{"users/a/a.json", "users/b/b.json", "users/a/a.key"} {
		if err := s.Store(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	a, errA := s.Stat(ctx, "users/a")
	b, errB := s.Stat(ctx, "users/b")
	if errA != nil || errB != nil || !a.Modified.After(b.Modified) {
		t.Fatalf("users/a %v, %v; users/b %v, %v: want a newer", a.Modified, errA, b.Modified, errB)
	}
}

func TestList(t *testing.T) {
	s := fixtureStorage(t)
	tests := []struct {
		prefix    string
		recursive bool
		want      []string
		notExist  bool
	}{
		{prefix: "", want: []string{"acme", "certificates", "last_clean.json"}},
		{prefix: "certificates", want: []string{"certificates/ca"}},
		{prefix: "certificates/ca", want: []string{"certificates/ca/example.test", "certificates/ca/example.test.old"}},
		{prefix: "certificates/ca/example.test", want: []string{
			"certificates/ca/example.test/example.test.crt",
			"certificates/ca/example.test/example.test.json",
			"certificates/ca/example.test/example.test.key",
		}},
		{prefix: "acme", recursive: true, want: []string{"acme/ca/users/u/u.json", "acme/ca/users/u/u.key"}},
		{prefix: "", recursive: true, want: slices.Sorted(slices.Values(fixture))},
		{prefix: "last_clean.json", want: nil},
		{prefix: "acme/c", notExist: true},
		{prefix: "nope", recursive: true, notExist: true},
	}
	for _, tt := range tests {
		name := tt.prefix
		if name == "" {
			name = "root"
		}
		if tt.recursive {
			name += " recursive"
		}
		t.Run(name, func(t *testing.T) {
			got, err := s.List(t.Context(), tt.prefix, tt.recursive)
			if tt.notExist {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("List = %q, %v; want fs.ErrNotExist", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("List = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		key  string
		gone []string // keys of the fixture that must be gone after
	}{
		{key: "nope"},
		{key: "certificates/ca/example.test/example.test.key", gone: []string{"certificates/ca/example.test/example.test.key"}},
		{key: "certificates/ca/example.test", gone: []string{
			"certificates/ca/example.test/example.test.crt",
			"certificates/ca/example.test/example.test.json",
			"certificates/ca/example.test/example.test.key",
		}},
		{key: "acme", gone: []string{"acme/ca/users/u/u.json", "acme/ca/users/u/u.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			s := fixtureStorage(t)
			ctx := t.Context()
			if err := s.Delete(ctx, tt.key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if s.Exists(ctx, tt.key) {
				t.Errorf("%s exists after Delete", tt.key)
			}
			for _, k := range fixture {
				if got, want := s.Exists(ctx, k), !slices.Contains(tt.gone, k); got != want {
					t.Errorf("Exists(%s) = %v, want %v", k, got, want)
				}
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	s := fixtureStorage(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Store(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Store: %v", err)
	}
	if _, err := s.Load(ctx, "last_clean.json"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load: %v", err)
	}
	if _, err := s.List(ctx, "", true); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v", err)
	}
	if s.Exists(ctx, "last_clean.json") {
		t.Error("Exists with a cancelled context")
	}
}

func TestValuesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := NewStorage(st).Store(ctx, "acme/ca/users/u/u.key", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = store.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := NewStorage(st)
	if v, err := s.Load(ctx, "acme/ca/users/u/u.key"); err != nil || string(v) != "secret" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if keys, err := s.List(ctx, "acme", true); err != nil || len(keys) != 1 {
		t.Fatalf("after reopen: %q, %v", keys, err)
	}
}

func TestLockBlocksAnotherStorage(t *testing.T) {
	st := openStore(t)
	a, b := fastStorage(st), fastStorage(st)
	ctx := t.Context()
	if err := a.Lock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_x") }()
	// Longer than the TTL: the holder's refresher must keep it.
	select {
	case err := <-got:
		t.Fatalf("second storage took a held lock: %v", err)
	case <-time.After(3 * a.ttl):
	}
	if err := a.Unlock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second storage did not get the lock after Unlock")
	}
	if err := b.Unlock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
}

func TestStaleLockTakenOver(t *testing.T) {
	st := openStore(t)
	// Locks of holders that died: one long expired, one about to.
	if ok, err := st.CertTryLock("expired", "crashed", time.Minute, time.Now().Add(-2*time.Minute)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	taken := time.Now()
	if ok, err := st.CertTryLock("expiring", "crashed", 200*time.Millisecond, taken); err != nil || !ok {
		t.Fatal(ok, err)
	}
	s := fastStorage(st)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Lock(ctx, "expired"); err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(ctx, "expiring"); err != nil {
		t.Fatal(err)
	}
	// Counted from when the lock was taken, not from this Lock: a slow
	// first Lock leaves less to wait here.
	if held := time.Since(taken); held < 200*time.Millisecond {
		t.Errorf("took a live lock %s after it was taken, before its 200ms TTL", held)
	}
	for _, name := range []string{"expired", "expiring"} {
		if err := s.Unlock(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLockHonoursContext(t *testing.T) {
	st := openStore(t)
	a, b := fastStorage(st), fastStorage(st)
	if err := a.Lock(t.Context(), "l"); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Lock(cancelled, "l"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled context: %v", err)
	}
	timeout, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.Lock(timeout, "l"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past its deadline: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Lock returned %s after its deadline", took)
	}
	// A goroutine of a waiting on its own Storage gives up too.
	timeout, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := a.Lock(timeout, "l"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock on the holding storage: %v", err)
	}
	if err := a.Unlock(t.Context(), "l"); err != nil {
		t.Fatal(err)
	}
	// The failed attempts left nothing behind.
	if ok, err := b.TryLock(t.Context(), "l"); err != nil || !ok {
		t.Fatalf("TryLock after the holder let go = %v, %v", ok, err)
	}
	if ok, err := a.TryLock(t.Context(), "l"); err != nil || ok {
		t.Fatalf("TryLock of a held lock = %v, %v", ok, err)
	}
	if err := b.Unlock(t.Context(), "l"); err != nil {
		t.Fatal(err)
	}
}

func TestLockMutualExclusion(t *testing.T) {
	st := openStore(t)
	// Two storages, as two corral processes would be, each shared by
	// goroutines, as certmagic shares one.
	storages := []*Storage{fastStorage(st), fastStorage(st)}
	var inside, crowded atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		s := storages[i%2]
		wg.Go(func() {
			for range 5 {
				if err := s.Lock(t.Context(), "l"); err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) > 1 {
					crowded.Add(1)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := s.Unlock(t.Context(), "l"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := crowded.Load(); n > 0 {
		t.Fatalf("%d entries into an occupied critical section", n)
	}
}

func TestUnlockStopsRefresher(t *testing.T) {
	st := openStore(t)
	s := fastStorage(st)
	ctx := t.Context()
	if err := s.Unlock(ctx, "l"); err == nil {
		t.Fatal("Unlock of a lock never taken succeeded")
	}
	before := runtime.NumGoroutine()
	for range 20 {
		if err := s.Lock(ctx, "l"); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		done := s.held["l"].done
		s.mu.Unlock()
		if err := s.Unlock(ctx, "l"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		default:
			t.Fatal("refresher still running after Unlock returned")
		}
	}
	// A refresher closes done just before it returns, so give the last
	// one a moment to be gone from the count.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after 20 Lock/Unlock, %d before", n, before)
	}
	if err := s.Unlock(ctx, "l"); err == nil {
		t.Error("second Unlock succeeded")
	}
	if ok, err := st.CertTryLock("l", "other", time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("lock still held in the store after Unlock: %v, %v", ok, err)
	}
}

// selfIssuer signs every request with a throwaway CA, valid for validity
// from now (negative: already expired), so certmagic can obtain offline.
type selfIssuer struct {
	key      crypto.Signer
	validity time.Duration
}

func (iss selfIssuer) IssuerKey() string { return "self" }

func (iss selfIssuer) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	now := time.Now()
	notBefore, notAfter := now.Add(-time.Hour), now.Add(iss.validity)
	if iss.validity < 0 {
		notBefore = notAfter.Add(-time.Hour)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: csr.DNSNames,
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, csr.PublicKey, iss.key)
	if err != nil {
		return nil, err
	}
	return &certmagic.IssuedCertificate{Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// TestCertmagicOverStorage runs certmagic's own obtain, load and clean
// over the store: its storage check, lock, resource save and load, and
// its walk of the certificate tree.
func TestCertmagicOverStorage(t *testing.T) {
	st := openStore(t)
	s := NewStorage(st)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           zap.NewNop(),
	})
	defer cache.Stop()
	newConfig := func(validity time.Duration) *certmagic.Config {
		return certmagic.New(cache, certmagic.Config{
			Storage: s,
			Issuers: []certmagic.Issuer{selfIssuer{key: caKey, validity: validity}},
			Logger:  zap.NewNop(),
			OCSP:    certmagic.OCSPConfig{DisableStapling: true},
		})
	}
	cfg = newConfig(90 * 24 * time.Hour)
	ctx := t.Context()

	if err := cfg.ObtainCertSync(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	site := certmagic.StorageKeys.CertsSitePrefix("self", "example.test")
	if keys, err := st.CertKeys(site); err != nil || len(keys) != 3 {
		t.Fatalf("stored under %s: %q, %v; want crt, key and json", site, keys, err)
	}
	cert, err := cfg.CacheManagedCertificate(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.Names, []string{"example.test"}) {
		t.Fatalf("loaded certificate for %q", cert.Names)
	}
	if err := newConfig(-time.Hour).ObtainCertSync(ctx, "old.test"); err != nil {
		t.Fatal(err)
	}

	err = certmagic.CleanStorage(ctx, s, certmagic.CleanStorageOptions{
		Logger:       zap.NewNop(),
		ExpiredCerts: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, certmagic.StorageKeys.CertsSitePrefix("self", "old.test")) {
		t.Error("expired certificate kept")
	}
	if keys, err := st.CertKeys(site); err != nil || len(keys) != 3 {
		t.Errorf("valid certificate's assets after cleaning: %q, %v", keys, err)
	}
	if !s.Exists(ctx, "last_clean.json") {
		t.Error("cleaning left no record")
	}
	// Every lock certmagic took was given back.
	for _, name := range []string{"issue_cert_example.test", "issue_cert_old.test", "storage_clean"} {
		if ok, err := st.CertTryLock(name, "other", time.Minute, time.Now()); err != nil || !ok {
			t.Errorf("lock %s still held: %v, %v", name, ok, err)
		}
	}
}
