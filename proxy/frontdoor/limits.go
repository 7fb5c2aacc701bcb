package frontdoor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limits bound what a client, or a stranger, can make the front door
// hold: every wait has a deadline and every resource a cap. Zero values
// take the defaults.
type Limits struct {
	// MaxBody is the largest request body (images come base64), enforced
	// while reading.
	MaxBody int64
	// ReadHeader bounds a request's header; Idle a keep-alive connection
	// between requests.
	ReadHeader time.Duration
	Idle       time.Duration
	// BodyIdle cuts a request body that sends nothing this long.
	BodyIdle time.Duration
	// WriteIdle cuts a client that takes nothing of its answer this long;
	// a stream that flows lives as long as it flows.
	WriteIdle time.Duration
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int
	// MaxConns caps open connections in total and per client address.
	MaxConns      int
	MaxConnsPerIP int
}

// DefaultLimits are what `corral serve` uses unless told otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxBody:        32 << 20,
		ReadHeader:     10 * time.Second,
		Idle:           2 * time.Minute,
		BodyIdle:       30 * time.Second,
		WriteIdle:      60 * time.Second,
		MaxHeaderBytes: 64 << 10,
		MaxConns:       4096,
		MaxConnsPerIP:  256,
	}
}

func (l *Limits) defaults() {
	d := DefaultLimits()
	orDefault(&l.MaxBody, d.MaxBody)
	orDefault(&l.ReadHeader, d.ReadHeader)
	orDefault(&l.Idle, d.Idle)
	orDefault(&l.BodyIdle, d.BodyIdle)
	orDefault(&l.WriteIdle, d.WriteIdle)
	orDefault(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	orDefault(&l.MaxConns, d.MaxConns)
	orDefault(&l.MaxConnsPerIP, d.MaxConnsPerIP)
}

// orDefault sets *v to def unless it is positive.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// connCounter caps connections in total and per client address across
// all of the front door's listeners.
type connCounter struct {
	max, maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

func newConnCounter(l Limits) *connCounter {
	return &connCounter{max: l.MaxConns, maxPerIP: l.MaxConnsPerIP, perIP: map[netip.Addr]int{}}
}

// take counts a new connection from ip, or says why it is refused.
func (c *connCounter) take(ip netip.Addr) (status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.total >= c.max:
		return http.StatusServiceUnavailable
	case c.perIP[ip] >= c.maxPerIP:
		return http.StatusTooManyRequests
	}
	c.total++
	c.perIP[ip]++
	return 0
}

func (c *connCounter) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.perIP[ip]--; c.perIP[ip] <= 0 {
		delete(c.perIP, ip)
	}
}

// open is the number of connections counted now.
func (c *connCounter) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// limitListener refuses connections over the caps as they are accepted,
// before anything is read from them. On a plain HTTP listener the refusal
// is a short 503 or 429 the client can show; under TLS it is a close, as
// answering would cost a handshake.
type limitListener struct {
	net.Listener
	counter *connCounter
	plain   bool
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		if status := l.counter.take(ip); status != 0 {
			if l.plain {
				go refuse(c, status)
			} else {
				c.Close() // answering would cost a handshake
			}
			continue
		}
		return &countedConn{Conn: c, release: func() { l.counter.release(ip) }}, nil
	}
}

// refuse answers a plain HTTP connection over the caps and closes it,
// within a second whatever the client does.
func refuse(c net.Conn, status int) {
	defer c.Close()
	msg := "corral is at its connection limit: try again shortly\n"
	if status == http.StatusTooManyRequests {
		msg = "too many connections from your address: close some and try again\n"
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(msg), msg)
}

// countedConn gives its place back once, however often it is closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// deadlines gives every request a rolling write deadline and a rolling
// read deadline on its body, and caps the body's size. net/http has only
// whole-request timeouts, which would cut an hour-long stream that
// flows; these cut only what stalls.
func deadlines(l Limits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), idle: l.WriteIdle}
		if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
			// RFC 9112 6.1: after a request with both Content-Length and
			// Transfer-Encoding (a smuggling attempt, or a proxy in front
			// that framed it otherwise) the connection must close. net/http
			// deletes the Content-Length before a handler sees the request,
			// so the two cannot be told apart: every chunked request closes
			// its connection, which costs an honest client a reconnect.
			w.Header().Set("Connection", "close")
		}
		// Also replaces the deadline an earlier request on this connection
		// left behind.
		dw.extend(true)
		if r.Body != nil && r.Body != http.NoBody {
			db := &deadlineBody{body: http.MaxBytesReader(w, r.Body, l.MaxBody), rc: dw.rc, idle: l.BodyIdle}
			// The handler gets a copy: after it returns, net/http looks at
			// the type of its own request's body to decide between closing
			// the connection and reading up to 256 KiB of what is left (or
			// sending 100 Continue for it). A wrapper there would make it
			// read, for a stranger whose key was refused too.
			r = r.WithContext(r.Context())
			r.Body = db
			defer db.finish()
		}
		// Time for what net/http writes once the handler returns.
		defer dw.extend(true)
		next.ServeHTTP(dw, r)
	})
}

// deadlineWriter pushes the connection's write deadline forward before
// each write: a client that reads nothing for idle makes the write fail,
// and the handler then cancels what it was waiting on (the gateway: the
// instance's request, freeing its slot). A websocket hijacks the
// connection through Unwrap, and net/http clears its deadlines then.
type deadlineWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
	next time.Time // the deadline is pushed again only after this
}

func (d *deadlineWriter) extend(always bool) {
	now := time.Now()
	if always || now.After(d.next) {
		d.rc.SetWriteDeadline(now.Add(d.idle))
		// A stream writes many times a second: setting the deadline at
		// most every idle/8 keeps it at least 7/8 of idle ahead.
		d.next = now.Add(d.idle / 8)
	}
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.extend(false)
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) FlushError() error {
	d.extend(false)
	return d.rc.Flush()
}

func (d *deadlineWriter) Flush() { d.FlushError() }

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// deadlineBody sets the read deadline before each read of a body, and
// clears it once the body is read to its end, so that net/http's watch
// for the client leaving is not cut by it.
type deadlineBody struct {
	body io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.body.Read(p)
	if err != nil {
		b.done = true
		if err == io.EOF {
			b.rc.SetReadDeadline(time.Time{})
		}
		// Otherwise the deadline stays: net/http's own read of what is
		// left of a body that stalled fails at once instead of waiting
		// for it without end.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("request body: nothing received for %s", b.idle)
		}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// finish leaves a body that was not read to its end with a deadline, so
// what net/http reads of it after the handler is bounded too.
func (b *deadlineBody) finish() {
	if !b.done {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}
