package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"corral/proxy/h1"
	"corral/proxy/rawconn"
)

// leanClient is the HTTP/1.1 client for streaming requests. It runs
// entirely on the handler's goroutine: no writeLoop/readLoop goroutines
// and channel hand-offs per request as in http.Transport. Timeouts are
// connection deadlines; a client that goes away sets a deadline in the
// past, which aborts the read at once.
type leanClient struct {
	dialer        *upstreamDialer
	headerTimeout time.Duration
	idleTimeout   time.Duration // per read of a body
	maxIdle       int           // idle connections kept per host

	mu   sync.Mutex
	idle map[string][]idleConn // LIFO per host:port
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

// idleConnTimeout drops pooled connections unused this long.
const idleConnTimeout = 90 * time.Second

// aLongTimeAgo is a deadline that has passed: a read or write fails at once.
var aLongTimeAgo = time.Unix(1, 0)

// errUpstreamIdle is a body read that waited idleTimeout for a byte.
var errUpstreamIdle = errors.New("upstream idle")

var errHeaderTimeout = errors.New("timeout awaiting response headers")

func newLeanClient(cfg Config, d *upstreamDialer) *leanClient {
	return &leanClient{
		dialer:        d,
		headerTimeout: cfg.HeaderTimeout,
		idleTimeout:   cfg.IdleTimeout,
		maxIdle:       cfg.IdleConnsPerHost,
		idle:          map[string][]idleConn{},
	}
}

// get takes the most recently used idle connection to addr, or nil.
func (lc *leanClient) get(addr string) net.Conn {
	now := time.Now()
	lc.mu.Lock()
	l := lc.idle[addr]
	if n := len(l); n > 0 {
		ic := l[n-1]
		l[n-1] = idleConn{}
		if now.Sub(ic.since) <= idleConnTimeout {
			lc.idle[addr] = l[:n-1]
			lc.mu.Unlock()
			return ic.c
		}
		// The newest is too old: so are all the others.
		lc.idle[addr] = l[:0]
		lc.mu.Unlock()
		ic.c.Close()
		for i := range l[:n-1] {
			l[i].c.Close()
			l[i] = idleConn{}
		}
		return nil
	}
	lc.mu.Unlock()
	return nil
}

// put keeps c for reuse, or closes it when the pool is full.
func (lc *leanClient) put(addr string, c net.Conn) {
	lc.mu.Lock()
	l := lc.idle[addr]
	if len(l) >= lc.maxIdle {
		lc.mu.Unlock()
		c.Close()
		return
	}
	lc.idle[addr] = append(l, idleConn{c: c, since: time.Now()})
	lc.mu.Unlock()
}

// closeIdle closes every pooled connection.
func (lc *leanClient) closeIdle() {
	lc.mu.Lock()
	old := lc.idle
	lc.idle = map[string][]idleConn{}
	lc.mu.Unlock()
	for _, l := range old {
		for _, ic := range l {
			ic.c.Close()
		}
	}
}

var brPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

var hdrPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// usable reports whether u is an upstream the lean client speaks to.
func leanUsable(u *Upstream) bool { return u.URL != nil && u.URL.Scheme == "http" }

func hostPort(u *Upstream) string {
	if u.URL.Port() != "" {
		return u.URL.Host
	}
	port := "80"
	if u.URL.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.URL.Hostname(), port)
}

