package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recheckUpstreams is a snapshot that a re-check replaces with what the
// instances hold now (next), as the engine's does.
type recheckUpstreams struct {
	staticUpstreams
	next  atomic.Pointer[Snapshot]
	calls atomic.Int32
	delay time.Duration
}

func (u *recheckUpstreams) Recheck(ctx context.Context) error {
	u.calls.Add(1)
	select {
	case <-time.After(u.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	if n := u.next.Load(); n != nil {
		u.s.Store(n)
	}
	return nil
}

func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

// tagNames lists the names in an /api/tags answer.
func tagNames(t *testing.T, body string) []string {
	t.Helper()
	var tags struct {
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(body), &tags); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var out []string
	for _, m := range tags.Models {
		out = append(out, m.Name)
	}
	return out
}

// A model made on an instance behind corral's back is listed and served
// in the same instant, or neither: the lists read the snapshot routing
// reads, and a request for a model the snapshot lacks has the instances
// read again before it is refused.
func TestModelListedAndServedTogether(t *testing.T) {
	up := upstream(t, "i0", ollamaChat(1), "m:latest")
	up.Listed = []Listed{{Name: "m:latest", ModifiedAt: time.Unix(100, 0), Entry: json.RawMessage(`{"name":"m:latest","model":"m:latest","size":7,"details":{"families":["llama"]}}`)}}
	ru := &recheckUpstreams{}
	ru.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{up}})
	g := New(Config{Logger: quiet()}, ru, keyAuth{})
	srv := newServer(t, g)

	// The instance's own entry, every field kept.
	if code, body := get(t, srv+"/api/tags", "good"); code != 200 || !strings.Contains(body, `"details":{"families":["llama"]}`) {
		t.Fatalf("tags %d %s", code, body)
	}
	// Made behind corral's back: the snapshot does not have it yet, so
	// neither the lists nor routing do; a request for it has the
	// instances read again, and then both have it.
	later := up
	later.Models = map[string]bool{"m:latest": true, "new:latest": true}
	later.Listed = append(slices.Clone(up.Listed), Listed{Name: "new:latest", ModifiedAt: time.Unix(200, 0), Entry: json.RawMessage(`{"name":"new:latest","model":"new:latest"}`)})
	ru.next.Store(&Snapshot{Version: 2, Upstreams: []Upstream{later}})
	if _, body := get(t, srv+"/api/tags", "good"); slices.Contains(tagNames(t, body), "new:latest") {
		t.Fatalf("listed before the instances were read again: %s", body)
	}
	if resp := post(t, &testFront{srv}, "/api/chat", "good", `{"model":"new","stream":false}`); resp.StatusCode != 200 {
		t.Fatalf("chat with the new model: %d %s", resp.StatusCode, readAll(t, resp))
	} else {
		readAll(t, resp)
	}
	if n := ru.calls.Load(); n != 1 {
		t.Fatalf("%d re-checks, want 1", n)
	}
	// Newest first, as Ollama sorts.
	if _, body := get(t, srv+"/api/tags", "good"); !slices.Equal(tagNames(t, body), []string{"new:latest", "m:latest"}) {
		t.Fatalf("tags after the re-check: %s", body)
	}
	if code, body := get(t, srv+"/v1/models/new", "good"); code != 200 || !strings.Contains(body, `"id":"new:latest","object":"model","created":200,"owned_by":"library"`) {
		t.Fatalf("model info %d %s", code, body)
	}
	// A model known all along costs no re-check.
	if resp := post(t, &testFront{srv}, "/api/chat", "good", `{"model":"m","stream":false}`); resp.StatusCode != 200 {
		t.Fatalf("chat: %d", resp.StatusCode)
	} else {
		readAll(t, resp)
	}
	if n := ru.calls.Load(); n != 1 {
		t.Fatalf("%d re-checks, want still 1", n)
	}
}

// newServer serves g as the internal listener does, for the test's time.
func newServer(t *testing.T, g *Gateway) string {
	t.Helper()
	srv := httptest.NewServer(TrustUserHeaders(g))
	t.Cleanup(func() { srv.Close(); g.Close() })
	return srv.URL
}

