package main

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

func loadedNames(t *testing.T, ts *testSim) []string {
	t.Helper()
	var ps apiProcessResponse
	ts.call(t, http.MethodGet, "/api/ps", nil, 200, &ps)
	var out []string
	for _, m := range ps.Models {
		out = append(out, m.Name)
	}
	slices.Sort(out)
	return out
}

func TestKeepAliveExpiry(t *testing.T) {
	clk := newFakeClock()
	ts := startSim(t, withClock(clk), withConfig(func(c *config) { c.KeepAlive = 30 * time.Second }))

	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "keep_alive", "1m"), 200, nil)
	ts.call(t, http.MethodPost, "/api/generate", map[string]any{"model": "qwen2.5:0.5b", "prompt": "hi", "stream": false}, 200, nil)
	if got := loadedNames(t, ts); !slices.Equal(got, []string{"llama3.2:1b", "qwen2.5:0.5b"}) {
		t.Fatalf("loaded %v", got)
	}
	clk.Advance(31 * time.Second) // past OLLAMA_KEEP_ALIVE, within the request's 1m
	if got := loadedNames(t, ts); !slices.Equal(got, []string{"llama3.2:1b"}) {
		t.Fatalf("after 31s: %v", got)
	}
	// A request without keep_alive keeps the one given before.
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false), 200, nil)
	clk.Advance(59 * time.Second)
	if got := loadedNames(t, ts); len(got) != 1 {
		t.Fatalf("after 59s: %v", got)
	}
	clk.Advance(2 * time.Second)
	if got := loadedNames(t, ts); len(got) != 0 {
		t.Fatalf("after 61s: %v", got)
	}
	if st := ts.stats(t); st.Loads != 2 || st.Unloads != 2 || st.Evictions != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestKeepAliveShortRealTime(t *testing.T) {
	ts := startSim(t)
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "keep_alive", "100ms"), 200, nil)
	if got := loadedNames(t, ts); len(got) != 1 {
		t.Fatalf("loaded %v", got)
	}
	time.Sleep(150 * time.Millisecond)
	if got := loadedNames(t, ts); len(got) != 0 {
		t.Fatalf("still loaded after keep-alive: %v", got)
	}
	// keep_alive 0 on a real request unloads when it ends.
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "keep_alive", 0), 200, nil)
	if got := loadedNames(t, ts); len(got) != 0 {
		t.Fatalf("keep_alive 0 left %v", got)
	}
}

func TestVRAMEvictsLeastRecentlyUsed(t *testing.T) {
	clk := newFakeClock()
	ts := startSim(t, withClock(clk), withConfig(func(c *config) {
		c.Presets = []string{"llama3.2:1b", "qwen2.5:0.5b", "tinyllama"}
		c.Sim.VRAMBytes = 1_800_000_000
	}))
	chat := func(model string) {
		ts.call(t, http.MethodPost, "/api/chat", with(userChat(model, "hi"), "stream", false), 200, nil)
		clk.Advance(time.Second)
	}
	chat("llama3.2:1b")  // 1.32 GB
	chat("qwen2.5:0.5b") // 0.40 GB: fits beside it
	if got := loadedNames(t, ts); !slices.Equal(got, []string{"llama3.2:1b", "qwen2.5:0.5b"}) {
		t.Fatalf("loaded %v", got)
	}
	chat("qwen2.5:0.5b") // now llama3.2:1b is least recently used
	chat("tinyllama")    // 0.64 GB: llama3.2:1b goes
	if got := loadedNames(t, ts); !slices.Equal(got, []string{"qwen2.5:0.5b", "tinyllama:latest"}) {
		t.Fatalf("after eviction %v", got)
	}
	if st := ts.stats(t); st.Evictions != 1 || st.Loads != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestPartialOffload(t *testing.T) {
	ts := startSim(t)
	ts.call(t, http.MethodPost, "/api/pull", map[string]any{"model": "llama3.1:70b", "stream": false}, 200, nil)
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false), 200, nil)
	ts.call(t, http.MethodPost, "/api/chat", map[string]any{"model": "llama3.1:70b"}, 200, nil)
	var ps apiProcessResponse
	ts.call(t, http.MethodGet, "/api/ps", nil, 200, &ps)
	if len(ps.Models) != 1 {
		t.Fatalf("ps %+v", ps.Models)
	}
	m := ps.Models[0]
	if m.Name != "llama3.1:70b" || m.Size != 42520413916 || m.SizeVRAM != 16<<30 {
		t.Errorf("70b: size %d vram %d", m.Size, m.SizeVRAM)
	}
}

