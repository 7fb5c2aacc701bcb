package frontdoor_test

// The front door's security properties, each proved over real sockets
// against a front door, a gateway and a test instance: what a stranger,
// a slow or stalled client, a forged header, a misbehaving instance can
// make corral hold, see or pass on. The tests that measure the process's
// memory are not parallel, so that nothing else runs while they do.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"corral/proxy/frontdoor"
)

// secNoHits is an instance that no request in the test may reach.
func secNoHits(hits *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}
}

// TestSecMadeUpKeyBigBodies: 40 strangers with a made-up key announce
// 32 MiB bodies and send 31 MiB of them, then stall. Each gets its 401
// from the key alone, the front door closes each connection, and the
// process holds next to nothing for them: a front door that read their
// bodies before the key would hold 40 x 31 MiB.
func TestSecMadeUpKeyBigBodies(t *testing.T) {
	// Not parallel: it measures the process's memory.
	const (
		conns     = 40
		announced = 32 << 20
		sent      = 31 << 20
		// The most the 40 may add to the process's Go heap and stacks,
		// the clients' own side included.
		bound = 64 << 20
	)
	var hits atomic.Int32
	d := startSecDoor(t, secInstance(t, secNoHits(&hits)), secDoorOpts{limits: frontdoor.Limits{BodyIdle: time.Second}})
	chunk := bytes.Repeat([]byte("a"), 64<<10) // shared by every writer, only read
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = secDial(t, d.addr, nil)
	}
	type result struct {
		status            int
		body              string
		toAnswer, toClose time.Duration
		wrote             int64
		err               error
	}
	res := make([]result, conns)
	mem := secWatchMem()
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			r := &res[i]
			start := time.Now()
			c.SetWriteDeadline(start.Add(20 * time.Second))
			_, err := fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer made-up\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", announced)
			if err != nil {
				r.err = err
				return
			}
			var wrote atomic.Int64
			stalled := make(chan struct{})
			go func() {
				defer close(stalled)
				for wrote.Load() < sent {
					n, err := c.Write(chunk)
					wrote.Add(int64(n))
					if err != nil {
						return // EPIPE or ECONNRESET once the front door closed: as it should
					}
					time.Sleep(time.Millisecond)
				}
				// Then stall: nothing more, and no close.
			}()
			resp, body, err := secReadResponse(c, bufio.NewReader(c), 10*time.Second)
			r.toAnswer = time.Since(start)
			if err != nil {
				r.err = fmt.Errorf("no answer: %w", err)
				return
			}
			r.status, r.body = resp.StatusCode, body
			if err := secClosed(c, 10*time.Second); err != nil {
				r.err = fmt.Errorf("not closed: %w", err)
			}
			r.toClose = time.Since(start)
			<-stalled
			r.wrote = wrote.Load()
		})
	}
	wg.Wait()
	goMem, rss := mem.added()
	var maxAnswer, maxClose time.Duration
	var wrote int64
	for i, r := range res {
		if r.err != nil || r.status != http.StatusUnauthorized || !strings.Contains(r.body, "unknown API key") {
			t.Errorf("connection %d: %d %q, %v", i, r.status, r.body, r.err)
		}
		maxAnswer, maxClose, wrote = max(maxAnswer, r.toAnswer), max(maxClose, r.toClose), wrote+r.wrote
	}
	t.Logf("%d connections: 401 within %s, closed within %s; the clients wrote %.1f MiB in all; added Go heap+stacks %.1f MiB (bound %d MiB), RSS %.1f MiB",
		conns, maxAnswer.Round(time.Millisecond), maxClose.Round(time.Millisecond), secMiB(uint64(wrote)), secMiB(goMem), bound>>20, secMiB(rss))
	if goMem > bound {
		t.Errorf("the process grew by %.1f MiB for %d refused strangers, more than %d MiB", secMiB(goMem), conns, bound>>20)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("made-up keys reached the instance %d times", n)
	}
	if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == 0 }) {
		t.Errorf("%d connections still counted open", d.door.OpenConns())
	}
}