// A flood of requests for a model that exists nowhere re-reads the
// instances once, not once each, and the next re-check waits its turn.
func TestRecheckCoalesced(t *testing.T) {
	up := upstream(t, "i0", ollamaChat(1), "m:latest")
	ru := &recheckUpstreams{delay: 100 * time.Millisecond}
	ru.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{up}})
	g := New(Config{Logger: quiet()}, ru, keyAuth{})
	srv := &testFront{newServer(t, g)}
	var wg sync.WaitGroup
	var notFound atomic.Int32
	for range 50 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"ghost"}`))
			req.Header.Set("Authorization", "Bearer good")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			if body := readAll(t, resp); resp.StatusCode == 404 && strings.Contains(body, "model_not_found") {
				notFound.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ru.calls.Load(); n != 1 {
		t.Fatalf("50 requests for an unknown model re-checked %d times, want 1", n)
	}
	if n := notFound.Load(); n != 50 {
		t.Fatalf("%d of 50 got a 404", n)
	}
	// Right after, the snapshot is fresh: no second re-check, at once.
	start := time.Now()
	resp := post(t, srv, "/api/chat", "good", `{"model":"ghost"}`)
	readAll(t, resp)
	if resp.StatusCode != 404 || ru.calls.Load() != 1 || time.Since(start) > 90*time.Millisecond {
		t.Fatalf("status %d, %d re-checks, took %s", resp.StatusCode, ru.calls.Load(), time.Since(start))
	}
	// A client that leaves stops waiting; the re-check goes on for others.
	time.Sleep(recheckEvery)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/chat", strings.NewReader(`{"model":"ghost"}`))
	req.Header.Set("Authorization", "Bearer good")
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a client with a 20ms deadline: %v", err)
	}
}

// listAuth gives each key a list of models (empty: all).
type listAuth map[string][]string

func (a listAuth) Authorize(_ context.Context, key, model string) (string, error) {
	models, ok := a[key]
	if !ok {
		return "", errors.New("unknown API key")
	}
	if model != "" && len(models) > 0 && !slices.Contains(models, CanonicalModel(model)) {
		return "", forbidden{errors.New("this key may not use " + model)}
	}
	return key, nil
}

// Every list shows a key the models it may use, and only those.
func TestListsPerKey(t *testing.T) {
	ps := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/ps":
			w.Write([]byte(`{"models":[{"name":"a:latest"},{"name":"b:latest"}]}`))
		default:
			ollamaChat(1)(w, r)
		}
	}
	up := upstream(t, "i0", ps, "a:latest", "b:latest", "c:latest")
	st := &staticUpstreams{}
	st.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{up}})
	g := New(Config{Logger: quiet()}, st, listAuth{"all": nil, "ab": {"a:latest", "b:latest"}, "c": {"c:latest"}, "cz": {"c:latest", "zz:latest"}})
	srv := newServer(t, g)
	ids := func(body string) []string {
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		json.Unmarshal([]byte(body), &list)
		var out []string
		for _, d := range list.Data {
			out = append(out, d.ID)
		}
		return out
	}
	for _, tc := range []struct {
		key        string
		models, ps []string
	}{
		{"all", []string{"a:latest", "b:latest", "c:latest"}, []string{"a:latest", "b:latest"}},
		{"ab", []string{"a:latest", "b:latest"}, []string{"a:latest", "b:latest"}},
		{"c", []string{"c:latest"}, nil},
	} {
		_, body := get(t, srv+"/v1/models", tc.key)
		if got := ids(body); !slices.Equal(got, tc.models) {
			t.Errorf("key %s: /v1/models %v, want %v", tc.key, got, tc.models)
		}
		_, body = get(t, srv+"/api/tags", tc.key)
		if got := tagNames(t, body); !slices.Equal(got, tc.models) {
			t.Errorf("key %s: /api/tags %v, want %v", tc.key, got, tc.models)
		}
		_, body = get(t, srv+"/api/ps", tc.key)
		if got := tagNames(t, body); !slices.Equal(got, tc.ps) {
			t.Errorf("key %s: /api/ps %v, want %v", tc.key, got, tc.ps)
		}
	}
	if code, _ := get(t, srv+"/v1/models/a", "c"); code != 403 {
		t.Errorf("key c, model a's info: %d, want 403", code)
	}
	// A 404 names only the models the key may use.
	resp := post(t, &testFront{srv}, "/api/chat", "cz", `{"model":"zz"}`)
	if body := readAll(t, resp); resp.StatusCode != 404 || !strings.Contains(body, "models available: c:latest\"") {
		t.Errorf("404 for key cz: %s", body)
	}
}

func TestCORS(t *testing.T) {
	origins, err := ParseOrigins([]string{"https://App.example.com/", "http://localhost:5173"})
	if err != nil {
		t.Fatal(err)
	}
	up := upstream(t, "i0", ollamaChat(1), "m:latest")
	st := &staticUpstreams{}
	st.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{up}})
	var policy CORS = origins
	for _, tc := range []struct {
		name, origin string
		policy       CORS
		allowed      bool
		acao         string
	}{
		{"listed", "https://app.example.com", policy, true, "https://app.example.com"},
		{"listed with a port", "http://localhost:5173", policy, true, "http://localhost:5173"},
		{"other origin", "https://evil.example", policy, false, ""},
		{"other port", "http://localhost:5174", policy, false, ""},
		{"off", "https://app.example.com", nil, false, ""},
		{"any", "https://anything.example", mustOrigins(t, "*"), true, "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{Logger: quiet(), CORS: tc.policy}, st, keyAuth{})
			srv := newServer(t, g)
			// The preflight: no key, as browsers send it.
			req, _ := http.NewRequest("OPTIONS", srv+"/v1/chat/completions", nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, x-stainless-os")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			h := resp.Header
			if tc.allowed {
				if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != tc.acao ||
					h.Get("Access-Control-Allow-Headers") != "authorization, content-type, x-stainless-os" ||
					!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Max-Age") == "" {
					t.Fatalf("preflight %d %v", resp.StatusCode, h)
				}
			} else if resp.StatusCode != 403 || corsFields(h) {
				t.Fatalf("refused preflight %d %v", resp.StatusCode, h)
			}
			// The request itself, with its key.
			req, _ = http.NewRequest("POST", srv+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Authorization", "Bearer good")
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			h = resp.Header
			if tc.allowed != (h.Get("Access-Control-Allow-Origin") == tc.acao && tc.acao != "") || (!tc.allowed && corsFields(h)) {
				t.Fatalf("request from %s: %v", tc.origin, h)
			}
			if tc.allowed && !strings.Contains(h.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
				t.Fatalf("request id not exposed: %v", h)
			}
			if tc.acao != "*" && tc.policy != nil && !slices.Contains(h.Values("Vary"), "Origin") {
				t.Fatalf("no Vary: Origin: %v", h)
			}
		})
	}
}

func corsFields(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			return true
		}
	}
	return false
}

func mustOrigins(t *testing.T, list ...string) *Origins {
	t.Helper()
	o, err := ParseOrigins(list)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestParseOrigins(t *testing.T) {
	o := mustOrigins(t, " https://A.example.com:443 ", "", "http://b.example:8080/", "https://a.example.com", "http://[::1]:3000")
	if got := o.List(); !slices.Equal(got, []string{"https://a.example.com", "http://b.example:8080", "http://[::1]:3000"}) {
		t.Fatalf("list %v", got)
	}
	if got := mustOrigins(t, "https://a.example", "*").List(); !slices.Equal(got, []string{"*"}) {
		t.Fatalf("with * %v", got)
	}
	if got := mustOrigins(t).List(); got == nil || len(got) != 0 {
		t.Fatalf("empty %v", got)
	}
	for _, bad := range []string{"a.example.com", "ftp://a.example", "https://a.example/path", "https://u@a.example", "null", "https://*.example.com", "https://a.example?x=1", "https://"} {
		if _, err := ParseOrigins([]string{"https://ok.example", bad}); err == nil || !strings.Contains(err.Error(), "scheme://host") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// GET / says what this is without a key, as JSON for programs and text
// for a browser, and names no internal address.
func TestRoot(t *testing.T) {
	up := upstream(t, "i0", ollamaChat(1), "m:latest")
	st := &staticUpstreams{}
	st.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{up}})
	g := New(Config{Logger: quiet(), Version: "v1.2.3"}, st, keyAuth{})
	srv := newServer(t, g)
	code, body := get(t, srv+"/", "")
	var a about
	if err := json.Unmarshal([]byte(body), &a); code != 200 || err != nil || a.Name != "corral" || a.Version != "v1.2.3" ||
		!slices.Contains(a.Endpoints["openai"], "POST /v1/responses") || !slices.Contains(a.Endpoints["anthropic"], "POST /v1/messages") {
		t.Fatalf("%d %v %s", code, err, body)
	}
	req, _ := http.NewRequest("GET", srv+"/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text := readAll(t, resp)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(text, "corral v1.2.3") || !strings.Contains(text, "POST /v1/chat/completions") {
		t.Fatalf("%s\n%s", resp.Header, text)
	}
	host := up.URL.Host
	for _, b := range []string{body, text} {
		if strings.Contains(b, host) || strings.Contains(b, "127.0.0.1") {
			t.Fatalf("names an address: %s", b)
		}
	}
	if resp := post(t, &testFront{srv}, "/", "", "x"); resp.StatusCode != 405 {
		t.Fatalf("POST /: %d", resp.StatusCode)
	}
}