func TestLoadWaitsForBusyModel(t *testing.T) {
	ts := startSim(t, withConfig(func(c *config) {
		c.Sim.VRAMBytes = 1_500_000_000 // one of the two presets at a time
		c.MaxQueue = 1
	}))
	ts.setConfig(t, `{"token_interval":"20ms"}`)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "options", map[string]any{"num_predict": 10}), 200, nil)
	}()
	waitFor(t, func() bool { return ts.stats(t).InFlightByModel["llama3.2:1b"] == 1 })

	var other apiChatResponse
	wg.Add(1)
	go func() {
		defer wg.Done()
		ts.call(t, http.MethodPost, "/api/chat", with(userChat("qwen2.5:0.5b", "hi"), "stream", false, "options", map[string]any{"num_predict": 1}), 200, &other)
	}()
	waitFor(t, func() bool { return ts.stats(t).InFlightByModel["qwen2.5:0.5b"] == 1 })

	// OLLAMA_MAX_QUEUE=1: a second waiter is turned away.
	var e apiErrorBody
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("qwen2.5:0.5b", "hi"), "stream", false), 503, &e)
	if e.Error != "server busy, please try again.  maximum pending requests exceeded" {
		t.Errorf("queue full: %q", e.Error)
	}
	wg.Wait()
	// llama3.2:1b generates for about 200ms; qwen waited for it to end.
	if other.LoadDuration < 100*time.Millisecond {
		t.Errorf("load_duration %v does not include the wait for room", other.LoadDuration)
	}
	if got := loadedNames(t, ts); !slices.Equal(got, []string{"qwen2.5:0.5b"}) {
		t.Errorf("loaded %v", got)
	}
}

func TestNumParallel(t *testing.T) {
	run := func(parallel int) time.Duration {
		ts := startSim(t, withConfig(func(c *config) { c.NumParallel = parallel }))
		ts.setConfig(t, `{"token_interval":"40ms"}`)
		ts.call(t, http.MethodPost, "/api/chat", map[string]any{"model": "llama3.2:1b"}, 200, nil)
		var wg sync.WaitGroup
		totals := make([]time.Duration, 2)
		for i := range totals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c apiChatResponse
				ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "options", map[string]any{"num_predict": 5}), 200, &c)
				totals[i] = c.TotalDuration
			}()
		}
		wg.Wait()
		return max(totals[0], totals[1])
	}
	// Each generation takes about 160ms.
	if got := run(1); got < 300*time.Millisecond {
		t.Errorf("OLLAMA_NUM_PARALLEL=1: slowest took %v, want the second to queue (>= 300ms)", got)
	}
	if got := run(2); got >= 300*time.Millisecond {
		t.Errorf("OLLAMA_NUM_PARALLEL=2: slowest took %v, want both at once", got)
	}
}

func TestContextLength(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*config)
		model   string
		options map[string]any
		want    int
	}{
		{"default by vram", nil, "llama3.2:1b", nil, 4096},
		{"24GiB of vram", func(c *config) { c.Sim.VRAMBytes = 24 << 30 }, "llama3.2:1b", nil, 32768},
		{"OLLAMA_CONTEXT_LENGTH", func(c *config) { c.ContextLength = 8192 }, "llama3.2:1b", nil, 8192},
		{"num_ctx", nil, "llama3.2:1b", map[string]any{"num_ctx": 2048}, 2048},
		{"capped by the model", func(c *config) { c.ContextLength = 65536 }, "qwen2.5:0.5b", nil, 32768},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []simOption
			if tt.cfg != nil {
				opts = append(opts, withConfig(tt.cfg))
			}
			ts := startSim(t, opts...)
			ts.call(t, http.MethodPost, "/api/generate", map[string]any{"model": tt.model, "options": tt.options}, 200, nil)
			var ps apiProcessResponse
			ts.call(t, http.MethodGet, "/api/ps", nil, 200, &ps)
			if len(ps.Models) != 1 || ps.Models[0].ContextLength != tt.want {
				t.Errorf("ps %+v, want context_length %d", ps.Models, tt.want)
			}
		})
	}
}