// TestSecMadeUpKeyBodyNotRead: a refused key is answered without a byte
// of its body being read: no 100 Continue invites it, and the 401 does
// not wait for a body that comes slowly, though the body deadline is a
// minute away. The connection is closed rather than drained.
func TestSecMadeUpKeyBodyNotRead(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	d := startSecDoor(t, secInstance(t, secNoHits(&hits)), secDoorOpts{limits: frontdoor.Limits{BodyIdle: time.Minute}})
	cases := []struct {
		name, header, body string
	}{
		{"expect 100-continue, no body sent", "Expect: 100-continue\r\n", ""},
		{"16 KiB of 32 MiB sent", "", strings.Repeat("a", 16<<10)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := secDial(t, d.addr, nil)
			fmt.Fprintf(c, "POST /api/chat HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer made-up\r\n%sContent-Length: %d\r\n\r\n%s", tc.header, 32<<20, tc.body)
			start := time.Now()
			resp, body, err := secReadResponse(c, bufio.NewReader(c), 5*time.Second)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("no answer within 5 s: %v", err)
			}
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "unknown API key") {
				t.Fatalf("first answer %d %q, want 401 (and no 100 Continue)", resp.StatusCode, body)
			}
			if err := secClosed(c, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("401 after %s, closed after %s", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("made-up keys reached the instance %d times", n)
		}
	})
}

// TestSecStalledHeaders: 1,000 connections that send part of a header and
// stall cost the process little, and the front door closes every one of
// them once the header deadline passes.
func TestSecStalledHeaders(t *testing.T) {
	// Not parallel: it measures the process's memory.
	const (
		conns = 1000
		// The most the 1,000 may add to the process's Go heap and stacks,
		// both ends of every connection included.
		bound      = 64 << 20
		readHeader = time.Second
	)
	var hits atomic.Int32
	d := startSecDoor(t, secInstance(t, secNoHits(&hits)), secDoorOpts{limits: frontdoor.Limits{ReadHeader: readHeader, MaxConnsPerIP: 2 * conns}})
	cs := make([]net.Conn, conns)
	opened := make([]time.Time, conns)
	mem := secWatchMem()
	start := time.Now()
	for i := range cs {
		cs[i] = secDial(t, d.addr, nil)
		opened[i] = time.Now()
		io.WriteString(cs[i], "POST /v1/chat/completions HTTP/1.1\r\nHost: corral\r\nAuthoriz")
	}
	secWait(time.Second, func() bool { return d.door.OpenConns() >= conns })
	held := d.door.OpenConns()
	goMem, rss := mem.added()
	t.Logf("%d connections opened in %s; %d held at the peak; added Go heap+stacks %.1f MiB (bound %d MiB), RSS %.1f MiB",
		conns, time.Since(start).Round(time.Millisecond), held, secMiB(goMem), bound>>20, secMiB(rss))
	if goMem > bound {
		t.Errorf("the process grew by %.1f MiB for %d stalled headers, more than %d MiB", secMiB(goMem), conns, bound>>20)
	}
	took := make([]time.Duration, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			errs[i] = secClosed(c, readHeader+8*time.Second)
			took[i] = time.Since(opened[i])
		})
	}
	wg.Wait()
	var open int
	for _, err := range errs {
		if err != nil {
			open++
		}
	}
	longest := slices.Max(took)
	t.Logf("every connection closed within %s of opening (header deadline %s)", longest.Round(time.Millisecond), readHeader)
	if open > 0 {
		t.Errorf("%d of %d stalled connections were not closed: %v", open, conns, errs[slices.IndexFunc(errs, func(e error) bool { return e != nil })])
	}
	if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == 0 }) {
		t.Errorf("%d connections still counted open", d.door.OpenConns())
	}
	if hits.Load() != 0 {
		t.Error("a stalled header reached the instance")
	}
}

