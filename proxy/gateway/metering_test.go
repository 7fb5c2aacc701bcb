package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeMeter struct {
	mu       sync.Mutex
	reserved []int
	settled  []Usage
	refuse   error
}

type fakeResv struct{ m *fakeMeter }

func (r fakeResv) Settle(u Usage) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.settled = append(r.m.settled, u)
}

func (m *fakeMeter) Reserve(_ context.Context, key, model string, maxTokens int) (Reservation, error) {
	if m.refuse != nil {
		return nil, m.refuse
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserved = append(m.reserved, maxTokens)
	return fakeResv{m}, nil
}

type limitErr struct{}

func (limitErr) Error() string             { return "tokens per day limit of 100 reached for key tester" }
func (limitErr) RetryAfter() time.Duration { return 90 * time.Second }

// openAIStream answers like Ollama's OpenAI layer: a usage chunk only when
// the request asked for it.
func openAIStream(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Stream        bool `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	if !req.Stream {
		io.WriteString(w, `{"choices":[{"message":{"content":"a b"}}],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, c := range []string{"a ", "b "} {
		fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", c)
	}
	fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n\n")
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func TestMeteringCountsAndUsageChunk(t *testing.T) {
	up := upstream(t, "i0", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			openAIStream(w, r)
			return
		}
		ollamaChat(3)(w, r)
	}, "m:latest")
	meter := &fakeMeter{}
	_, _, srv := newTestGateway(t, Config{Meter: meter, DefaultMaxTokens: 1000}, up)
	cases := []struct {
		name, path, body string
		wantUsageChunk   bool
		prompt, compl    int
		reserved         int
	}{
		// Reserved: max tokens (or the default) plus a quarter of the body.
		{"sse without include_usage", "/v1/chat/completions", `{"model":"m","stream":true,"max_tokens":50}`, false, 4, 2, 50 + 10},
		{"sse with include_usage", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, true, 4, 2, 1000 + 16},
		{"openai whole", "/v1/chat/completions", `{"model":"m"}`, false, 4, 2, 1000 + 3},
		{"ndjson", "/api/chat", `{"model":"m","options":{"num_predict":3}}`, false, 3, 3, 3 + 10},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer good")
			req.Header.Set("X-OpenWebUI-User-Email", "ann@example.com")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if got := strings.Contains(body, `"usage"`) && strings.Contains(body, `"choices":[]`); got != tc.wantUsageChunk {
				t.Fatalf("usage chunk present = %v, want %v:\n%s", got, tc.wantUsageChunk, body)
			}
			// Settling follows the last byte to the client.
			deadline := time.Now().Add(2 * time.Second)
			meter.mu.Lock()
			for len(meter.settled) <= i && time.Now().Before(deadline) {
				meter.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				meter.mu.Lock()
			}
			defer meter.mu.Unlock()
			u := meter.settled[i]
			if !u.CountsKnown || u.PromptTokens != tc.prompt || u.CompletionTokens != tc.compl || u.Key != "tester" || u.User != "ann@example.com" || u.Status != 200 || u.Instance != "i0" {
				t.Fatalf("settled %+v", u)
			}
			if meter.reserved[i] != tc.reserved {
				t.Fatalf("reserved %d, want %d", meter.reserved[i], tc.reserved)
			}
		})
	}
}

