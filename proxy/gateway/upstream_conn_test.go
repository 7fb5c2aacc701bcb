package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func leanServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *countingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cl := &countingListener{Listener: srv.Listener}
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

func leanTarget(t *testing.T, raw string) *Upstream {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Upstream{Name: "i0", URL: u}
}

func leanReq(ctx context.Context, path string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, "POST", path, nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer secret")
	r.RemoteAddr = "10.1.2.3:4444"
	return r
}

func testLean(cfg Config) *leanClient {
	cfg.defaults()
	return newLeanClient(cfg, newUpstreamDialer(func(string) bool { return true }))
}

func leanGet(t *testing.T, lc *leanClient, u *Upstream, path, body string) (*http.Response, string) {
	t.Helper()
	resp, err := lc.roundTrip(leanReq(context.Background(), path), u, forwardReq{body: []byte(body), rid: "rid-1", stream: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestLeanChunkedAndLengthBodies(t *testing.T) {
	srv, cl := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Request-Id") != "rid-1" || r.Header.Get("X-Forwarded-For") != "10.1.2.3" ||
			r.Header.Get("Content-Type") != "application/json" || r.URL.RawQuery != "q=1" || string(b) != `{"model":"m"}` {
			w.WriteHeader(400)
			return
		}
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for range 3 {
			io.WriteString(w, "data: x\n\n")
			w.(http.Flusher).Flush()
		}
	})
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, srv.URL)
	for range 3 {
		// The header, taken before the body is read and released.
		resp, err := lc.roundTrip(leanReq(context.Background(), "/chunked?q=1"), u, forwardReq{body: []byte(`{"model":"m"}`), rid: "rid-1", stream: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := resp.Body.(*leanBody).header(resp)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != strings.Repeat("data: x\n\n", 3) || h.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("chunked: %d %q %v %v", resp.StatusCode, b, h, err)
		}
		var body string
		resp, body = leanGet(t, lc, u, "/length?q=1", `{"model":"m"}`)
		if resp.StatusCode != 200 || body != "hello" || resp.ContentLength != 5 {
			t.Fatalf("length: %d %q", resp.StatusCode, body)
		}
	}
	if n := cl.n.Load(); n != 1 {
		t.Fatalf("%d dials for 6 sequential requests, want 1", n)
	}
}

// TestLeanSkipsTrailer: a chunked answer's trailer, a line longer than
// the read buffer among it, is read away whole, and the connection
// serves the next request.
func TestLeanSkipsTrailer(t *testing.T) {
	srv, cl := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Short, X-Long")
		io.WriteString(w, "data: x\n\n")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Short", "1")
		w.Header().Set("X-Long", strings.Repeat("a", 40<<10))
	})
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, srv.URL)
	for range 3 {
		if _, body := leanGet(t, lc, u, "/", `{}`); body != "data: x\n\n" {
			t.Fatalf("body %q", body)
		}
	}
	if n := cl.n.Load(); n != 1 {
		t.Fatalf("%d dials for 3 sequential requests, want 1", n)
	}
	// A line's end read apart from it is not the blank line.
	b := &leanBody{br: bufio.NewReaderSize(strings.NewReader("X-Long: 12345678\r\n\r\nnext"), 16)}
	if err := b.skipTrailer(); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(b.br); string(rest) != "next" {
		t.Fatalf("after the trailer: %q", rest)
	}
}

func TestLeanReusesConnection(t *testing.T) {
	srv, cl := leanServer(t, ollamaChat(3))
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, srv.URL)
	for range 20 {
		if _, body := leanGet(t, lc, u, "/api/chat", `{}`); !strings.Contains(body, `"done":true`) {
			t.Fatalf("body %q", body)
		}
	}
	if n := cl.n.Load(); n != 1 {
		t.Fatalf("%d dials for 20 sequential requests, want 1", n)
	}
	// A body closed before its end is not reused.
	resp, err := lc.roundTrip(leanReq(context.Background(), "/api/chat"), u, forwardReq{body: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	leanGet(t, lc, u, "/api/chat", `{}`)
	if n := cl.n.Load(); n != 2 {
		t.Fatalf("%d dials after a body closed early, want 2", n)
	}
}

// rawServer answers each request on a connection with answer(i), i
// counting from 0 across the server's life.
func rawServer(t *testing.T, answer func(c net.Conn, br *bufio.Reader, i int) bool) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var dials, reqs atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if !answer(c, br, int(reqs.Add(1)-1)) {
						return
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String(), &dials
}

func TestLeanStaleConnRetried(t *testing.T) {
	// The server answers, then closes the kept-alive connection without
	// saying so, as a restarted instance or an idle timeout does.
	raw, dials := rawServer(t, func(c net.Conn, _ *bufio.Reader, i int) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false
	})
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, raw)
	for i := range 3 {
		if i > 0 {
			time.Sleep(20 * time.Millisecond) // the close reaches us
		}
		if resp, body := leanGet(t, lc, u, "/api/chat", `{}`); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	if n := dials.Load(); n != 3 {
		t.Fatalf("%d dials, want 3", n)
	}
}