// TestSecConnectionCaps: past its address's cap a connection gets a 429,
// past the total cap a 503, each closed at once; another address keeps
// its own share; the count returns to zero when the clients leave.
func TestSecConnectionCaps(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	d := startSecDoor(t, secInstance(t, secNoHits(&hits)), secDoorOpts{limits: frontdoor.Limits{MaxConnsPerIP: 50, MaxConns: 80}})
	a, b, c := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)
	var held []net.Conn
	hold := func(from net.IP, n, want int) {
		t.Helper()
		for range n {
			held = append(held, secDial(t, d.addr, from))
		}
		if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == want }) {
			t.Fatalf("%d connections counted, want %d", d.door.OpenConns(), want)
		}
	}
	refused := func(from net.IP, n, status int) {
		t.Helper()
		for range n {
			conn := secDial(t, d.addr, from)
			resp, body, err := secReadResponse(conn, bufio.NewReader(conn), 5*time.Second)
			if err != nil {
				t.Fatalf("from %s: %v", from, err)
			}
			if resp.StatusCode != status || resp.Header.Get("Retry-After") == "" || body == "" {
				t.Fatalf("from %s: %d %q, want %d with Retry-After", from, resp.StatusCode, body, status)
			}
			if err := secClosed(conn, 5*time.Second); err != nil {
				t.Fatalf("refused connection from %s: %v", from, err)
			}
		}
	}
	hold(a, 50, 50)
	refused(a, 5, http.StatusTooManyRequests)
	hold(b, 30, 80) // b has its own share while a is at its cap
	refused(c, 5, http.StatusServiceUnavailable)
	// What is held is served.
	fmt.Fprint(held[0], "GET /api/tags HTTP/1.1\r\nHost: corral\r\n\r\n")
	if resp, _, err := secReadResponse(held[0], bufio.NewReader(held[0]), 5*time.Second); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a held connection: %v %v", resp, err)
	}
	for _, conn := range held {
		conn.Close()
	}
	if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == 0 }) {
		t.Errorf("%d connections still counted open after the clients left", d.door.OpenConns())
	}
}

// TestSecGuardSharesTheCaps: a listener the front door guards (the
// admin's) counts against the same caps: a client at its cap on the
// gateway is refused there too, and its connections there are counted.
func TestSecGuardSharesTheCaps(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	d := startSecDoor(t, secInstance(t, secNoHits(&hits)), secDoorOpts{limits: frontdoor.Limits{MaxConnsPerIP: 3}})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "admin") })}
	go admin.Serve(d.door.Guard(raw, true))
	t.Cleanup(func() { admin.Close() })
	from := net.IPv4(127, 0, 0, 1)
	var held []net.Conn
	for range 2 {
		held = append(held, secDial(t, d.addr, from))
	}
	held = append(held, secDial(t, raw.Addr().String(), from))
	if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == 3 }) {
		t.Fatalf("%d connections counted, want 3 (two on the gateway, one on the guarded listener)", d.door.OpenConns())
	}
	conn := secDial(t, raw.Addr().String(), from)
	resp, _, err := secReadResponse(conn, bufio.NewReader(conn), 5*time.Second)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a fourth connection, on the guarded listener: %v %v, want 429", resp, err)
	}
	for _, c := range held {
		c.Close()
	}
	if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == 0 }) {
		t.Errorf("%d connections still counted", d.door.OpenConns())
	}
}

