package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves h on loopback and returns the address; the server stops
// with the test.
func start(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return s, l.Addr().String()
}

// servedBy answers which server handled the request, and echoes it.
var servedBy = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	by := "net/http"
	if _, ok := w.(*response); ok {
		by = "h1"
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Served-By", by)
	fmt.Fprintf(w, "%s %s host=%s len=%d body=%s", r.Method, r.RequestURI, r.Host, r.ContentLength, body)
})

// roundTrip sends raw bytes on a new connection and reads one response.
func roundTrip(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	method, _, _ := strings.Cut(raw, " ")
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading the response to %.80q: %v", raw, err)
		}
		if resp.StatusCode == http.StatusContinue {
			continue
		}
		// A server refusing a request may reset the connection while the
		// rest of it arrives: the status is what counts then.
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
}

func TestWhoServes(t *testing.T) {
	_, addr := start(t, servedBy)
	big := strings.Repeat("a", http.DefaultMaxHeaderBytes+8192)
	cases := []struct {
		name, raw  string
		status     int
		by         string // "" when net/http refuses before the handler
		bodySuffix string
	}{
		{"plain GET", "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 200, "h1", "host=x len=0 body="},
		{"POST with a length", "POST /v1/chat/completions?a=b HTTP/1.1\r\nHost: x:8080\r\nContent-Length: 5\r\n\r\nhello", 200, "h1", "len=5 body=hello"},
		{"lower-case names", "POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi", 200, "h1", "body=hi"},
		{"HTTP/1.0", "GET /p HTTP/1.0\r\nHost: x\r\n\r\n", 200, "net/http", "len=0 body="},
		{"chunked body", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, "net/http", "body=hello"},
		{"Expect", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi", 200, "net/http", "body=hi"},
		{"Upgrade", "GET /p HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 200, "net/http", "body="},
		{"absolute target", "GET http://x/p HTTP/1.1\r\nHost: x\r\n\r\n", 200, "net/http", "body="},
		{"no Host", "GET /p HTTP/1.1\r\n\r\n", 400, "", ""},
		{"two Hosts", "GET /p HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "", ""},
		{"bad Host", "GET /p HTTP/1.1\r\nHost: x/y\r\n\r\n", 400, "", ""},
		{"two lengths", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nhi", 400, "", ""},
		{"signed length", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nhi", 400, "", ""},
		{"folded header", "GET /p HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 200, "net/http", "body="},
		{"space in a name", "GET /p HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "", ""},
		{"bare LF lines", "GET /p HTTP/1.1\nHost: x\n\n", 200, "net/http", "host=x len=0 body="},
		{"headers too large", "GET /p HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", 431, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := roundTrip(t, addr, tc.raw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if got := resp.Header.Get("Served-By"); got != tc.by {
				t.Errorf("served by %q, want %q", got, tc.by)
			}
			if !strings.HasSuffix(body, tc.bodySuffix) {
				t.Errorf("body %q, want it to end in %q", body, tc.bodySuffix)
			}
		})
	}
}

func TestRequestFields(t *testing.T) {
	got := make(chan *http.Request, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		got <- r
	}))
	resp, _ := roundTrip(t, addr, "POST /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nx-request-id: abc\r\nAccept: a\r\naccept: b\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := <-got
	checks := []struct{ name, got, want string }{
		{"Method", r.Method, "POST"},
		{"Proto", r.Proto, "HTTP/1.1"},
		{"Host", r.Host, "example.com:8080"},
		{"RequestURI", r.RequestURI, "/a%20b/c?x=1&y=2"},
		{"URL.Path", r.URL.Path, "/a b/c"},
		{"URL.RawQuery", r.URL.RawQuery, "x=1&y=2"},
		{"X-Request-Id", r.Header.Get("X-Request-ID"), "abc"},
		{"Accept", strings.Join(r.Header["Accept"], ","), "a,b"},
		{"Host in Header", r.Header.Get("Host"), ""},
		{"ContentLength", fmt.Sprint(r.ContentLength), "3"},
		{"Close", fmt.Sprint(r.Close), "true"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("RemoteAddr = %q, want 127.0.0.1:port", r.RemoteAddr)
	}
	if !resp.Close {
		t.Errorf("a request with Connection: close got a response without it: %v", resp.Header)
	}
}

func TestResponseFraming(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Write([]byte("<html>hi</html>"))
		case "/flushed":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: 1\n\n"))
			w.(http.Flusher).Flush()
			w.Write([]byte("data: 2\n\n"))
		case "/large":
			w.Write(bytes.Repeat([]byte("x"), 3000))
			w.Write(bytes.Repeat([]byte("y"), 10000))
		case "/declared":
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("he"))
			w.(http.Flusher).Flush()
			w.Write([]byte("llo"))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic(fmt.Sprintf("Write after 204: %v", err))
			}
		case "/split":
			w.Header().Set("X-Evil", "a\r\nSet-Cookie: b")
			w.WriteHeader(http.StatusTeapot)
			w.Header().Set("X-Late", "ignored")
		}
	}))
	cases := []struct {
		path, method    string
		status          int
		te              []string
		length          int64
		body, ctype     string
		headerAbsent    string
		headerSanitized string
	}{
		{"/small", "GET", 200, nil, 15, "<html>hi</html>", "text/html; charset=utf-8", "", ""},
		{"/small", "HEAD", 200, nil, 15, "", "text/html; charset=utf-8", "", ""},
		{"/flushed", "GET", 200, []string{"chunked"}, -1, "data: 1\n\ndata: 2\n\n", "text/event-stream", "", ""},
		{"/large", "GET", 200, []string{"chunked"}, -1, strings.Repeat("x", 3000) + strings.Repeat("y", 10000), "text/plain; charset=utf-8", "", ""},
		{"/declared", "GET", 200, nil, 5, "hello", "text/plain; charset=utf-8", "", ""},
		{"/nocontent", "GET", 204, nil, 0, "", "", "Content-Type", ""},
		{"/split", "GET", 418, nil, 0, "", "", "Set-Cookie", "a  Set-Cookie: b"},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			resp, body := roundTrip(t, addr, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != tc.status || body != tc.body || resp.ContentLength != tc.length ||
				strings.Join(resp.TransferEncoding, ",") != strings.Join(tc.te, ",") || resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("got %d, length %d, TE %v, type %q, body %.40q; want %d, %d, %v, %q, %.40q",
					resp.StatusCode, resp.ContentLength, resp.TransferEncoding, resp.Header.Get("Content-Type"), body,
					tc.status, tc.length, tc.te, tc.ctype, tc.body)
			}
			if resp.Header.Get("Date") == "" {
				t.Error("no Date header")
			}
			if tc.headerAbsent != "" && resp.Header.Get(tc.headerAbsent) != "" {
				t.Errorf("header %s present: %v", tc.headerAbsent, resp.Header)
			}
			if tc.headerSanitized != "" && resp.Header.Get("X-Evil") != tc.headerSanitized {
				t.Errorf("X-Evil = %q, want %q", resp.Header.Get("X-Evil"), tc.headerSanitized)
			}
			if resp.Header.Get("X-Late") != "" {
				t.Error("a header set after WriteHeader was sent")
			}
		})
	}
}