func TestLeanConnectionCloseNotPooled(t *testing.T) {
	srv, cl := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, srv.URL)
	for range 3 {
		if _, body := leanGet(t, lc, u, "/", ``); body != "bye" {
			t.Fatalf("body %q", body)
		}
	}
	if n := cl.n.Load(); n != 3 {
		t.Fatalf("%d dials, want 3", n)
	}
	lc.mu.Lock()
	n := len(lc.idle[hostPort(u)])
	lc.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d pooled connections", n)
	}
}

func TestLeanHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
	lc := testLean(Config{HeaderTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := lc.roundTrip(leanReq(context.Background(), "/"), leanTarget(t, srv.URL), forwardReq{body: []byte(`{}`)}, nil)
	if !errors.Is(err, errHeaderTimeout) || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

func TestLeanBodyIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		<-release
	})
	lc := testLean(Config{IdleTimeout: 100 * time.Millisecond})
	resp, err := lc.roundTrip(leanReq(context.Background(), "/"), leanTarget(t, srv.URL), forwardReq{body: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if string(b) != "a" || !errors.Is(err, errUpstreamIdle) {
		t.Fatalf("%q %v", b, err)
	}
}

// TestLeanBodyIdleTimeoutMoves: the idle timeout bounds each wait, not
// the stream: bytes that keep coming keep it going past it.
func TestLeanBodyIdleTimeoutMoves(t *testing.T) {
	srv, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		for range 8 {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	})
	lc := testLean(Config{IdleTimeout: 150 * time.Millisecond})
	resp, err := lc.roundTrip(leanReq(context.Background(), "/"), leanTarget(t, srv.URL), forwardReq{body: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if string(b) != "aaaaaaaa" || err != nil {
		t.Fatalf("a stream of 480 ms with 60 ms gaps under a 150 ms idle timeout: %q %v", b, err)
	}
}

func TestLeanClientCancelUnblocksRead(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		<-release
	})
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := lc.roundTrip(leanReq(ctx, "/"), u, forwardReq{body: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 10)
	if n, _ := resp.Body.Read(buf); string(buf[:n]) != "a" {
		t.Fatalf("%q", buf[:n])
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err = resp.Body.Read(buf)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	// Canceled while waiting for headers, too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	srv2, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	_, err = lc.roundTrip(leanReq(ctx, "/"), leanTarget(t, srv2.URL), forwardReq{body: []byte(`{}`)}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("header wait: err %v", err)
	}
}

// TestLeanCancelUnblocksLargeWrite: a body larger than the socket
// buffers, sent to an upstream that never reads it, still ends when the
// client leaves.
func TestLeanCancelUnblocksLargeWrite(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stuck := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			stuck <- c // accepted, never read
		}
	}()
	defer func() {
		select {
		case c := <-stuck:
			c.Close()
		default:
		}
	}()
	lc := testLean(Config{})
	defer lc.closeIdle()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := lc.roundTrip(leanReq(ctx, "/"), leanTarget(t, "http://"+l.Addr().String()), forwardReq{body: make([]byte, 64<<20)}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write still waits on the upstream after the client left")
	}
}