// secSSEChunk is one SSE event of about size bytes.
func secSSEChunk(size int) []byte {
	return fmt.Appendf(nil, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", strings.Repeat("x", size))
}

// TestSecStoppedReaderFreesSlot: a key holder who asks for a stream and
// stops reading it is cut once nothing of the answer moves for WriteIdle,
// and the instance's request is cancelled: its slot is free again.
func TestSecStoppedReaderFreesSlot(t *testing.T) {
	t.Parallel()
	const writeIdle = time.Second
	cancelled := make(chan time.Time, 1)
	var sent atomic.Int64
	inst := secInstance(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		context.AfterFunc(r.Context(), func() { cancelled <- time.Now() })
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := secSSEChunk(16 << 10)
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				break
			}
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	d := startSecDoor(t, inst, secDoorOpts{limits: frontdoor.Limits{WriteIdle: writeIdle}})
	dialer := net.Dialer{Control: secSmallRcvBuf}
	c, err := dialer.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	asked := time.Now()
	// The client reads nothing from here on.
	select {
	case at := <-cancelled:
		t.Logf("the instance's request was cancelled %s after the client stopped reading (WriteIdle %s; %.1f MiB produced)",
			at.Sub(asked).Round(time.Millisecond), writeIdle, secMiB(uint64(sent.Load())))
	case <-time.After(15 * time.Second):
		t.Fatalf("the instance's request is still running 15 s after the client stopped reading")
	}
	if !secWait(5*time.Second, func() bool { return d.gw.Inflight("i0") == 0 }) {
		t.Errorf("%d requests still in flight on i0", d.gw.Inflight("i0"))
	}
	if !secWait(5*time.Second, func() bool { return d.door.OpenConns() == 0 }) {
		t.Errorf("the stalled client's connection is still open")
	}
}

// TestSecFlowingStreamNotCut: a stream that flows for three times
// WriteIdle, a chunk every 100 ms, is not cut, and ends with [DONE].
func TestSecFlowingStreamNotCut(t *testing.T) {
	t.Parallel()
	const writeIdle = time.Second
	inst := secInstance(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for range 30 {
			w.Write(secSSEChunk(64))
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	d := startSecDoor(t, inst, secDoorOpts{limits: frontdoor.Limits{WriteIdle: writeIdle, BodyIdle: writeIdle}})
	start := time.Now()
	req, _ := http.NewRequest("POST", d.url+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Authorization", "Bearer good")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	body := string(b)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"error"`) ||
		strings.Count(body, "data: ") != 31 {
		t.Fatalf("%d after %s, %v: ...%q", resp.StatusCode, took, err, body[max(0, len(body)-200):])
	}
	if took < 3*writeIdle-100*time.Millisecond {
		t.Fatalf("the stream took %s, not the 3 s the instance spends", took)
	}
	t.Logf("31 events over %s with WriteIdle %s, whole", took.Round(time.Millisecond), writeIdle)
}

// TestSecStalledBody: a key holder whose body stops coming gets a 400
// once nothing has come for BodyIdle, the connection is closed, and the
// instance never hears of it.
func TestSecStalledBody(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	d := startSecDoor(t, secInstance(t, secNoHits(&hits)), secDoorOpts{limits: frontdoor.Limits{BodyIdle: time.Second}})
	cases := []struct {
		name, framing, sent string
	}{
		{"content-length", "Content-Length: 1000\r\n", `{"model":"`},
		{"chunked", "Transfer-Encoding: chunked\r\n", "a\r\n{\"model\":\"\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := secDial(t, d.addr, nil)
			fmt.Fprintf(c, "POST /api/chat HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer good\r\n%s\r\n%s", tc.framing, tc.sent)
			start := time.Now()
			resp, body, err := secReadResponse(c, bufio.NewReader(c), 5*time.Second)
			if err == nil && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "nothing received for 1s")) {
				t.Fatalf("%d %q, want 400 naming the body deadline", resp.StatusCode, body)
			}
			var ne net.Error
			if err != nil && (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("neither an answer nor a close within 5 s: %v", err)
			}
			if err := secClosed(c, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("answered %v and closed %s after the body stalled", err == nil, time.Since(start).Round(time.Millisecond))
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("a stalled body reached the instance %d times", n)
		}
	})
}

// TestSecContentLengthWithChunked: a request with both Content-Length and
// Transfer-Encoding is read by its chunks; the instance gets exactly the
// chunks' bytes with their own Content-Length and no Transfer-Encoding;
// and the connection is closed after the answer (RFC 9112 6.1), where
// net/http alone would keep it. Go deletes the Content-Length before a
// handler sees the request, so every chunked request closes its
// connection; one framed by Content-Length alone keeps it.
func TestSecContentLengthWithChunked(t *testing.T) {
	t.Parallel()
	type seen struct {
		body           string
		length         int64
		lengthField    string
		transferCoding []string
		teField        string
	}
	seenc := make(chan seen, 4)
	inst := secInstance(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seenc <- seen{string(b), r.ContentLength, r.Header.Get("Content-Length"), r.TransferEncoding, r.Header.Get("Transfer-Encoding")}
		io.WriteString(w, `{"model":"m:latest","message":{"role":"assistant","content":"hi"},"done":true}`)
	})
	d := startSecDoor(t, inst, secDoorOpts{})
	body := `{"model":"m","stream":false}`
	cases := []struct {
		name    string
		framing string
		payload string
		closes  bool
	}{
		{"content-length and chunked", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body), true},
		{"chunked", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body), true},
		{"content-length", fmt.Sprintf("Content-Length: %d\r\n", len(body)), body, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := secDial(t, d.addr, nil)
			br := bufio.NewReader(c)
			fmt.Fprintf(c, "POST /api/chat HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer good\r\n%s\r\n%s", tc.framing, tc.payload)
			resp, answer, err := secReadResponse(c, br, 5*time.Second)
			if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(answer, `"done":true`) {
				t.Fatalf("%v %q %v", resp, answer, err)
			}
			got := <-seenc
			if got.body != body || got.length != int64(len(body)) || got.lengthField != strconv.Itoa(len(body)) || len(got.transferCoding) != 0 || got.teField != "" {
				t.Fatalf("the instance got %+v; want exactly %q framed by its own Content-Length", got, body)
			}
			if !tc.closes {
				fmt.Fprint(c, "GET /api/tags HTTP/1.1\r\nHost: corral\r\n\r\n")
				if resp, _, err := secReadResponse(c, br, 5*time.Second); err != nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("a second request on the kept connection: %v %v", resp, err)
				}
				return
			}
			if !resp.Close {
				t.Errorf("the answer does not say Connection: close")
			}
			if err := secClosed(c, 5*time.Second); err != nil {
				t.Fatalf("the connection after a chunked request: %v", err)
			}
		})
	}
}