// TestKeepAlive sends requests on one connection, two of them in one
// write, with bodies left unread by the handler in between.
// TestWriteHeaderLines: fields given as lines go out after the map's,
// as they came, but h1 keeps the framing, and a line net/http would not
// send is left out; their Date and Content-Type stand.
func TestWriteHeaderLines(t *testing.T) {
	const date = "Mon, 30 Nov 2026 07:00:00 GMT"
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Map", "1")
		w.(interface{ WriteHeaderLines(int, []byte) }).WriteHeaderLines(http.StatusAccepted, []byte(
			"Content-Type: text/event-stream\r\ndate: "+date+"\r\nContent-Length: 99\r\nconnection: close\r\n"+
				"Transfer-Encoding: gzip\r\nX-No-Colon\r\nX-Ctl: a\x01b\r\nX-Up:  2 \r\n"))
		w.Write([]byte("data: 1\n\n"))
	}))
	resp, body := roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h := resp.Header
	if resp.StatusCode != http.StatusAccepted || body != "data: 1\n\n" || resp.ContentLength != 9 || resp.Close || resp.TransferEncoding != nil {
		t.Errorf("status %d, body %q, length %d, close %v, TE %v", resp.StatusCode, body, resp.ContentLength, resp.Close, resp.TransferEncoding)
	}
	if h.Get("Content-Type") != "text/event-stream" || len(h["Date"]) != 1 || h.Get("Date") != date || h.Get("X-Up") != "2" || h.Get("X-Map") != "1" {
		t.Errorf("header %v", h)
	}
	for _, k := range []string{"X-No-Colon", "X-Ctl"} {
		if _, ok := h[k]; ok {
			t.Errorf("%s sent: %v", k, h)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	var conns atomic.Int32
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			io.ReadAll(r.Body)
		}
		fmt.Fprintf(w, "%s", r.URL.Path)
	}))
	_ = s
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conns.Add(1)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	expect := func(path string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response for %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != path || resp.Close {
			t.Fatalf("got %q (close %v), want %q on a kept connection", body, resp.Close, path)
		}
	}
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	expect("/one")
	expect("/read")
	// A small body the handler does not read is read away.
	io.WriteString(c, "POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
	expect("/unread")
	io.WriteString(c, "GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
	expect("/last")
}

func TestLargeUnreadBodyCloses(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("refused"))
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, fmt.Sprintf("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close {
		t.Fatalf("a 10 MiB body left unread kept the connection: %v", resp.Header)
	}
}