// appendRequestHeader writes the request line and headers for r sent to u,
// with the same filtering as upstreamRequest.
func appendRequestHeader(b []byte, r *http.Request, u *Upstream, fr forwardReq) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	if plainTarget(r) {
		b = append(b, r.RequestURI...)
	} else {
		if p := r.URL.EscapedPath(); p != "" {
			b = append(b, p...)
		} else {
			b = append(b, '/')
		}
		if r.URL.RawQuery != "" {
			b = append(b, '?')
			b = append(b, r.URL.RawQuery...)
		}
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.URL.Host...)
	b = append(b, "\r\n"...)
	for k, vs := range r.Header {
		if dropRequestField(k) || k == "Host" || k == "X-Request-Id" || k == "X-Forwarded-For" {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "X-Request-Id: "...)
	b = append(b, fr.rid...)
	b = append(b, "\r\n"...)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, host...)
		b = append(b, "\r\n"...)
	}
	if len(fr.body) > 0 || (r.Method != "GET" && r.Method != "HEAD") {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(fr.body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// plainTarget reports whether the request's target as sent is its path
// and query with nothing escaped: then it goes upstream as it came, and
// net/url is not asked to escape the path again.
func plainTarget(r *http.Request) bool {
	t, p, q := r.RequestURI, r.URL.Path, r.URL.RawQuery
	if p == "" || strings.IndexByte(t, '#') >= 0 {
		return false // a '#' the client sent stays escaped, as in its path
	}
	if q == "" {
		return t == p
	}
	return len(t) == len(p)+1+len(q) && strings.HasPrefix(t, p) && t[len(p)] == '?' && strings.HasSuffix(t, q)
}

// roundTrip sends fr.body to u and reads the response headers; the
// response's Header is nil where its fields are kept as lines (see
// bufferedHeader and leanBody.header). sent, if not nil, runs once the
// request is out: what can wait until then is off the path to the first
// token. A pooled connection that turns out stale (fails on write, or
// closes before a byte of answer) is replaced by one fresh dial.
func (lc *leanClient) roundTrip(r *http.Request, u *Upstream, fr forwardReq, sent func()) (*http.Response, error) {
	ctx := r.Context()
	addr := hostPort(u)
	hp := hdrPool.Get().(*[]byte)
	hdr := appendRequestHeader((*hp)[:0], r, u, fr)
	defer func() {
		*hp = hdr[:0]
		hdrPool.Put(hp)
	}()
	fresh := false
	for {
		var conn net.Conn
		if !fresh {
			conn = lc.get(addr)
		}
		reused := conn != nil
		if conn == nil {
			fresh = true
			var err error
			conn, err = lc.dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			conn = rawconn.Wrap(conn)
		}
		b := &leanBody{lc: lc, addr: addr, conn: conn}
		resp, stale, err := b.exchange(ctx, r.Method, hdr, fr.body, sent)
		sent = nil // once
		if err == nil {
			return resp, nil
		}
		if reused && stale && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// leanBody is a response read off one connection; it is the
// http.Response's Body.
type leanBody struct {
	lc       *leanClient
	addr     string
	conn     net.Conn
	br       *bufio.Reader
	tp       textproto.Reader
	stop     func() bool
	aborted  atomic.Bool
	deadline time.Time // the connection's read deadline

	resp *http.Response // the answer's, once it comes
	// fields are the header lines of a head read in place that pass
	// through to the client, as they came; resp.Header is nil then. They
	// live in fieldsBuf, a pooled buffer, until the body is released.
	fields    []byte
	fieldsBuf *[]byte

	chunked   bool
	cr        io.Reader
	remain    int64 // Content-Length bodies: bytes left; -1: until close
	keepAlive bool
	err       error // sticky
	done      bool  // conn released (pooled or closed)
}

func (b *leanBody) abort() {
	b.aborted.Store(true)
	b.conn.SetDeadline(aLongTimeAgo)
}

// smallBody is a request body that fits a socket's send buffer at its
// smallest default (tcp_wmem): writing it never waits for the upstream.
const smallBody = 16 << 10

// exchange writes the request and reads the response headers. stale says
// the error is that of a connection the server had closed. sent runs once
// the request is out.
func (b *leanBody) exchange(ctx context.Context, method string, hdr, body []byte, sent func()) (resp *http.Response, stale bool, err error) {
	defer func() {
		if err != nil {
			b.release(false)
		}
	}()
	// The client leaving aborts the exchange. A write that may wait on the
	// upstream needs that before it starts; a small one does not, and
	// then the watch is set up after it, off the path to the first token
	// (a client already gone then aborts at once).
	if len(hdr)+len(body) > smallBody {
		b.stop = context.AfterFunc(ctx, b.abort)
	}
	if _, err := rawconn.Writev(b.conn, hdr, body); err != nil {
		if b.aborted.Load() || ctx.Err() != nil {
			return nil, false, context.Canceled
		}
		return nil, true, err
	}
	if b.stop == nil {
		b.stop = context.AfterFunc(ctx, b.abort)
	}
	if sent != nil {
		sent()
	}
	// Made while the upstream works, rather than once it answers.
	b.resp = new(http.Response)
	b.fieldsBuf = hdrPool.Get().(*[]byte)
	b.br = brPool.Get().(*bufio.Reader)
	b.br.Reset(b.conn)
	b.tp.R = b.br
	b.cr = httputil.NewChunkedReader(b.br) // used if the answer is chunked
	if b.lc.headerTimeout > 0 {
		b.deadline = time.Now().Add(b.lc.headerTimeout)
		b.conn.SetReadDeadline(b.deadline)
		if b.aborted.Load() {
			return nil, false, context.Canceled
		}
	}
	if _, err := b.br.Peek(1); err != nil {
		// Nothing of an answer: a keep-alive connection the server closed.
		rerr := b.readErr(err, true)
		return nil, rerr == io.EOF || isReset(err), rerr
	}
	for {
		resp, err = b.readHeader(method)
		if err != nil {
			return nil, false, b.readErr(err, true)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // 100 Continue and the like: the answer follows
		}
		break
	}
	if b.lc.idleTimeout <= 0 {
		b.conn.SetReadDeadline(time.Time{})
	}
	return resp, false, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout() && strings.Contains(op.Err.Error(), "reset")
}

// readErr maps a read error: a past deadline is the client gone, or a
// timeout.
func (b *leanBody) readErr(err error, header bool) error {
	if err == nil {
		return nil
	}
	if b.aborted.Load() {
		return context.Canceled
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if header {
			return errHeaderTimeout
		}
		return errUpstreamIdle
	}
	return err
}

// framing is what the client takes from an answer's head for itself.
type framing struct {
	close, keepAlive bool // Connection tokens
	chunked          bool
	length           string // the first Content-Length; "" when none
}

// take notes a field the answer is framed with, and reports whether the
// field stays out of what passes through to the client: the framing,
// the other hop-by-hop fields, and those the gateway sets itself.
func (f *framing) take(name, value string) (drop bool) {
	switch {
	case strings.EqualFold(name, "Connection"):
		f.close = f.close || h1.HasToken([]string{value}, "close")
		f.keepAlive = f.keepAlive || h1.HasToken([]string{value}, "keep-alive")
	case strings.EqualFold(name, "Transfer-Encoding"):
		f.chunked = f.chunked || h1.HasToken([]string{value}, "chunked")
	case strings.EqualFold(name, "Content-Length"):
		if f.length == "" {
			f.length = value
		}
	default:
		return dropResponseField(name)
	}
	return true
}

func (b *leanBody) readHeader(method string) (*http.Response, error) {
	resp := b.resp
	*resp = http.Response{ProtoMajor: 1, ProtoMinor: 1, Body: b}
	var f framing
	if !b.bufferedHeader(resp, &f) {
		if err := b.readHeaderLines(resp, &f); err != nil {
			return nil, err
		}
	}
	if resp.Proto == "HTTP/1.0" {
		resp.ProtoMinor = 0
	}
	sc := resp.StatusCode
	b.keepAlive = !f.close && (resp.ProtoMinor == 1 || f.keepAlive)
	b.remain = -1
	b.chunked = false
	switch {
	case method == "HEAD" || sc == http.StatusNoContent || sc == http.StatusNotModified || (sc >= 100 && sc < 200):
		b.remain = 0
	case f.chunked:
		b.chunked = true
		resp.TransferEncoding = chunkedTE
		resp.ContentLength = -1
	case f.length != "":
		n, err := strconv.ParseInt(f.length, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad Content-Length %q", f.length)
		}
		b.remain = n
		resp.ContentLength = n
	default:
		b.keepAlive = false // the body ends with the connection
		resp.ContentLength = -1
	}
	return resp, nil
}

// bufferedHeader reads the usual answer's head in place: already whole
// in the buffer (the status line, the headers and the first bytes of the
// body come in one segment), in plain lines. Its fields are not read
// into a map: those that pass through to the client are kept as they
// came, in b.fields, and a front door that takes them so (h1) writes
// them out as they are, which spares a map on each side on the path of
// a stream's first token. false leaves anything else to readHeaderLines.
func (b *leanBody) bufferedHeader(resp *http.Response, f *framing) bool {
	buf, _ := b.br.Peek(b.br.Buffered())
	end := bytes.Index(buf, crlfCRLF)
	if end < 0 {
		return false
	}
	// Every line with its CRLF, read in place: nothing of block outlives
	// this call but what is copied (the fields) or cloned (the status and
	// a Content-Length), as the buffer's next fill overwrites it.
	block := unsafe.String(&buf[0], end+2)
	i := strings.Index(block, "\r\n")
	line, rest := block[:i], block[i+2:]
	proto, status, _ := strings.Cut(line, " ")
	if (proto != "HTTP/1.1" && proto != "HTTP/1.0") || len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return false
	}
	code := 0
	for _, c := range []byte(status[:3]) {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	// Room for the line writeStreamHeader adds, so adding it copies nothing.
	var fields []byte
	if b.fieldsBuf != nil {
		fields = (*b.fieldsBuf)[:0]
	}
	if need := len(rest) + len(accelLine); cap(fields) < need {
		fields = make([]byte, 0, need)
	}
	var fr framing
	for lines := rest; lines != ""; {
		name, value, next, ok := h1.NextField(lines)
		if !ok {
			return false
		}
		if !fr.take(name, value) {
			fields = append(fields, lines[:len(lines)-len(next)]...)
		}
		lines = next
	}
	b.br.Discard(end + 4)
	resp.Proto, resp.Status, resp.StatusCode = httpVersion(proto), statusText(status), code
	fr.length = strings.Clone(fr.length)
	b.fields, *f = fields, fr
	return true
}

// httpVersion is proto ("HTTP/1.1" or "HTTP/1.0") as a constant.
func httpVersion(proto string) string {
	if proto == "HTTP/1.0" {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// statusText is a status line's status, as a constant when it is the
// usual one and as a copy otherwise.
func statusText(status string) string {
	if status == "200 OK" {
		return "200 OK"
	}
	return strings.Clone(status)
}

var (
	crlfCRLF  = []byte("\r\n\r\n")
	chunkedTE = []string{"chunked"} // shared: read, never changed
)

// readHeaderLines reads the head line by line, for what bufferedHeader
// leaves, into resp.Header.
func (b *leanBody) readHeaderLines(resp *http.Response, f *framing) error {
	line, err := b.tp.ReadLine()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	proto, status, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") {
		return fmt.Errorf("malformed HTTP response %q", line)
	}
	c, _, _ := strings.Cut(status, " ")
	code, err := strconv.Atoi(c)
	if err != nil || len(c) != 3 {
		return fmt.Errorf("malformed HTTP status code %q", c)
	}
	mh, err := b.tp.ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	h := http.Header(mh)
	for _, k := range []string{"Connection", "Transfer-Encoding", "Content-Length"} {
		for _, v := range h[k] {
			f.take(k, v)
		}
	}
	delete(h, "Transfer-Encoding")
	resp.Proto, resp.Status, resp.StatusCode, resp.Header = proto, status, code, h
	return nil
}

// header is the answer's header: resp.Header, or for a head read in
// place, its fields read into one now, which must be before the body is
// released.
func (b *leanBody) header(resp *http.Response) http.Header {
	if resp.Header == nil && b.fields != nil {
		resp.Header, _ = h1.ParseFields(string(b.fields))
	}
	return resp.Header
}

// Read reads the body, each read bounded by the idle timeout. At the
// body's end the connection goes back to the pool.
func (b *leanBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.remain == 0 && !b.chunked {
		b.finish()
		return 0, b.err
	}
	// The deadline moves only when what is left of it is out of
	// IdleTimeout ± 1/16, and then to the top: a stream is cut after
	// 15/16 to 17/16 of IdleTimeout without a byte, at one timer update
	// per eighth of IdleTimeout rather than one per read. The header's
	// deadline (the same 5 minutes by default) is taken over as it is.
	if idle := b.lc.idleTimeout; idle > 0 {
		if left := time.Until(b.deadline); left < idle-idle/16 || left > idle+idle/16 {
			b.deadline = time.Now().Add(idle + idle/16)
			b.conn.SetReadDeadline(b.deadline)
		}
		if b.aborted.Load() { // the abort's deadline may have been overwritten
			b.err = context.Canceled
			b.release(false)
			return 0, b.err
		}
	}
	var n int
	var err error
	switch {
	case b.chunked:
		n, err = b.cr.Read(p)
		if err == io.EOF {
			// The chunked reader stops at the last chunk: the trailer and
			// its blank line follow.
			if terr := b.skipTrailer(); terr != nil {
				err = terr
			} else {
				b.finish()
				return n, b.err
			}
		}
	case b.remain > 0:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err = b.br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			b.finish()
			return n, b.err
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	default: // until close
		n, err = b.br.Read(p)
		if err == io.EOF {
			b.err = io.EOF
			b.release(false)
			return n, io.EOF
		}
	}
	if err != nil {
		b.err = b.readErr(err, false)
		b.release(false)
	}
	return n, b.err
}

// skipTrailer reads a chunked body's trailer to its blank line: no
// trailer is passed on, so its lines are not parsed.
func (b *leanBody) skipTrailer() error {
	mid := false // the last read ended inside a long line
	for {
		line, err := b.br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			mid = true
			continue
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case err != nil:
			return err
		}
		if !mid && (string(line) == "\r\n" || string(line) == "\n") {
			return nil
		}
		mid = false
	}
}

// finish ends a body read to its end: the connection is reused unless
// the server asked to close it or something is left unread.
func (b *leanBody) finish() {
	b.err = io.EOF
	b.release(b.keepAlive && b.br.Buffered() == 0)
}

// detach stops watching the client for this body: the answer is whole,
// and its last bytes are read even if the client leaves now, so the
// connection can serve again. Once the watch has fired it stays fired.
func (b *leanBody) detach() {
	if b.stop != nil && b.stop() {
		b.stop = nil
	}
}

// release gives the connection back to the pool (reuse) or closes it, once.
func (b *leanBody) release(reuse bool) {
	if b.done {
		return
	}
	b.done = true
	if b.stop != nil && !b.stop() {
		reuse = false // the client left: the deadline is in the past
	}
	if b.br != nil {
		b.br.Reset(nil)
		brPool.Put(b.br)
		b.br = nil
		b.tp.R = nil
	}
	if b.fieldsBuf != nil {
		*b.fieldsBuf = (*b.fieldsBuf)[:0]
		hdrPool.Put(b.fieldsBuf)
		b.fieldsBuf, b.fields = nil, nil
	}
	if reuse {
		b.lc.put(b.addr, b.conn)
	} else {
		b.conn.Close()
	}
}

// Close closes the connection unless the body was read to its end.
func (b *leanBody) Close() error {
	if b.err == nil {
		b.err = errors.New("read on closed body")
	}
	b.release(false)
	return nil
}