// TestBufferedHeaderMatchesTextproto: where the in-place parse takes a
// head, it reads what textproto reads; where it declines, textproto's
// reading is what the response gets.
func TestBufferedHeaderMatchesTextproto(t *testing.T) {
	cases := []struct {
		name, head string
		fast       bool
		fields     string // what passes through, as sent ("": not checked)
	}{
		{"sse", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nDate: Mon, 30 Nov 2026 07:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n", true,
			"Content-Type: text/event-stream\r\nDate: Mon, 30 Nov 2026 07:00:00 GMT\r\n"},
		{"hop-by-hop and the gateway's own", "HTTP/1.1 200 OK\r\nconnection: keep-alive, Foo\r\nKeep-Alive: timeout=5\r\nx-request-id: theirs\r\nX-Accel-Buffering: yes\r\nTrailer: X\r\nContent-Type: application/x-ndjson\r\ntransfer-encoding: gzip, chunked\r\nSet-Cookie: a=1\r\n\r\n", true,
			"Content-Type: application/x-ndjson\r\nSet-Cookie: a=1\r\n"},
		{"repeated and lower-case", "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nVary: a\r\nVary:  b \r\nContent-Length: 0\r\n\r\n", true, ""},
		{"HTTP/1.0 without reason", "HTTP/1.0 503\r\nConnection: close\r\n\r\n", true, ""},
		{"empty value", "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n", true, ""},
		{"folded", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", false, ""},
		{"name not a token", "HTTP/1.1 200 OK\r\nX(Y): 1\r\nContent-Length: 0\r\n\r\n", false, ""},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n", false, ""},
		{"HTTP/2 line", "HTTP/2 200\r\nContent-Length: 0\r\n\r\n", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			read := func() *leanBody {
				b := &leanBody{br: bufio.NewReader(strings.NewReader(tc.head + "body"))}
				b.tp.R = b.br
				b.br.Peek(1)
				return b
			}
			fb, fresp, ff := read(), &http.Response{}, framing{}
			ok := fb.bufferedHeader(fresp, &ff)
			if ok != tc.fast {
				t.Fatalf("in place: %v, want %v", ok, tc.fast)
			}
			sb, sresp, sf := read(), &http.Response{}, framing{}
			err := sb.readHeaderLines(sresp, &sf)
			if !ok {
				return
			}
			if err != nil {
				t.Fatalf("textproto refused what the in-place parse took: %v", err)
			}
			// What passes through is textproto's header but the fields
			// the client keeps for itself.
			want := http.Header{}
			copyHeader(want, sresp.Header)
			h := fb.header(fresp)
			if fresp.Proto != sresp.Proto || fresp.Status != sresp.Status || fresp.StatusCode != sresp.StatusCode || !reflect.DeepEqual(h, want) || ff != sf {
				t.Errorf("in place %q %q %d %v %+v; textproto %q %q %d %v %+v", fresp.Proto, fresp.Status, fresp.StatusCode, h, ff, sresp.Proto, sresp.Status, sresp.StatusCode, want, sf)
			}
			if tc.fields != "" && string(fb.fields) != tc.fields {
				t.Errorf("fields passed through: %q, want %q", fb.fields, tc.fields)
			}
			rest, _ := io.ReadAll(fb.br)
			if string(rest) != "body" {
				t.Errorf("after the head: %q, want the body", rest)
			}
		})
	}
}

// The head is read in place in the connection's buffer: what the
// response keeps of it must not change when the buffer fills again, for
// this body or the next request's on the same connection.
func TestLeanHeadOutlivesBuffer(t *testing.T) {
	srv, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(64<<10))
		w.WriteHeader(299)
		io.WriteString(w, strings.Repeat("x", 64<<10))
	})
	lc := testLean(Config{})
	defer lc.closeIdle()
	u := leanTarget(t, srv.URL)
	first, body := leanGet(t, lc, u, "/", `{}`)
	leanGet(t, lc, u, "/", `{}`)
	if len(body) != 64<<10 || first.Status != "299 status code 299" || first.Proto != "HTTP/1.1" || first.StatusCode != 299 || first.ContentLength != 64<<10 {
		t.Fatalf("status %q proto %q code %d length %d, body %d bytes", first.Status, first.Proto, first.StatusCode, first.ContentLength, len(body))
	}
}

// The upstream's request line names what the client asked for: the
// target as sent where it is plain, else the path escaped anew; either
// way the same path and query once parsed.
func TestUpstreamRequestTarget(t *testing.T) {
	u := &Upstream{URL: &url.URL{Scheme: "http", Host: "10.0.0.1:11434"}}
	for _, target := range []string{"/v1/chat/completions", "/api/tags?x=1&y=2", "/a%20b", "/a%2Fb?q=%20", "/a'b(c)", "/p?", "/a#frag", "http://example.com/v1/models?x=1"} {
		r := httptest.NewRequest("POST", target, nil)
		line, _, _ := strings.Cut(string(appendRequestHeader(nil, r, u, forwardReq{rid: "r"})), "\r\n")
		sent := strings.TrimSuffix(strings.TrimPrefix(line, "POST "), " HTTP/1.1")
		got, err := url.ParseRequestURI(sent)
		if err != nil {
			t.Errorf("%q went upstream as %q: %v", target, sent, err)
			continue
		}
		if got.Path != r.URL.Path || got.RawQuery != r.URL.RawQuery || got.EscapedPath() != r.URL.EscapedPath() {
			t.Errorf("%q went upstream as %q: path %q query %q, want %q %q", target, sent, got.Path, got.RawQuery, r.URL.Path, r.URL.RawQuery)
		}
		wantPlain := strings.HasPrefix(target, "/") && !strings.ContainsAny(target, "%#") && !strings.HasSuffix(target, "?")
		if plain := plainTarget(r); plain != wantPlain || (plain && sent != target) {
			t.Errorf("%q: plain %v (want %v), sent as %q", target, plain, wantPlain, sent)
		}
	}
}