// TestClientGoneCancels: a client that leaves while its request waits
// ends the request's context, as net/http does.
func TestClientGoneCancels(t *testing.T) {
	canceled := make(chan error, 2)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			canceled <- nil
		case <-time.After(10 * time.Second):
			canceled <- errors.New("the context outlived the client by 10 s")
		}
	}))
	for _, raw := range []string{
		"GET /p HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		time.Sleep(50 * time.Millisecond)
		c.Close()
		if err := <-canceled; err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
	}
}

func TestPanicClosesConnectionOnly(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.Write([]byte("fine"))
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Error("a panicking handler produced a response")
	}
	c.Close()
	if _, body := roundTrip(t, addr, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"); body != "fine" {
		t.Errorf("after a panic: %q", body)
	}
}

// TestShutdown: idle connections close at once, a request in flight
// finishes, and Serve returns http.ErrServerClosed.
func TestShutdown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	inHandler := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		w.Write([]byte(r.URL.Path))
	}), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ibr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
	}

	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-inHandler

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if _, err := ibr.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection during Shutdown: read %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the request in flight: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "/slow" || !resp.Close {
		t.Errorf("in-flight answer %q (close %v), want /slow with Connection: close", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// TestStandardClient drives the server with net/http's own client, keep-
// alive and concurrency included.
func TestStandardClient(t *testing.T) {
	_, addr := start(t, servedBy)
	client := &http.Client{Timeout: 10 * time.Second}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				body := fmt.Sprintf("g%d-%d", g, i)
				resp, err := client.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !strings.HasSuffix(string(got), "body="+body) || resp.Header.Get("Served-By") != "h1" {
					errs <- fmt.Errorf("got %q, %v (served by %s)", got, err, resp.Header.Get("Served-By"))
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEarlyAnswerReachesClient: a handler that refuses a large body
// without reading it gets its answer to a client still sending the body;
// closing at once would reset the connection and lose the answer.
func TestEarlyAnswerReachesClient(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	for range 3 {
		resp, err := http.Post("http://"+addr+"/p", "application/octet-stream", bytes.NewReader(make([]byte, 10<<20)))
		if err != nil {
			t.Fatalf("the client lost the answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// TestParseTargetMatchesNetURL: the targets parseTarget takes apart
// itself come out as net/url makes them, and the others are net/url's.
func TestParseTargetMatchesNetURL(t *testing.T) {
	for _, target := range []string{
		"/", "/v1/chat/completions", "/api/chat?x=1&y=2", "/a/b/", "/a;b=c/d:e@f", "/a~b_c.d-e", "/!$&'()*+,=",
		"/a?", "/a?b?c", "/a?b#c", "/a%20b", "/a%2Fb", "/a b", "/ü", "//host/path", "/a\"b", "/a{b}", "/a|b", "/a^b", "/a`b",
		"/a?b=%zz", "/a[b]", "/%", "/a#b", "/a$b&c+d,e;f=g:h@i", "/a!b", "/a(b)*", "/a?q=a b",
	} {
		got, gerr := parseTarget(target)
		want, werr := url.ParseRequestURI(target)
		if (gerr != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %#v, %v; net/url: %#v, %v", target, got, gerr, want, werr)
		}
	}
}

// EndBody sends the whole response while the handler still runs: the
// client reads its end, chunked or not, before the handler returns, the
// handler's later writes fail, and the connection serves the next
// request once the handler is done.
func TestEndBody(t *testing.T) {
	release := make(chan struct{})
	afterEnd := make(chan error, 2)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			io.WriteString(w, "next")
			return
		}
		io.WriteString(w, "a")
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // committed without a length: chunked
		}
		io.WriteString(w, "b")
		if err := w.(interface{ EndBody() error }).EndBody(); err != nil {
			afterEnd <- err
			return
		}
		_, err := io.WriteString(w, "late")
		afterEnd <- err
		<-release
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/chunked", "/whole"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body) // returns only at the body's end
		if err != nil || string(body) != "ab" || (path == "/chunked") != (len(resp.TransferEncoding) == 1) || (path == "/whole") != (resp.ContentLength == 2) {
			t.Fatalf("%s: body %q %v, transfer encoding %v, length %d", path, body, err, resp.TransferEncoding, resp.ContentLength)
		}
		if err := <-afterEnd; !errors.Is(err, ErrBodyEnded) {
			t.Fatalf("%s: a write after EndBody: %v, want ErrBodyEnded", path, err)
		}
		release <- struct{}{}
	}
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "next" {
		t.Fatalf("next request on the connection: %q", body)
	}
}
