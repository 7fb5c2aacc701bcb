package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFailCount(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"ollama 503", "/api/chat", userChat("llama3.2:1b", "hi"), 503, func(t *testing.T, body []byte) {
			var e apiErrorBody
			strictDecode(t, body, &e)
			if e.Error != "server busy, please try again.  maximum pending requests exceeded" {
				t.Errorf("error %q", e.Error)
			}
		}},
		{"ollama 500", "/api/generate", map[string]any{"model": "llama3.2:1b", "prompt": "x"}, 500, func(t *testing.T, body []byte) {
			var e apiErrorBody
			strictDecode(t, body, &e)
			if e.Error != "llama runner process has terminated: exit status 2" {
				t.Errorf("error %q", e.Error)
			}
		}},
		{"openai 503", "/v1/chat/completions", userChat("llama3.2:1b", "hi"), 503, func(t *testing.T, body []byte) {
			var e oaiError
			strictDecode(t, body, &e)
			if e.Error.Type != "api_error" || !strings.HasPrefix(e.Error.Message, "server busy") {
				t.Errorf("error %+v", e.Error)
			}
		}},
		{"embed 503", "/api/embed", map[string]any{"model": "llama3.2:1b", "input": "x"}, 503, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startSim(t)
			ts.setConfig(t, `{"fail_count":2,"fail_status":`+map[int]string{500: "500", 503: "503"}[tt.status]+`}`)
			for i := range 2 {
				resp := ts.do(t, http.MethodPost, tt.path, tt.body)
				body := readAll(t, resp)
				if resp.StatusCode != tt.status {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
				if tt.check != nil {
					tt.check(t, body)
				}
			}
			resp := ts.do(t, http.MethodPost, tt.path, tt.body)
			readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Errorf("third request: %d", resp.StatusCode)
			}
			var cfg simConfig
			ts.call(t, http.MethodGet, "/_sim/config", nil, 200, &cfg)
			if cfg.FailCount != 0 {
				t.Errorf("fail_count left %d", cfg.FailCount)
			}
			if st := ts.stats(t); st.Faults["fail"] != 2 {
				t.Errorf("faults %v", st.Faults)
			}
		})
	}
}

func TestFailRateIsSeeded(t *testing.T) {
	pattern := func(ts *testSim) string {
		var b strings.Builder
		for range 30 {
			resp := ts.do(t, http.MethodPost, "/api/embed", map[string]any{"model": "llama3.2:1b", "input": "x"})
			readAll(t, resp)
			if resp.StatusCode == 200 {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a := startSim(t)
	a.setConfig(t, `{"fail_rate":0.5,"seed":42}`)
	first := pattern(a)
	a.setConfig(t, `{"seed":42}`)
	if again := pattern(a); again != first {
		t.Errorf("reseeding changed the pattern: %s vs %s", first, again)
	}
	b := startSim(t)
	b.setConfig(t, `{"fail_rate":0.5,"seed":42}`)
	if other := pattern(b); other != first {
		t.Errorf("same seed, other instance: %s vs %s", first, other)
	}
	if !strings.Contains(first, "x") || !strings.Contains(first, ".") {
		t.Errorf("pattern %s", first)
	}
}

func TestCutAfterTokens(t *testing.T) {
	ts := startSim(t)
	ts.setConfig(t, `{"cut_after_tokens":2}`)

	// NDJSON: two token chunks, then the connection drops; no done chunk.
	resp := ts.do(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "options", map[string]any{"num_predict": 5}))
	r := bufio.NewReader(resp.Body)
	var chunks int
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("stream ended with %v, want an abrupt close", err)
			}
			break
		}
		var c apiChatResponse
		strictDecode(t, line, &c)
		if c.Done {
			t.Fatalf("cut stream has a done chunk: %s", line)
		}
		chunks++
	}
	resp.Body.Close()
	if chunks != 2 {
		t.Errorf("%d chunks before the cut, want 2", chunks)
	}

	// SSE: two events, no [DONE].
	resp = ts.do(t, http.MethodPost, "/v1/chat/completions", with(userChat("llama3.2:1b", "hi"), "stream", true))
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("SSE stream ended cleanly")
	}
	if n := strings.Count(string(data), "data: "); n != 2 || strings.Contains(string(data), "[DONE]") {
		t.Errorf("SSE before the cut: %q", data)
	}

	// Non-streaming: no answer at all.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/chat", strings.NewReader(`{"model":"llama3.2:1b","stream":false,"messages":[{"role":"user","content":"hi"}]}`))
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("non-streaming cut answered %d", resp.StatusCode)
	}

	// Fewer tokens than the cut: completes.
	var c apiChatResponse
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "options", map[string]any{"num_predict": 1}), 200, &c)
	if st := ts.stats(t); st.Faults["cut"] != 3 {
		t.Errorf("faults %v", st.Faults)
	}
}

func TestHangRespectsClientCancel(t *testing.T) {
	ts := startSim(t)
	ts.setConfig(t, `{"hang":true}`)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/api/chat", strings.NewReader(`{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}`))
	start := time.Now()
	resp, err := ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("hang answered %d", resp.StatusCode)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Errorf("returned after %v", time.Since(start))
	}
	waitFor(t, func() bool { return ts.stats(t).InFlight == 0 })
	if st := ts.stats(t); st.Faults["hang"] != 1 {
		t.Errorf("faults %v", st.Faults)
	}

	// Control endpoints and other APIs still answer.
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, nil)

	// Shutdown ends a hanging request too.
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(`{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}`))
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return ts.stats(t).InFlight == 1 })
	ts.s.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Errorf("hanging request answered after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the hanging request")
	}
}

func TestExitAfterRequests(t *testing.T) {
	ts := startSim(t)
	ts.setConfig(t, `{"exit_after_requests":2}`)
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false), 200, nil)
	select {
	case <-ts.exits:
		t.Fatal("exited after one request")
	case <-time.After(50 * time.Millisecond):
	}
	var c oaiChatCompletion
	ts.call(t, http.MethodPost, "/v1/chat/completions", userChat("llama3.2:1b", "hi"), 200, &c)
	if c.Usage.CompletionTokens != 16 {
		t.Errorf("the last request must complete: %+v", c)
	}
	expectExit(t, ts)
}

func TestExitAfterTokensMidStream(t *testing.T) {
	ts := startSim(t)
	ts.setConfig(t, `{"exit_after_tokens":3}`)
	resp := ts.do(t, http.MethodPost, "/api/generate", map[string]any{"model": "llama3.2:1b", "prompt": "x"})
	dec := json.NewDecoder(resp.Body)
	var got int
	for {
		var g apiGenerateResponse
		if err := dec.Decode(&g); err != nil {
			break
		}
		if g.Done {
			t.Fatal("stream finished despite the exit")
		}
		got++
	}
	resp.Body.Close()
	if got != 3 {
		t.Errorf("%d tokens before the exit, want 3", got)
	}
	expectExit(t, ts)
}

func TestSimExit(t *testing.T) {
	ts := startSim(t)
	ts.call(t, http.MethodPost, "/_sim/exit", nil, 200, nil)
	expectExit(t, ts)
}

func expectExit(t *testing.T, ts *testSim) {
	t.Helper()
	select {
	case code := <-ts.exits:
		if code != 1 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no exit")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
