package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock makes delays instant: Sleep moves time forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
}

// testSim is a simulator behind httptest.
type testSim struct {
	*httptest.Server
	s     *server
	exits chan int
}

type simOption func(*config, *deps)

func withClock(c clock) simOption  { return func(_ *config, d *deps) { d.clock = c } }
func withDir(dir string) simOption { return func(c *config, _ *deps) { c.ModelsDir = dir } }
func withConfig(f func(*config)) simOption {
	return func(c *config, _ *deps) { f(c) }
}

// startSim starts a simulator on a fresh models directory with the default
// presets (llama3.2:1b, qwen2.5:0.5b).
func startSim(t *testing.T, opts ...simOption) *testSim {
	t.Helper()
	cfg, err := loadConfig(func(string) (string, bool) { return "", false }, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ModelsDir = t.TempDir()
	exits := make(chan int, 10)
	d := deps{
		exit:     func(code int) { exits <- code },
		logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		instance: "test",
	}
	for _, o := range opts {
		o(&cfg, &d)
	}
	s, err := newServer(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return &testSim{Server: ts, s: s, exits: exits}
}

// do sends a request with a JSON body (a string is sent as is).
func (ts *testSim) do(t *testing.T, method, path string, body any) *http.Response {
	t.Helper()
	return ts.doCtx(t, context.Background(), method, path, body)
}

func (ts *testSim) doCtx(t *testing.T, ctx context.Context, method, path string, body any) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// call sends a request and decodes a JSON answer strictly into out,
// checking the status.
func (ts *testSim) call(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	resp := ts.do(t, method, path, body)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, data)
	}
	if out != nil {
		strictDecode(t, data, out)
	}
}

func (ts *testSim) setConfig(t *testing.T, patch string) {
	t.Helper()
	ts.call(t, http.MethodPost, "/_sim/config", patch, http.StatusOK, nil)
}

func (ts *testSim) stats(t *testing.T) statsSnapshot {
	t.Helper()
	var st statsSnapshot
	ts.call(t, http.MethodGet, "/_sim/stats", nil, http.StatusOK, &st)
	return st
}

// strictDecode fails on fields the target does not declare, so that the
// mirrors of Ollama's types catch any extra or renamed field.
func strictDecode(t *testing.T, data []byte, out any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("decode %T: %v\n%s", out, err, data)
	}
}

// ndjsonLines splits an NDJSON body.
func ndjsonLines(t *testing.T, body io.Reader) [][]byte {
	t.Helper()
	var lines [][]byte
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// sseEvents splits an SSE body into its data payloads.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(string(body), "\n\n") {
		if ev == "" {
			continue
		}
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("bad SSE event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func userChat(model, content string) map[string]any {
	return map[string]any{
		"model":    model,
		"messages": []map[string]string{{"role": "user", "content": content}},
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestRootAndVersion(t *testing.T) {
	ts := startSim(t, withConfig(func(c *config) { c.Version = "9.9.9" }))

	resp := ts.do(t, http.MethodGet, "/", nil)
	if body := string(readAll(t, resp)); resp.StatusCode != 200 || body != "Ollama is running" {
		t.Errorf("GET / = %d %q", resp.StatusCode, body)
	}
	resp = ts.do(t, http.MethodHead, "/", nil)
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Errorf("HEAD / = %d", resp.StatusCode)
	}
	var v struct {
		Version string `json:"version"`
	}
	ts.call(t, http.MethodGet, "/api/version", nil, 200, &v)
	if v.Version != "9.9.9" {
		t.Errorf("version = %q", v.Version)
	}
	resp = ts.do(t, http.MethodGet, "/nope", nil)
	readAll(t, resp)
	if resp.StatusCode != 404 {
		t.Errorf("GET /nope = %d", resp.StatusCode)
	}
}
