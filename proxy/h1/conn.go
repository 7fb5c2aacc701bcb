package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown: only an idle connection (no byte of a
// next request read) may be closed under a client.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
)

// maxDiscard is how much of a body its handler left unread is read away
// to keep the connection; more, and the connection closes (net/http's
// figure).
const maxDiscard = 256 << 10

var (
	// errHandOff: the head is net/http's to read (too large, or lines
	// ending in a bare LF, which h1 never finds the end of).
	errHandOff   = errors.New("request head for net/http")
	lf2          = []byte("\n\n")
	crlf2        = []byte("\r\n\r\n")
	aLongTimeAgo = time.Unix(1, 0)
)

type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	state  atomic.Int32

	buf  []byte // read buffer; buf[r:w] is read and not yet consumed
	r, w int

	reqCancel context.CancelFunc

	// The background read watches for the client leaving while a handler
	// runs; it reads into buf[w:], so bytes of a next request are kept.
	bgOn   bool
	bgDone chan struct{}
	bgN    int
	bgErr  error

	deadline bool // a read deadline is set
	// linger: the client may still be sending a body the handler did not
	// read; see closeWriteAndWait.
	linger bool

	hdr  []byte // response headers being built
	out  []byte // response bytes not yet written
	werr error
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), buf: make([]byte, 4096), bgDone: make(chan struct{}, 1)}
}

func (c *conn) serve() {
	handedOff := false
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.s.Logger.Error("panic serving request", "remote", c.remote, "panic", fmt.Sprint(v), "stack", string(buf))
		}
		if !handedOff {
			if c.linger {
				c.closeWriteAndWait()
			}
			c.nc.Close()
		}
		c.s.forget(c)
	}()
	first := true
	for {
		end, err := c.readHeader(first)
		first = false
		if errors.Is(err, errHandOff) {
			handedOff = c.handOff()
			return
		}
		if err != nil {
			return
		}
		var req http.Request
		cl, ok := c.parse(end, &req)
		if !ok {
			handedOff = c.handOff()
			return
		}
		c.r = end
		if !c.serveRequest(&req, cl) || c.s.closing.Load() {
			return
		}
	}
}

// rstAvoidance bounds closeWriteAndWait (net/http's figure).
const rstAvoidance = 500 * time.Millisecond

// closeWriteAndWait ends a connection whose client may still be sending
// a body: closing at once would answer its next bytes with a reset, and
// the reset makes the client's kernel drop the response it has not read
// yet (the 413 for a body too large, say). So the response is followed
// by a FIN, and what the client still sends is read away until it
// closes too, at most rstAvoidance, as net/http does.
func (c *conn) closeWriteAndWait() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(rstAvoidance))
	io.Copy(io.Discard, c.nc)
}

// handOff gives the connection, with what was read of it, to net/http.
func (c *conn) handOff() bool {
	c.nc.SetDeadline(time.Time{})
	pc := &prefixConn{Conn: c.nc, pre: c.buf[c.r:c.w]}
	return c.s.handoff.give(pc)
}

// readHeader reads until buf[r:] holds a whole header block and returns
// where it ends. A new connection gets ReadHeaderTimeout for its first
// request; a kept-alive one waits up to IdleTimeout for a next request's
// first byte, then ReadHeaderTimeout for the rest.
func (c *conn) readHeader(first bool) (int, error) {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	waiting := c.r == c.w
	if waiting && !first {
		c.setDeadline(c.idleTimeout())
	} else {
		c.setDeadline(c.s.ReadHeaderTimeout)
	}
	if waiting {
		c.state.Store(stateIdle)
	}
	scanned := c.r
	arrived := false // a next request's first bytes came in the last read
	var err error
	for {
		from := max(c.r, scanned-3)
		if i := bytes.Index(c.buf[from:c.w], crlf2); i >= 0 {
			c.setDeadline(0)
			return from + i + 4, nil
		}
		if bytes.Contains(c.buf[from:c.w], lf2) {
			return 0, errHandOff
		}
		scanned = c.w
		if err != nil {
			return 0, err
		}
		if arrived {
			// Not the whole head with its first bytes: from now on the
			// head's own limit.
			arrived = false
			c.setDeadline(c.s.ReadHeaderTimeout)
		}
		if c.w == len(c.buf) {
			switch {
			case c.r > 0:
				c.w = copy(c.buf, c.buf[c.r:c.w])
				scanned -= c.r
				c.r = 0
			case len(c.buf) >= maxHeaderBytes:
				return 0, errHandOff
			default:
				nb := make([]byte, min(2*len(c.buf), maxHeaderBytes))
				copy(nb, c.buf[:c.w])
				c.buf = nb
			}
		}
		var n int
		n, err = c.nc.Read(c.buf[c.w:])
		c.w += n
		if n > 0 && waiting {
			waiting = false
			if !c.state.CompareAndSwap(stateIdle, stateActive) {
				return 0, net.ErrClosed // Shutdown closed it meanwhile
			}
			arrived = !first
		}
	}
}

