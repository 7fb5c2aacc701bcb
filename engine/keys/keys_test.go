package keys

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/engine/store"
)

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

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newManager(t *testing.T, st *store.Store, opts ...Option) *Manager {
	t.Helper()
	m, err := New(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCreate(t *testing.T, m *Manager, o CreateOptions) (string, Key) {
	t.Helper()
	secret, k, err := m.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return secret, k
}

func TestCreateAndAuthorize(t *testing.T) {
	st := openStore(t)
	m := newManager(t, st)
	ctx := context.Background()
	secret, k, err := m.Create(ctx, CreateOptions{Name: "ci@build.example", Note: "CI"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "crl_") || len(secret) != len("crl_")+43 {
		t.Fatalf("secret %q: want crl_ and 43 base62 digits", secret)
	}
	if strings.Trim(secret[4:], "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Fatalf("secret %q is not base62", secret)
	}
	if k.Prefix != secret[:12] || k.Name != "ci@build.example" || k.Status != StatusActive || len(k.ID) != 8 {
		t.Fatalf("key = %+v", k)
	}
	name, err := m.Authorize(ctx, secret, "llama3.2")
	if err != nil || name != "ci@build.example" {
		t.Fatalf("authorize = %q, %v", name, err)
	}

	other, _ := mustCreate(t, m, CreateOptions{Name: "other"})
	if other == secret {
		t.Fatal("two keys share a secret")
	}

	// Neither the secret nor its hash leaves the manager, nor is the
	// secret stored.
	raw, _ := json.Marshal(m.List())
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), hashSecret(secret)) {
		t.Fatalf("list shows the secret or its hash: %s", raw)
	}
	recs, err := st.Keys()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(recs)
	if strings.Contains(string(raw), secret[4:]) {
		t.Fatalf("store holds the secret: %s", raw)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	clk := newClock()
	m := newManager(t, openStore(t), WithClock(clk.Now))
	ctx := context.Background()
	good, _ := mustCreate(t, m, CreateOptions{Name: "good"})
	revoked, _ := mustCreate(t, m, CreateOptions{Name: "revoked"})
	if _, err := m.Revoke(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	expiring, _ := mustCreate(t, m, CreateOptions{Name: "expiring", ExpiresAt: clk.Now().Add(time.Hour)})
	limited, _ := mustCreate(t, m, CreateOptions{Name: "limited", AllowedModels: []string{"llama3.2", "qwen3:8b", "library/phi4:latest"}})

	type forbidden interface{ Forbidden() bool }
	cases := []struct {
		name, secret, model string
		after               time.Duration // clock moves before the call
		want                error         // nil: allowed
		forbidden           bool
	}{
		{"good", good, "anything:7b", 0, nil, false},
		{"no key", "", "llama3.2", 0, ErrNoKey, false},
		{"wrong secret", good[:len(good)-1] + "x", "llama3.2", 0, ErrUnknownKey, false},
		{"not a corral key", "sk-123", "", 0, ErrUnknownKey, false},
		{"revoked", revoked, "llama3.2", 0, ErrRevoked, false},
		{"before expiry", expiring, "llama3.2", 59 * time.Minute, nil, false},
		{"at expiry", expiring, "llama3.2", time.Minute, ErrExpired, false},
		{"model allowed", limited, "llama3.2", 0, nil, false},
		{"model allowed with :latest", limited, "llama3.2:latest", 0, nil, false},
		{"model allowed, other case", limited, "Qwen3:8B", 0, nil, false},
		{"allowed as library/phi4:latest, asked as phi4", limited, "phi4", 0, nil, false},
		{"no model named", limited, "", 0, nil, false},
		{"other tag", limited, "qwen3:32b", 0, nil, true},
		{"other model", limited, "mistral", 0, nil, true},
		{"tag is not :latest", limited, "llama3.2:1b", 0, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk.Add(tc.after)
			name, err := m.Authorize(ctx, tc.secret, tc.model)
			var f forbidden
			switch {
			case tc.forbidden:
				if !errors.As(err, &f) || !f.Forbidden() {
					t.Fatalf("err = %v, want one with Forbidden() true", err)
				}
				if !strings.Contains(err.Error(), tc.model) || !strings.Contains(err.Error(), "ask the admin") {
					t.Fatalf("message %q should name the model and what to do", err)
				}
			case tc.want != nil:
				if !errors.Is(err, tc.want) || errors.As(err, &f) {
					t.Fatalf("err = %v, want %v and not forbidden", err, tc.want)
				}
			default:
				if err != nil || name == "" {
					t.Fatalf("authorize = %q, %v; want allowed", name, err)
				}
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("message is not one line: %q", err)
			}
		})
	}
	var statuses []string // all made at one clock time, so in name order
	for _, k := range m.List() {
		statuses = append(statuses, k.Name+"="+string(k.Status))
	}
	if got := strings.Join(statuses, " "); got != "expiring=expired good=active limited=active revoked=revoked" {
		t.Fatalf("statuses = %s", got)
	}
}

func TestCreateRefusals(t *testing.T) {
	clk := newClock()
	m := newManager(t, openStore(t), WithClock(clk.Now))
	mustCreate(t, m, CreateOptions{Name: "alice"})
	cases := []struct {
		name string
		o    CreateOptions
		want error
		msg  string
	}{
		{"empty name", CreateOptions{}, ErrInvalid, "use 1-64"},
		{"space in name", CreateOptions{Name: "a b"}, ErrInvalid, `"a b"`},
		{"slash in name", CreateOptions{Name: "a/b"}, ErrInvalid, "use 1-64"},
		{"long name", CreateOptions{Name: strings.Repeat("a", 65)}, ErrInvalid, "use 1-64"},
		{"taken name", CreateOptions{Name: "alice"}, ErrNameTaken, "pick another name"},
		{"past expiry", CreateOptions{Name: "bob", ExpiresAt: clk.Now().Add(-time.Second)}, ErrInvalid, "not in the future"},
		{"long note", CreateOptions{Name: "bob", Note: strings.Repeat("n", 1001)}, ErrInvalid, "keep it to 1000"},
		{"empty model", CreateOptions{Name: "bob", AllowedModels: []string{"llama3.2", " "}}, ErrInvalid, "model name"},
		{"model with space", CreateOptions{Name: "bob", AllowedModels: []string{"llama 3"}}, ErrInvalid, "model name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := m.Create(context.Background(), tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.msg)
			}
		})
	}
	if n := len(m.List()); n != 1 {
		t.Fatalf("%d keys after refused creates, want 1", n)
	}
	// The longest name, every allowed character, and repeated models.
	name := strings.Repeat("x", 58) + "-_.@A9"
	_, k := mustCreate(t, m, CreateOptions{Name: name, AllowedModels: []string{" llama3.2 ", "llama3.2:latest", "qwen3"}})
	if k.Name != name || strings.Join(k.Models, ",") != "llama3.2,qwen3" {
		t.Fatalf("key = %+v", k)
	}
}