// TestSecHopByHopAndForwarded: hop-by-hop fields, those the Connection
// field names, the client's credentials and an unvetted Forwarded never
// reach the instance; a client's forwarded fields are replaced by what
// corral saw, unless the peer is a trusted proxy, whose chain is kept and
// extended.
func TestSecHopByHopAndForwarded(t *testing.T) {
	t.Parallel()
	trusted, err := frontdoor.ParseTrusted([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                 string
		trusted              []netip.Prefix
		xff, real, proto, fh string
	}{
		{"untrusted peer", nil, "127.0.0.1", "127.0.0.1", "http", "corral.test"},
		{"trusted peer", trusted, "6.6.6.6, 127.0.0.1", "6.6.6.6", "https", "evil"},
		{"other proxies trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1", "127.0.0.1", "http", "corral.test"},
	}
	dropped := []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Expect",
		"Upgrade", "Authorization", "Forwarded", "Transfer-Encoding"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seenc := make(chan http.Header, 1)
			inst := secInstance(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				seenc <- r.Header.Clone()
				io.WriteString(w, `{"model":"m:latest","message":{"role":"assistant","content":"hi"},"done":true}`)
			})
			d := startSecDoor(t, inst, secDoorOpts{trusted: tc.trusted})
			c := secDial(t, d.addr, nil)
			body := `{"model":"m","stream":false}`
			fmt.Fprintf(c, "POST /api/chat HTTP/1.1\r\nHost: corral.test\r\nAuthorization: Bearer good\r\n"+
				"Connection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: x\r\nProxy-Connection: keep-alive\r\n"+
				"TE: trailers\r\nExpect: 100-continue\r\nUpgrade: h2c\r\nForwarded: for=6.6.6.6;proto=https\r\n"+
				"X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			br := bufio.NewReader(c)
			var resp *http.Response
			for resp == nil || resp.StatusCode == http.StatusContinue {
				var err error
				if resp, _, err = secReadResponse(c, br, 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h := <-seenc
			for _, k := range dropped {
				if v, ok := h[k]; ok {
					t.Errorf("%s: %q reached the instance", k, v)
				}
			}
			want := map[string]string{"X-Forwarded-For": tc.xff, "X-Real-Ip": tc.real, "X-Forwarded-Proto": tc.proto, "X-Forwarded-Host": tc.fh}
			for k, v := range want {
				if got := strings.Join(h.Values(k), ", "); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestSecParseTrusted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   []string
		want []netip.Prefix
		err  bool
	}{
		{[]string{"127.0.0.1"}, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, false},
		{[]string{" 10.1.2.3/8 ", "", "::1"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}, false},
		{[]string{"::ffff:192.168.1.7"}, []netip.Prefix{netip.MustParsePrefix("192.168.1.7/32")}, false},
		{[]string{"", " "}, nil, false},
		{[]string{"10.0.0.1", "proxy.example"}, nil, true},
		{[]string{"10.0.0.0/33"}, nil, true},
	}
	for _, tc := range cases {
		got, err := frontdoor.ParseTrusted(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ParseTrusted(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), "--trusted-proxies") {
			t.Errorf("ParseTrusted(%q): the error %q does not name the flag", tc.in, err)
		}
	}
}

// secStolen is an answer nobody asked for.
const secStolen = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"stolen\":true}\n"

// secRawInstance is an instance written on raw TCP that follows its first
// answer on every connection with a second, complete answer nobody asked
// for, in the same write. It counts connections, and requests that came
// on a connection after its unasked answer.
func secRawInstance(t *testing.T) (u *url.URL, conns, reused *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns, reused = new(atomic.Int32), new(atomic.Int32)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					var m struct{ Stream *bool }
					json.NewDecoder(req.Body).Decode(&m)
					io.Copy(io.Discard, req.Body)
					if i > 0 {
						reused.Add(1)
					}
					answer := secRawAnswer(req.URL.Path, m.Stream != nil && *m.Stream)
					if i == 0 {
						answer += secStolen
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			})
		}
	})
	u, _ = url.Parse("http://" + l.Addr().String())
	return u, conns, reused
}