func (c *conn) idleTimeout() time.Duration {
	if c.s.IdleTimeout > 0 {
		return c.s.IdleTimeout
	}
	return c.s.ReadHeaderTimeout
}

// setDeadline sets the read deadline d from now; zero clears it. A
// connection without one is left alone: each call costs a timer update.
func (c *conn) setDeadline(d time.Duration) {
	switch {
	case d > 0:
		c.nc.SetReadDeadline(time.Now().Add(d))
		c.deadline = true
	case c.deadline:
		c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
	}
}

// serveRequest runs the handler and reports whether the connection may
// carry another request. parsed stays the caller's: the handler gets a
// copy with the request's context.
func (c *conn) serveRequest(parsed *http.Request, cl int64) bool {
	// A request's context ends when the client leaves, a write to it
	// fails, or the handler returns; the connection's requests run one
	// after another, so it needs no parent but Background (and a parent
	// that can end would cost each request a registration with it).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.reqCancel = cancel
	req := parsed.WithContext(ctx)
	var b *body
	if cl > 0 {
		b = &body{c: c, remain: cl}
		req.Body = b
	} else {
		req.Body = http.NoBody
		c.startBackgroundRead()
	}
	w := &response{c: c, req: req, header: make(http.Header, 8), body: b, keepAlive: !req.Close}
	c.s.Handler.ServeHTTP(w, req)
	w.finish()
	c.abortBackgroundRead()
	if b != nil && b.remain > 0 {
		if b.remain > maxDiscard || !w.keepAlive {
			c.linger = true
			return false
		}
		if !b.discard() {
			return false
		}
	}
	return w.keepAlive && c.werr == nil && c.bgErr == nil
}

// startBackgroundRead waits for the client's next bytes while the handler
// runs: an end of file or an error there means the client left, which
// cancels the request. Bytes already buffered past this request
// (pipelining) leave nothing to watch.
func (c *conn) startBackgroundRead() {
	if c.bgOn || c.r < c.w {
		return
	}
	c.r, c.w = 0, 0
	c.bgOn, c.bgN, c.bgErr = true, 0, nil
	go c.backgroundRead()
}

func (c *conn) backgroundRead() {
	n, err := c.nc.Read(c.buf[c.w:])
	c.bgN, c.bgErr = n, err
	if n == 0 && err != nil && !isTimeout(err) {
		c.reqCancel()
	}
	c.bgDone <- struct{}{}
}

// abortBackgroundRead stops the background read and keeps what it read.
func (c *conn) abortBackgroundRead() {
	if !c.bgOn {
		return
	}
	c.nc.SetReadDeadline(aLongTimeAgo)
	c.deadline = true
	<-c.bgDone
	c.bgOn = false
	c.w += c.bgN
	if c.bgErr != nil && (c.bgN > 0 || isTimeout(c.bgErr)) {
		c.bgErr = nil // our own deadline, or data came with it
	}
}

// isTimeout runs twice a request: a type assertion first, as the
// connections' errors are *net.OpError, because errors.As walks types
// by reflection.
func isTimeout(err error) bool {
	if ne, ok := err.(net.Error); ok {
		return ne.Timeout()
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// body is a request body with a Content-Length.
type body struct {
	c      *conn
	remain int64
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.remain == 0 {
		b.c.startBackgroundRead()
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	c := b.c
	var n int
	var err error
	if c.r < c.w {
		n = copy(p, c.buf[c.r:c.w])
		c.r += n
	} else {
		n, err = c.nc.Read(p)
	}
	b.remain -= int64(n)
	if b.remain == 0 {
		// The end of file, and with it the background read, comes with
		// the next Read: a handler (the gateway's) may start it once it
		// has sent the request on, rather than on the way.
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// discard reads away what the handler left of the body.
func (b *body) discard() bool {
	c := b.c
	n := min(int64(c.w-c.r), b.remain)
	c.r += int(n)
	b.remain -= n
	if b.remain == 0 {
		return true
	}
	c.setDeadline(c.idleTimeout())
	_, err := io.CopyN(io.Discard, c.nc, b.remain)
	b.remain = 0
	return err == nil
}

func (b *body) Close() error {
	b.closed = true
	return nil
}
