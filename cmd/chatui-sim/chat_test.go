package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeOpenAI is an OpenAI-compatible upstream that checks what the
// simulator sends and streams three chunks and [DONE]. Before each chunk
// after the first it waits for next, so a test can prove each chunk was
// flushed through before the next one exists.
type fakeOpenAI struct {
	t          *testing.T
	key        string
	wantHeader map[string]string // headers the chat request must carry; "" = absent
	next       chan struct{}
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"invalid api key","type":"invalid_request_error"}}`)
		return
	}
	switch r.URL.Path {
	case "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"llama3.2:1b","object":"model"}]}`)
	case "/v1/chat/completions":
		f.chat(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeOpenAI) chat(w http.ResponseWriter, r *http.Request) {
	for k, v := range f.wantHeader {
		if got := r.Header.Get(k); got != v {
			f.t.Errorf("upstream header %s = %q, want %q", k, got, v)
		}
	}
	var req upstreamChat
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("upstream body: %v", err)
	}
	if !req.Stream || req.Model != "llama3.2:1b" || len(req.Messages) != 1 ||
		req.Messages[0] != (upstreamMessage{Role: "user", Content: "say hi"}) {
		f.t.Errorf("upstream request %+v", req)
	}
	if r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("upstream Content-Type %q", r.Header.Get("Content-Type"))
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i, word := range []string{"Hel", "lo", "!"} {
		if i > 0 && f.next != nil {
			select {
			case <-f.next:
			case <-time.After(5 * time.Second):
				f.t.Errorf("chunk %d: the test did not see chunk %d", i, i-1)
			}
		}
		// \r\n line ends, as some servers send them.
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\r\n\r\n", word)
		rc.Flush()
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

func TestChatStreams(t *testing.T) {
	tests := []struct {
		name       string
		role, base string
		body       string
		wantHeader map[string]string
	}{
		{
			name: "open-webui forwards the user", role: "open-webui", base: "OPENAI_API_BASE_URL",
			body: `{"model":"llama3.2:1b","user":"ann@example.com","prompt":"say hi"}`,
			wantHeader: map[string]string{
				"X-OpenWebUI-User-Name":  "ann",
				"X-OpenWebUI-User-Id":    userID("ann@example.com"),
				"X-OpenWebUI-User-Email": "ann@example.com",
				"X-OpenWebUI-User-Role":  "user",
				"Accept":                 "text/event-stream",
			},
		},
		{
			name: "overrides", role: "open-webui", base: "OPENAI_API_BASE_URL",
			body: `{"model":"llama3.2:1b","user":"bob@example.com","prompt":"say hi","user_id":"u-1","user_name":"Bob B","user_role":"admin"}`,
			wantHeader: map[string]string{
				"X-OpenWebUI-User-Name":  "Bob B",
				"X-OpenWebUI-User-Id":    "u-1",
				"X-OpenWebUI-User-Email": "bob@example.com",
				"X-OpenWebUI-User-Role":  "admin",
			},
		},
		{
			name: "no user, no headers", role: "open-webui", base: "OPENAI_API_BASE_URL",
			body:       `{"model":"llama3.2:1b","prompt":"say hi"}`,
			wantHeader: map[string]string{"X-OpenWebUI-User-Email": "", "X-OpenWebUI-User-Id": ""},
		},
		{
			name: "lobechat", role: "lobechat", base: "OPENAI_PROXY_URL",
			body:       `{"model":"llama3.2:1b","user":"ann@example.com","prompt":"say hi"}`,
			wantHeader: map[string]string{"X-OpenWebUI-User-Email": "ann@example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeOpenAI{t: t, key: "sk-corral", wantHeader: tt.wantHeader, next: make(chan struct{})}
			up := httptest.NewServer(fake)
			defer up.Close()
			_, ts := newTestServer(t, "SIM_ROLE="+tt.role, "SIM_DATA_DIR=", tt.base+"="+up.URL+"/v1", "OPENAI_API_KEY=sk-corral")

			resp, err := http.Post(ts.URL+"/chat", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			events := readEvents(t, resp.Body, func(n int) {
				if n < 3 {
					fake.next <- struct{}{} // event n arrived before the upstream wrote n+1
				}
			})
			want := []string{
				`data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"}}]}`,
				`data: {"id":"c1","choices":[{"index":0,"delta":{"content":"lo"}}]}`,
				`data: {"id":"c1","choices":[{"index":0,"delta":{"content":"!"}}]}`,
				`data: [DONE]`,
			}
			if strings.Join(events, "|") != strings.Join(want, "|") {
				t.Errorf("events\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// readEvents reads SSE events to the end of r, calling seen with the count
// after each.
func readEvents(t *testing.T, r io.Reader, seen func(int)) []string {
	t.Helper()
	var events []string
	var cur []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == "" {
			events = append(events, strings.Join(cur, "\n"))
			cur = nil
			seen(len(events))
			continue
		}
		cur = append(cur, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cur) > 0 {
		t.Errorf("unterminated event %q", cur)
	}
	return events
}

func TestChatErrors(t *testing.T) {
	up := httptest.NewServer(&fakeOpenAI{t: t, key: "sk-corral"})
	defer up.Close()
	tests := []struct {
		name     string
		env      []string
		body     string
		want     int
		wantBody string
	}{
		{"wrong key passed through", []string{"OPENAI_API_BASE_URL=" + up.URL + "/v1", "OPENAI_API_KEY=sk-wrong"},
			`{"model":"m","prompt":"p"}`, http.StatusUnauthorized, "invalid api key"},
		{"upstream 404 passed through", []string{"OPENAI_API_BASE_URL=" + up.URL + "/nope", "OPENAI_API_KEY=sk-corral"},
			`{"model":"m","prompt":"p"}`, http.StatusNotFound, "404 page not found"},
		{"no upstream", nil, `{"model":"m","prompt":"p"}`, http.StatusServiceUnavailable, "OPENAI_API_BASE_URL is not set"},
		{"lobechat no upstream", []string{"SIM_ROLE=lobechat", "OPENAI_API_BASE_URL=http://x"},
			`{"model":"m","prompt":"p"}`, http.StatusServiceUnavailable, "OPENAI_PROXY_URL is not set"},
		{"upstream down", []string{"OPENAI_API_BASE_URL=http://127.0.0.1:1/v1"}, `{"model":"m","prompt":"p"}`, http.StatusBadGateway, "upstream"},
		{"no model", []string{"OPENAI_API_BASE_URL=" + up.URL}, `{"prompt":"p"}`, http.StatusBadRequest, "model is required"},
		{"not JSON", []string{"OPENAI_API_BASE_URL=" + up.URL}, `model=m`, http.StatusBadRequest, "decode body"},
		{"body too large", []string{"OPENAI_API_BASE_URL=" + up.URL}, `{"model":"` + strings.Repeat("m", maxBody) + `"}`,
			http.StatusRequestEntityTooLarge, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newTestServer(t, append(tt.env, "SIM_DATA_DIR=")...)
			status, body := do(t, http.MethodPost, ts.URL+"/chat", strings.NewReader(tt.body))
			if status != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %q", status, body, tt.want, tt.wantBody)
			}
		})
	}
}

func TestChatUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer up.Close()
	defer close(release)
	cfg, err := loadConfig([]string{"OPENAI_API_BASE_URL=" + up.URL, "SIM_DATA_DIR="}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UpstreamTimeout = 100 * time.Millisecond
	s, err := newServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	status, body := do(t, http.MethodPost, ts.URL+"/chat", strings.NewReader(`{"model":"m","prompt":"p"}`))
	if status != http.StatusGatewayTimeout {
		t.Errorf("got %d %s, want 504", status, body)
	}
}

func TestModels(t *testing.T) {
	up := httptest.NewServer(&fakeOpenAI{t: t, key: "sk-corral"})
	defer up.Close()
	tests := []struct {
		name, role, base, key string
		want                  int
		wantBody              string
	}{
		{"lobechat", "lobechat", "OPENAI_PROXY_URL", "sk-corral", http.StatusOK, `"llama3.2:1b"`},
		{"open-webui", "open-webui", "OPENAI_API_BASE_URL", "sk-corral", http.StatusOK, `"llama3.2:1b"`},
		{"wrong key", "lobechat", "OPENAI_PROXY_URL", "sk-other", http.StatusUnauthorized, "invalid api key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newTestServer(t, "SIM_ROLE="+tt.role, "SIM_DATA_DIR=", tt.base+"="+up.URL+"/v1", "OPENAI_API_KEY="+tt.key)
			status, body := do(t, http.MethodGet, ts.URL+"/models", nil)
			if status != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %s", status, body, tt.want, tt.wantBody)
			}
		})
	}
}

func TestRelayEvents(t *testing.T) {
	tests := []struct {
		name, in, want string
		events         int
	}{
		{"plain", "data: a\n\ndata: b\n\n", "data: a\n\ndata: b\n\n", 2},
		{"crlf", "data: a\r\n\r\n", "data: a\n\n", 1},
		{"multi-line event", "event: x\ndata: a\ndata: b\n\n", "event: x\ndata: a\ndata: b\n\n", 1},
		{"extra blank lines", "\n\ndata: a\n\n\n\n", "data: a\n\n", 1},
		{"no final blank line", "data: a\n\ndata: [DONE]", "data: a\n\ndata: [DONE]\n\n", 2},
		{"comment", ": keep-alive\n\n", ": keep-alive\n\n", 1},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			flushes := 0
			n, err := relayEvents(strings.NewReader(tt.in), &out, func() error { flushes++; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want || n != tt.events || flushes != tt.events {
				t.Errorf("got %q, %d events, %d flushes; want %q, %d", out.String(), n, flushes, tt.want, tt.events)
			}
		})
	}
}

// FuzzRelayEvents checks that relaying keeps every non-blank line, in
// order, and ends with a complete event.
func FuzzRelayEvents(f *testing.F) {
	f.Add("data: a\r\n\r\ndata: [DONE]\n\n")
	f.Add("event: x\ndata: 1\n\n\n: c\n")
	f.Add("\r\r\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		if _, err := relayEvents(strings.NewReader(in), &out, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if out.Len() > 0 && !strings.HasSuffix(out.String(), "\n\n") {
			t.Errorf("output %q does not end an event", out.String())
		}
		if got, want := nonBlankLines(out.String(), false), nonBlankLines(in, true); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("lines %q, want %q", got, want)
		}
	})
}

// nonBlankLines splits s at "\n"; with crlf, a "\r" before the "\n"
// belongs to the line end.
func nonBlankLines(s string, crlf bool) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if crlf {
			l = strings.TrimSuffix(l, "\r")
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestUserID(t *testing.T) {
	id := userID("ann@example.com")
	if len(id) != 36 || id[14] != '8' || !strings.ContainsAny(id[19:20], "89ab") {
		t.Errorf("userID = %s, want a version 8 UUID", id)
	}
	if id != userID("ann@example.com") || id == userID("bob@example.com") {
		t.Error("userID is not a function of the email")
	}
}