func TestRevoke(t *testing.T) {
	st := openStore(t)
	m := newManager(t, st)
	ctx := context.Background()
	secret, _ := mustCreate(t, m, CreateOptions{Name: "alice"})
	if _, err := m.Revoke(ctx, "bob"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"bob"`) {
		t.Fatalf("revoke unknown: %v", err)
	}
	k, err := m.Revoke(ctx, "alice")
	if err != nil || k.Status != StatusRevoked || k.RevokedAt.IsZero() {
		t.Fatalf("revoke = %+v, %v", k, err)
	}
	if _, err := m.Authorize(ctx, secret, ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("authorize after revoke: %v", err)
	}
	k2, err := m.Revoke(ctx, "alice")
	if !errors.Is(err, ErrAlreadyRevoked) || !strings.Contains(err.Error(), "already revoked") || !k2.RevokedAt.Equal(k.RevokedAt) {
		t.Fatalf("second revoke = %+v, %v", k2, err)
	}

	// A new manager on the same store (a restart) knows all of it.
	m2 := newManager(t, st)
	if _, err := m2.Authorize(ctx, secret, ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("authorize after restart: %v", err)
	}
	if _, _, err := m2.Create(ctx, CreateOptions{Name: "alice"}); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("reuse of a revoked name: %v", err)
	}
}

func TestReloadKeepsKeys(t *testing.T) {
	st := openStore(t)
	m := newManager(t, st)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).UTC()
	secret, want := mustCreate(t, m, CreateOptions{Name: "alice", Note: "n", ExpiresAt: exp, AllowedModels: []string{"llama3.2"}})
	m2 := newManager(t, st)
	if name, err := m2.Authorize(ctx, secret, "llama3.2:latest"); err != nil || name != "alice" {
		t.Fatalf("authorize after reload = %q, %v", name, err)
	}
	got := m2.List()
	if len(got) != 1 || got[0].ID != want.ID || got[0].Prefix != want.Prefix || !got[0].ExpiresAt.Equal(exp) || got[0].Models[0] != "llama3.2" {
		t.Fatalf("after reload:\n got %+v\nwant %+v", got, want)
	}
}

// TestConcurrentAuthorizeRevoke runs requests while keys are created and
// revoked (go test -race), and checks that once Revoke returns no request
// gets through.
func TestConcurrentAuthorizeRevoke(t *testing.T) {
	m := newManager(t, openStore(t), WithFlushInterval(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()

	const n = 8
	secrets := make([]string, n)
	for i := range secrets {
		secrets[i], _ = mustCreate(t, m, CreateOptions{Name: "k" + string(rune('a'+i))})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := m.Authorize(ctx, secrets[(w+i)%n], "llama3.2")
				if err != nil && !errors.Is(err, ErrRevoked) {
					t.Errorf("authorize: %v", err)
					return
				}
				m.List()
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			mustCreate(t, m, CreateOptions{Name: "extra" + string(rune('a'+i))})
		}
	})
	for i, s := range secrets {
		if _, err := m.Revoke(ctx, "k"+string(rune('a'+i))); err != nil {
			t.Error(err)
		}
		if _, err := m.Authorize(ctx, s, "llama3.2"); !errors.Is(err, ErrRevoked) {
			t.Errorf("key %d: authorize right after revoke: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}

func TestRunFlushesLastUsed(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	ctx := context.Background()

	t.Run("every interval", func(t *testing.T) {
		m := newManager(t, st, WithClock(clk.Now), WithFlushInterval(5*time.Millisecond))
		secret, _ := mustCreate(t, m, CreateOptions{Name: "ticker"})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		if _, err := m.Authorize(ctx, secret, ""); err != nil {
			t.Fatal(err)
		}
		if got := m.List()[0].LastUsed; !got.Equal(clk.Now()) {
			t.Fatalf("last used in memory = %v, want %v", got, clk.Now())
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			k, err := st.KeyByName("ticker")
			if err != nil {
				t.Fatal(err)
			}
			if k.LastUsed.Equal(clk.Now()) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("last used not flushed: stored %v", k.LastUsed)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("on exit", func(t *testing.T) {
		m := newManager(t, st, WithClock(clk.Now), WithFlushInterval(time.Hour))
		secret, _ := mustCreate(t, m, CreateOptions{Name: "exit"})
		clk.Add(time.Minute)
		if _, err := m.Authorize(ctx, secret, ""); err != nil {
			t.Fatal(err)
		}
		if k, _ := st.KeyByName("exit"); !k.LastUsed.IsZero() {
			t.Fatalf("Authorize wrote to the store: %v", k.LastUsed)
		}
		runCtx, cancel := context.WithCancel(ctx)
		cancel()
		if err := m.Run(runCtx); err != nil {
			t.Fatal(err)
		}
		if k, _ := st.KeyByName("exit"); !k.LastUsed.Equal(clk.Now()) {
			t.Fatalf("stored last used = %v, want %v", k.LastUsed, clk.Now())
		}
		// A revoke after the flush keeps the flushed time.
		if _, err := m.Revoke(ctx, "exit"); err != nil {
			t.Fatal(err)
		}
		if k, _ := st.KeyByName("exit"); !k.LastUsed.Equal(clk.Now()) || k.RevokedAt.IsZero() {
			t.Fatalf("after revoke: %+v", k)
		}
	})
}

func TestNormalizeModel(t *testing.T) {
	cases := []struct{ in, want string }{
		{"llama3.2", "llama3.2:latest"},
		{"llama3.2:latest", "llama3.2:latest"},
		{"Llama3.2:Latest", "llama3.2:latest"},
		{"qwen3:8b", "qwen3:8b"},
		{"library/qwen3:8b", "qwen3:8b"},
		{"registry.ollama.ai/library/llama3.2", "llama3.2:latest"},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF", "hf.co/bartowski/llama-3.2-1b-instruct-gguf:latest"},
		{"localhost:5000/team/model", "localhost:5000/team/model:latest"},
		{"localhost:5000/team/model:v2", "localhost:5000/team/model:v2"},
		{"model@sha256:abc", "model@sha256:abc"},
	}
	for _, tc := range cases {
		if got := normalizeModel(tc.in); got != tc.want {
			t.Errorf("normalizeModel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m, err := New(st)
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := m.Create(context.Background(), CreateOptions{Name: "bench", AllowedModels: []string{"llama3.2"}})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Authorize(context.Background(), secret, "llama3.2"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAuthorizeAllocatesLittle: every request goes through Authorize, so
// it looks its key up without making the hash a string (it made three
// allocations before; the one left is the secret's bytes for SHA-256).
func TestAuthorizeAllocatesLittle(t *testing.T) {
	m := newManager(t, openStore(t))
	secret, _ := mustCreate(t, m, CreateOptions{Name: "a"})
	if n := testing.AllocsPerRun(100, func() {
		if _, err := m.Authorize(context.Background(), secret, "llama3.2"); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("%v allocations per Authorize, want at most 1", n)
	}
}