// secRawAnswer is a whole answer as an instance writes it: streams
// chunked, the rest with a Content-Length.
func secRawAnswer(path string, stream bool) string {
	var body, ctype string
	switch {
	case path == "/api/chat" && stream:
		ctype, body = "application/x-ndjson", `{"model":"m:latest","message":{"role":"assistant","content":"ok"},"done":false}`+"\n"+
			`{"model":"m:latest","message":{"role":"assistant","content":""},"done":true,"prompt_eval_count":1,"eval_count":1}`+"\n"
	case path == "/api/chat":
		ctype, body = "application/json", `{"model":"m:latest","message":{"role":"assistant","content":"ok"},"done":true}`
	case stream:
		ctype, body = "text/event-stream", `data: {"choices":[{"index":0,"delta":{"content":"ok"}}]}`+"\n\n"+"data: [DONE]\n\n"
	default:
		ctype, body = "application/json", `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`
	}
	if stream {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", ctype, len(body), body)
	}
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", ctype, len(body), body)
}

// TestSecUnsolicitedUpstreamBytes: what an instance sends unasked after
// an answer never reaches the next client, whether the answer was
// streamed or whole. The Transport drops such a connection when it sees
// the bytes while the connection is idle; when a request takes the
// connection first (golang/go#31259, seen under load), the gateway sees
// that the answer came before the request and fails the attempt with a
// 502 rather than pass it on.
func TestSecUnsolicitedUpstreamBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path   string
		stream bool
	}{
		{"/v1/chat/completions", false},
		{"/v1/chat/completions", true},
		{"/api/chat", false},
		{"/api/chat", true},
	}
	const requests = 10
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s stream %v", tc.path, tc.stream), func(t *testing.T) {
			t.Parallel()
			inst, conns, reused := secRawInstance(t)
			d := startSecDoor(t, inst, secDoorOpts{})
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			refused := 0
			for i := range requests {
				req, _ := http.NewRequest("POST", d.url+tc.path, strings.NewReader(fmt.Sprintf(`{"model":"m","stream":%v}`, tc.stream)))
				req.Header.Set("Authorization", "Bearer good")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case strings.Contains(string(b), "stolen"):
					t.Fatalf("request %d got the bytes sent unasked: %d %q", i, resp.StatusCode, b)
				case resp.StatusCode == http.StatusBadGateway && strings.Contains(string(b), "answered before it was asked"):
					refused++
				case resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"ok"`):
					t.Fatalf("request %d got %d %q", i, resp.StatusCode, b)
				}
			}
			t.Logf("%d requests, %d instance connections, %d requests on a connection after its unasked answer, %d refused for it",
				requests, conns.Load(), reused.Load(), refused)
		})
	}
}

// TestSecWebsocketThroughChatUI: a websocket to the chat UI passes through
// the front door's whole chain on a domain; the echo still works after
// the connection idled for longer than WriteIdle (the hijacked connection
// carries no deadline of the request it was), and the chat UI sees the
// public Host and the forwarded fields. The chain is served over plain
// HTTP here; over HTTPS it is the TLS tests' part.
func TestSecWebsocketThroughChatUI(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	seenc := make(chan http.Header, 1)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		seenc <- h
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, b); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	eu, _ := url.Parse(echo.URL)
	h := secListenerHandler(t, frontdoor.Config{
		Domains: []string{"chat.test"}, Gateway: secNamed("gateway"), ChatUI: frontdoor.NewWebProxy(eu, secQuiet()),
		Limits: frontdoor.Limits{WriteIdle: idle, BodyIdle: idle},
	}, "https")
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, front.Listener.Addr().String())
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://chat.test/socket", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	echoOnce := func(msg string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		_, b, err := ws.Read(ctx)
		if err != nil || string(b) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, b, err)
		}
	}
	echoOnce("one")
	time.Sleep(4 * idle)
	echoOnce("two")
	ws.Close(websocket.StatusNormalClosure, "")
	got := <-seenc
	want := map[string]string{"Host": "chat.test", "X-Forwarded-Host": "chat.test", "X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http"}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("the chat UI saw %s %q, want %q", k, got.Get(k), v)
		}
	}
}

func TestSecRoutingTable(t *testing.T) {
	t.Parallel()
	gw := func(l, host, prefix string) frontdoor.Route {
		return frontdoor.Route{Listener: l, Host: host, Prefix: prefix, Target: frontdoor.ToGateway}
	}
	ui := frontdoor.Route{Listener: "https", Host: "chat.test", Prefix: "/", Target: frontdoor.ToChatUI}
	redirect := func(host string) frontdoor.Route {
		return frontdoor.Route{Listener: "redirect", Host: host, Prefix: "/", Target: frontdoor.ToHTTPS}
	}
	cases := []struct {
		name           string
		addr, chatAddr string
		domains, apis  []string
		chatUI         bool
		files          string
		want           []frontdoor.Route
	}{
		{"no domain", ":8080", ":3000", nil, nil, false, "", []frontdoor.Route{gw("http", "", "/")}},
		{"no domain, the chat UI on --chat-addr", ":8080", ":3000", nil, nil, true, "",
			[]frontdoor.Route{gw("http", "", "/"), {Listener: "chat", Prefix: "/", Target: frontdoor.ToChatUI}}},
		{"no domain, no chat listener", ":8080", "", nil, nil, true, "", []frontdoor.Route{gw("http", "", "/")}},
		{"domain without chat UI", ":8080", ":3000", []string{"chat.test"}, nil, false, "",
			[]frontdoor.Route{gw("https", "chat.test", "/v1/"), gw("https", "chat.test", "/"), redirect("chat.test"), gw("http", "", "/")}},
		{"domain with chat UI: HTTPS only", ":8080", ":3000", []string{"chat.test"}, nil, true, "",
			[]frontdoor.Route{gw("https", "chat.test", "/v1/"), ui, redirect("chat.test"), gw("http", "", "/")}},
		{"api domain, no plain listener", "", "", nil, []string{"api.test"}, true, "",
			[]frontdoor.Route{gw("https", "api.test", "/"), redirect("api.test")}},
		{"chat UI files on the domain", "", "", []string{"chat.test"}, nil, true, "/lobe/",
			[]frontdoor.Route{gw("https", "chat.test", "/v1/"), {Listener: "https", Host: "chat.test", Prefix: "/lobe/", Target: frontdoor.ToFiles}, ui, redirect("chat.test")}},
		{"both", "", "", []string{"chat.test"}, []string{"api.test"}, true, "",
			[]frontdoor.Route{gw("https", "chat.test", "/v1/"), ui, gw("https", "api.test", "/"), redirect("chat.test"), redirect("api.test")}},
	}
	for _, tc := range cases {
		if got := frontdoor.Table(tc.addr, tc.chatAddr, tc.domains, tc.apis, tc.chatUI, tc.files); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Table = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSecRouter: each listener sends each host and path where the table
// says, a host it does not serve gets 421 rather than a guess, and the
// HTTP port redirects to HTTPS with the path and query kept.
func TestSecRouter(t *testing.T) {
	t.Parallel()
	cfg := frontdoor.Config{Addr: "127.0.0.1:0", Domains: []string{"chat.test"}, APIDomains: []string{"api.test"},
		Gateway: secNamed("gateway"), ChatUI: secNamed("chat-ui")}
	httpsPort := secFreePort(t)
	cfg.HTTPSAddr = "127.0.0.1:" + httpsPort // the port the redirects name
	servers := map[string]*httptest.Server{}
	for _, l := range []string{"http", "https", "redirect"} {
		servers[l] = httptest.NewServer(secListenerHandler(t, cfg, l))
		t.Cleanup(servers[l].Close)
	}
	noChatUI := cfg
	noChatUI.ChatUI = nil
	servers["https without chat UI"] = httptest.NewServer(secListenerHandler(t, noChatUI, "https"))
	t.Cleanup(servers["https without chat UI"].Close)
	cases := []struct {
		listener, host, path string
		status               int
		want                 string
	}{
		{"https", "chat.test", "/v1/chat/completions", 200, "gateway"},
		{"https", "chat.test", "/", 200, "chat-ui"},
		{"https", "chat.test", "/api/tags", 200, "chat-ui"},
		{"https", "CHAT.test.:443", "/v1/models", 200, "gateway"},
		{"https", "api.test", "/api/tags", 200, "gateway"},
		{"https", "api.test", "/", 200, "gateway"},
		{"https", "evil.test", "/v1/models", 421, "this server does not serve evil.test"},
		{"https", "127.0.0.1", "/", 421, "this server does not serve 127.0.0.1"},
		{"https without chat UI", "chat.test", "/", 200, "gateway"},
		{"http", "evil.test", "/api/tags", 200, "gateway"},
		{"redirect", "chat.test", "/v1/models?x=1", 308, "https://chat.test:" + httpsPort + "/v1/models?x=1"},
		{"redirect", "api.test:80", "/api/tags", 308, "https://api.test:" + httpsPort + "/api/tags"},
		{"redirect", "evil.test", "/", 421, "this server does not serve evil.test"},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", servers[tc.listener].URL+tc.path, nil)
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := strings.TrimSpace(string(b))
		if tc.status == http.StatusPermanentRedirect {
			got = resp.Header.Get("Location")
		}
		if resp.StatusCode != tc.status || got != tc.want {
			t.Errorf("%s %s%s: %d %q, want %d %q", tc.listener, tc.host, tc.path, resp.StatusCode, got, tc.status, tc.want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s%s: no security headers", tc.listener, tc.host, tc.path)
		}
	}
}

// secNoAddress fails the test when an answer names an address of
// corral's side: 127.0.0.1, or an instance's port.
func secNoAddress(t *testing.T, what string, resp *http.Response, body string, ports ...string) {
	t.Helper()
	var text strings.Builder
	text.WriteString(body)
	for k, vs := range resp.Header {
		if k != "X-Request-Id" && k != "Date" {
			fmt.Fprintf(&text, "\n%s: %s", k, strings.Join(vs, ", "))
		}
	}
	for _, s := range append([]string{"127.0.0.1", "localhost"}, ports...) {
		if strings.Contains(text.String(), s) {
			t.Errorf("%s: the answer names %q: %s", what, s, text.String())
		}
	}
}

// TestSecErrorsNameNoAddress: an instance that is down, one that dies
// mid-answer and a chat UI that is down give errors that name no
// internal address.
func TestSecErrorsNameNoAddress(t *testing.T) {
	t.Parallel()
	dead := secDeadURL(t)
	// cut answers its head and part of its body, then drops the
	// connection: a stream after two events, a whole answer half way.
	cut := secInstance(t, func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Stream *bool }
		json.NewDecoder(r.Body).Decode(&m)
		stream := m.Stream == nil && r.URL.Path == "/api/chat" || m.Stream != nil && *m.Stream
		switch {
		case stream && r.URL.Path == "/api/chat":
			w.Header().Set("Content-Type", "application/x-ndjson")
			io.WriteString(w, `{"model":"m:latest","message":{"role":"assistant","content":"a"},"done":false}`+"\n")
		case stream:
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write(secSSEChunk(8))
			w.Write(secSSEChunk(8))
		default:
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, `{"model":`)
		}
		w.(http.Flusher).Flush()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})
	cases := []struct {
		name, path, body string
		instance         *url.URL
		status           int
		want             string
	}{
		{"down, whole", "/v1/chat/completions", `{"model":"m","stream":false}`, dead, 502, "connection refused"},
		{"down, SSE", "/v1/chat/completions", `{"model":"m","stream":true}`, dead, 502, "connection refused"},
		{"down, NDJSON", "/api/chat", `{"model":"m"}`, dead, 502, "connection refused"},
		{"cut, whole", "/v1/chat/completions", `{"model":"m","stream":false}`, cut, 502, "cut off"},
		{"cut, SSE", "/v1/chat/completions", `{"model":"m","stream":true}`, cut, 200, "failed mid-stream: connection lost"},
		{"cut, NDJSON", "/api/chat", `{"model":"m"}`, cut, 200, "failed mid-stream: connection lost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startSecDoor(t, tc.instance, secDoorOpts{})
			req, _ := http.NewRequest("POST", d.url+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer good")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, b, tc.status, tc.want)
			}
			secNoAddress(t, tc.name, resp, string(b), tc.instance.Port())
		})
	}
	t.Run("chat UI down", func(t *testing.T) {
		t.Parallel()
		front := httptest.NewServer(secListenerHandler(t, frontdoor.Config{Domains: []string{"chat.test"},
			Gateway: secNamed("gateway"), ChatUI: frontdoor.NewWebProxy(dead, secQuiet())}, "https"))
		t.Cleanup(front.Close)
		req, _ := http.NewRequest("GET", front.URL+"/", nil)
		req.Host = "chat.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
		secNoAddress(t, "chat UI down", resp, string(b), dead.Port())
	})
}