func TestQuotaRefusal(t *testing.T) {
	up := upstream(t, "i0", ollamaChat(1), "m:latest")
	_, _, srv := newTestGateway(t, Config{Meter: &fakeMeter{refuse: limitErr{}}}, up)
	resp := post(t, srv, "/v1/chat/completions", "good", `{"model":"m"}`)
	body := readAll(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "90" || !strings.Contains(body, "tokens per day limit of 100") || !strings.Contains(body, `"type":"rate_limit_error"`) {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

type countingObserver struct {
	mu                                sync.Mutex
	attempts, observed, retries, hits int
}

func (o *countingObserver) Attempt(string, string, string) { o.mu.Lock(); o.attempts++; o.mu.Unlock() }
func (o *countingObserver) Observe(Usage)                  { o.mu.Lock(); o.observed++; o.mu.Unlock() }
func (o *countingObserver) Retry(string)                   { o.mu.Lock(); o.retries++; o.mu.Unlock() }
func (o *countingObserver) FilterHit(string)               { o.mu.Lock(); o.hits++; o.mu.Unlock() }

func TestContentFilter(t *testing.T) {
	up := upstream(t, "i0", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range []string{"the sec", "ret plan", " is"} {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", c)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}, "m:latest")
	obs := &countingObserver{}
	_, _, srv := newTestGateway(t, Config{Filter: phraseFilter("secret"), Observer: obs}, up)
	resp := post(t, srv, "/v1/chat/completions", "good", `{"model":"m","messages":[{"role":"user","content":"tell me the secret"}]}`)
	if body := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(body, "content filter") {
		t.Fatalf("prompt: %d %s", resp.StatusCode, body)
	}
	body := readAll(t, post(t, srv, "/v1/chat/completions", "good", `{"model":"m","stream":true}`))
	if strings.Contains(body, "ret plan") || !strings.Contains(body, `"code":"content_filter"`) || strings.Contains(body, "[DONE]") {
		t.Fatalf("output: %s", body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		obs.mu.Lock()
		n := obs.observed
		obs.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.hits != 2 || obs.observed != 1 {
		t.Fatalf("observer: %+v", obs)
	}
}

func TestWithUsage(t *testing.T) {
	cases := []string{
		`{"model":"m","stream":true}`,
		` {}`,
		`{"model":"m","stream_options":{"include_usage":false}}`,
		`{"model":"m","stream_options":null}`,
		`{ "model" : "m", "messages": [{"content":"{\"stream_options\":1}"}] }`,
	}
	for _, in := range cases {
		out := withUsage([]byte(in))
		var v struct {
			Model         string `json:"model"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.Unmarshal(out, &v); err != nil || !v.StreamOptions.IncludeUsage {
			t.Errorf("withUsage(%s) = %s (%v)", in, out, err)
		}
	}
}

func TestEstimatePromptTokens(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"chat text", `{"messages":[{"role":"system","content":"12345678"},{"role":"user","content":"1234"}]}`, 3},
		{"parts: text counts, images do not", `{"messages":[{"role":"user","content":[{"type":"text","text":"12345678"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("A", 4000) + `"}}]}]}`, 2},
		{"ollama images field is not text", `{"messages":[{"role":"user","content":"1234","images":["` + strings.Repeat("A", 4000) + `"]}]}`, 1},
		{"generate prompt and system", `{"prompt":"12345678","system":"1234"}`, 3},
		{"completions prompt list", `{"prompt":["1234","12345"]}`, 3},
		{"anthropic system blocks", `{"system":[{"type":"text","text":"12345678"}],"messages":[{"role":"user","content":[{"type":"text","text":"1234"}]}]}`, 3},
		{"responses input string", `{"instructions":"1234","input":"12345678"}`, 3},
		{"responses input items", `{"input":[{"role":"user","content":"1234"},{"type":"message","role":"user","content":[{"type":"input_text","text":"12345678"}]}]}`, 3},
		{"empty", `{}`, 0},
		{"not JSON", `{"messages":`, 0},
	} {
		if got := estimatePromptTokens([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A stream that ends before the instance's counts (the client's Stop, an
// instance dying) still records what was generated, as an estimate.
func TestMeteringEstimatesAStreamCutShort(t *testing.T) {
	const prompt = `"messages":[{"role":"user","content":"twelve chars"}]` // 3 tokens
	for _, tc := range []struct {
		name, path string
		sse        bool
		clientStop bool // else the instance dies
		outcome    string
	}{
		{"ollama, client stops", "/api/chat", false, true, "client gone"},
		{"openai, client stops", "/v1/chat/completions", true, true, "client gone"},
		{"ollama, instance dies", "/api/chat", false, false, "cut: "},
		{"openai, instance dies", "/v1/chat/completions", true, false, "cut: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := upstream(t, "i0", func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				for i := range 3 {
					if tc.sse {
						fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
					} else {
						fmt.Fprintf(w, "{\"message\":{\"content\":\"t%d\"},\"done\":false}\n", i)
					}
					w.(http.Flusher).Flush()
				}
				if !tc.clientStop {
					panic(http.ErrAbortHandler) // the connection drops mid-stream
				}
				<-r.Context().Done()
			}, "m:latest")
			meter := &fakeMeter{}
			_, _, srv := newTestGateway(t, Config{Meter: meter}, up)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+tc.path, strings.NewReader(`{"model":"m","stream":true,`+prompt+`}`))
			req.Header.Set("Authorization", "Bearer good")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(resp.Body)
			for seen := 0; seen < 3; {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("after %d frames: %v", seen, err)
				}
				if strings.Contains(line, `"content"`) {
					seen++
				}
			}
			if tc.clientStop {
				cancel()
			} else {
				io.Copy(io.Discard, br)
			}
			resp.Body.Close()

			settled := meter.waitSettled()
			if len(settled) != 1 {
				t.Fatalf("settled %d times, want 1", len(settled))
			}
			u := settled[0]
			if u.CountsKnown || u.CompletionTokens != 3 || u.PromptTokens != 3 || !strings.HasPrefix(u.Outcome, tc.outcome) {
				t.Fatalf("settled %+v: want 3 completion and 3 prompt tokens, estimated, outcome %q", u, tc.outcome)
			}
		})
	}
}

// A client that leaves once it has its answer's end, while the gateway
// still reads the instance's last bytes, got the whole answer: the
// request counts as a success, with the instance's own counts.
func TestClientLeavingAfterTheEndIsASuccess(t *testing.T) {
	for _, tc := range []struct{ path, last string }{
		{"/v1/chat/completions", "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"},
		{"/api/chat", `{"done":true,"prompt_eval_count":4,"eval_count":2}` + "\n"},
	} {
		release := make(chan struct{})
		var conns atomic.Int32
		us := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, tc.last)
			w.(http.Flusher).Flush()
			select { // the connection's end comes later
			case <-release:
			case <-r.Context().Done():
			}
		}))
		us.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		us.Start()
		t.Cleanup(us.Close)
		up := upstreamAt(t, "i0", us.URL, "m:latest")
		meter := &fakeMeter{}
		_, _, srv := newTestGateway(t, Config{Meter: meter}, up)
		tr := &http.Transport{}
		req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`))
		req.Header.Set("Authorization", "Bearer good")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// The client reads its answer's end and leaves: behind net/http
		// the response's own end waits for the gateway's handler.
		body := make([]byte, len(tc.last))
		if _, err := io.ReadFull(resp.Body, body); err != nil || string(body) != tc.last {
			t.Fatalf("%s: body %q, %v", tc.path, body, err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections() // the client leaves
		time.Sleep(50 * time.Millisecond)
		close(release)

		settled := meter.waitSettled()
		if len(settled) != 1 || settled[0].Outcome != "ok" || !settled[0].CountsKnown || settled[0].PromptTokens != 4 || settled[0].CompletionTokens != 2 {
			t.Fatalf("%s: settled %+v, want one success with the instance's counts", tc.path, settled)
		}
		// The instance's connection was read to its end, so the next
		// request goes on it.
		resp, err = (&http.Client{Transport: tr}).Do(mustRequest(t, srv.URL+tc.path))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := conns.Load(); n != 1 {
			t.Fatalf("%s: %d connections to the instance for two requests in turn, want 1", tc.path, n)
		}
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer good")
	return req
}

// waitSettled waits up to 3 s for a settle (the gateway settles after
// the client has its answer) and returns the settled usages.
func (m *fakeMeter) waitSettled() []Usage {
	deadline := time.Now().Add(3 * time.Second)
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.settled) == 0 && time.Now().Before(deadline) {
		m.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		m.mu.Lock()
	}
	return append([]Usage(nil), m.settled...)
}

// A chat UI's user fields count only on the internal listener: through
// any other, a client naming a user in them is ignored and the OpenAI
// user field is what counts.
func TestUserHeadersTrustedOnlyInternally(t *testing.T) {
	up := upstream(t, "i0", ollamaChat(1), "m:latest")
	meter := &fakeMeter{}
	st := &staticUpstreams{}
	st.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{up}})
	g := New(Config{Meter: meter, Logger: quiet()}, st, keyAuth{})
	defer g.Close()
	for _, tc := range []struct {
		h    http.Handler
		want string
	}{{g, "bob"}, {TrustUserHeaders(g), "ann@example.com"}} {
		req := httptest.NewRequest("POST", "/api/chat", strings.NewReader(`{"model":"m","user":"bob"}`))
		req.Header.Set("Authorization", "Bearer good")
		req.Header.Set("X-OpenWebUI-User-Email", "ann@example.com")
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		// ServeHTTP settles before it returns.
		meter.mu.Lock()
		u := meter.settled[len(meter.settled)-1]
		meter.mu.Unlock()
		if u.User != tc.want {
			t.Errorf("user %q, want %q", u.User, tc.want)
		}
	}
}
