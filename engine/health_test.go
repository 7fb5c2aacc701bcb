package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Recheck returns only once a round of probes that began after the call
// has published: a round already under way may have read the instance
// before the change the caller wants to see.
func TestRecheckWaitsForAFreshRound(t *testing.T) {
	var mu sync.Mutex
	models := []string{"a:latest"}
	var holding chan struct{} // while set, /api/tags waits on it
	entered := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/version":
			fmt.Fprint(w, `{"version":"0.17.4"}`)
		case "/api/ps":
			fmt.Fprint(w, `{"models":[]}`)
		case "/api/tags":
			mu.Lock()
			h := holding
			mu.Unlock()
			if h != nil {
				entered <- struct{}{}
				<-h
			}
			mu.Lock()
			var list []string
			for _, m := range models {
				list = append(list, fmt.Sprintf(`{"name":%q,"size":1,"details":{"family":"llama","families":["llama"]}}`, m))
			}
			mu.Unlock()
			fmt.Fprintf(w, `{"models":[%s]}`, strings.Join(list, ","))
		}
	}))
	defer srv.Close()

	e, _ := newTestEngine(newFake(), cpuSpecs("t", 1, "o:1"))
	e.cfg.HealthInterval = time.Hour // only Refresh starts a round
	e.mu.Lock()
	in := e.inst["t-ollama-0"]
	in.endpoint = srv.URL
	e.setPhase(in, PhaseStarting, "test")
	e.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { e.healthLoop(ctx) })
	listed := func() []string {
		var out []string
		for _, r := range e.Routes().Routes {
			for _, m := range r.Models {
				out = append(out, m.Name)
			}
		}
		return out
	}
	if err := e.Recheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := listed(); len(got) != 1 || got[0] != "a:latest" {
		t.Fatalf("after the first round: %v", got)
	}
	// The entry is kept as the instance sent it, fields corral does not
	// read included.
	if raw := string(e.Routes().Routes[0].Models[0].Raw); !strings.Contains(raw, `"families":["llama"]`) {
		t.Fatalf("raw entry %s", raw)
	}

	// A round is under way, stuck in /api/tags, when the model appears and
	// Recheck is called: that round's answer does not count.
	h := make(chan struct{})
	mu.Lock()
	holding = h
	mu.Unlock()
	e.Refresh()
	<-entered
	mu.Lock()
	models = append(models, "b:latest")
	holding = nil
	mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- e.Recheck(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Recheck returned (%v) while the round begun before it still ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(h)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := listed(); len(got) != 2 {
		t.Fatalf("after Recheck the routes list %v, want a and b", got)
	}

	// A deadline bounds the wait.
	cancel()
	wg.Wait()
	short, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stop()
	if err := e.Recheck(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recheck with no health loop = %v, want the deadline", err)
	}
}
