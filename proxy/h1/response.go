package h1

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"corral/proxy/rawconn"
)

// outSize is how much of a response is gathered before it is written:
// a body complete within it gets a Content-Length, and small writes
// between flushes share one system call.
const outSize = 4096

// response is the http.ResponseWriter, and http.Flusher, of one request.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	body   *body // nil: none

	wroteHeader bool
	committed   bool // the headers are in c.out or gone
	noBody      bool // HEAD, 204, 304: no body bytes on the wire
	bodyless    bool // 204, 304: Write is an error
	chunked     bool
	cl          int64 // the handler's Content-Length, or -1
	written     int64
	sniff       bool // no Content-Type given: detect it from the first bytes
	sentClose   bool // the handler's headers say Connection: close
	keepAlive   bool
	ended       bool // EndBody or finish: the whole response is out
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader serializes the headers at once, so later changes to the map
// do not count, as with net/http; they leave with the first body bytes.
func (w *response) WriteHeader(code int) { w.writeHeader(code, nil) }

// WriteHeaderLines is WriteHeader for a proxy: lines are more header
// fields, already serialized, each ending in CRLF (an upstream's, passed
// through without building a map for them), written after the map's.
// Framing is h1's, so a Content-Length, Transfer-Encoding or Connection
// among them is left out, as is a line net/http would refuse to send.
func (w *response) WriteHeaderLines(code int, lines []byte) { w.writeHeader(code, lines) }

func (w *response) writeHeader(code int, lines []byte) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		w.c.s.Logger.Warn("superfluous WriteHeader call", "code", code, "path", w.req.URL.Path)
		return
	}
	c := w.c
	if code < 200 && code != http.StatusSwitchingProtocols {
		// Informational: out now, and the final status comes later.
		b := appendHeaders(appendStatusLine(c.hdr[:0], code), w.header, new(headerSeen))
		b, _, _ = appendLines(b, lines)
		c.hdr = append(b, "\r\n"...)
		c.out = append(c.out, c.hdr...)
		c.flush()
		return
	}
	w.wroteHeader, w.cl = true, -1
	w.bodyless = code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusSwitchingProtocols
	w.noBody = w.bodyless || w.req.Method == http.MethodHead
	var seen headerSeen
	b := appendHeaders(appendStatusLine(c.hdr[:0], code), w.header, &seen)
	b, hasDate, hasType := appendLines(b, lines)
	if seen.length != nil {
		if n, err := strconv.ParseUint(seen.length[0], 10, 63); err == nil {
			w.cl = int64(n)
		} else {
			c.s.Logger.Warn("invalid Content-Length from handler, ignored", "value", seen.length[0], "path", w.req.URL.Path)
		}
	}
	w.sentClose = HasToken(seen.connection, "close")
	if w.sentClose {
		w.keepAlive = false
	}
	w.sniff = !seen.ctype && !hasType && !w.bodyless
	if !seen.date && !hasDate {
		b = append(b, "Date: "...)
		b = c.s.appendDate(b)
		b = append(b, "\r\n"...)
	}
	c.hdr = b
}

// commit decides the framing and puts the headers, and the body bytes
// gathered so far, into c.out. final: the handler has returned, so the
// whole body is known.
func (w *response) commit(final bool) {
	c := w.c
	b := c.hdr
	switch {
	case w.bodyless:
	case w.cl >= 0:
		b = appendField(b, "Content-Length", w.cl)
	case final && (!w.noBody || w.written > 0):
		b = appendField(b, "Content-Length", w.written)
	case !w.noBody:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.sniff && len(c.out) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(c.out)...)
		b = append(b, "\r\n"...)
	}
	// A body the handler left unread past what is worth reading away
	// ends the connection; so does a server shutting down.
	if (w.body != nil && w.body.remain > maxDiscard) || c.s.closing.Load() {
		w.keepAlive = false
	}
	if !w.keepAlive && !w.sentClose {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	switch {
	case w.noBody:
	case w.chunked && len(c.out) > 0:
		b = appendChunkHead(b, len(c.out))
		b = append(b, c.out...)
		b = append(b, "\r\n"...)
	default:
		b = append(b, c.out...)
	}
	c.hdr, c.out = c.out[:0], b
	w.committed = true
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.c
	if c.werr != nil {
		return 0, c.werr
	}
	if w.ended {
		return 0, ErrBodyEnded
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.bodyless {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		// Gathered for a HEAD response too: its Content-Type is sniffed
		// from them, and its Content-Length counted, as net/http does.
		if len(c.out)+len(p) <= outSize {
			c.out = append(c.out, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	if w.noBody {
		return len(p), nil
	}
	if len(c.out)+len(p)+32 <= outSize {
		if w.chunked {
			c.out = appendChunkHead(c.out, len(p))
		}
		c.out = append(c.out, p...)
		if w.chunked {
			c.out = append(c.out, "\r\n"...)
		}
		return len(p), nil
	}
	// Large: written from p itself, with what was gathered before it.
	var err error
	if w.chunked {
		c.out = appendChunkHead(c.out, len(p))
		err = c.writev(c.out, p, crlf)
	} else {
		err = c.writev(c.out, p)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) Flush() { w.FlushError() }

// FlushError sends what was written so far (http.ResponseController
// looks for it).
func (w *response) FlushError() error {
	if w.ended {
		return w.c.werr
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	return w.c.flush()
}

// ErrBodyEnded is a Write after EndBody.
var ErrBodyEnded = errors.New("h1: write after EndBody")

// EndBody sends the whole response now, before the handler returns:
// what was written, and a chunked body's last chunk, in one write. A
// proxy that has bookkeeping left after its answer's last byte (a log
// line, usage) lets the client have the end of the answer first, rather
// than wait for it. Writes after it fail with ErrBodyEnded. The
// gateway finds it through an interface it declares, as net/http has no
// such call.
func (w *response) EndBody() error {
	w.finish()
	return w.c.werr
}

// finish ends the response: at EndBody, or once the handler has
// returned.
func (w *response) finish() {
	if w.ended {
		return
	}
	w.ended = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked {
		w.c.out = append(w.c.out, "0\r\n\r\n"...)
	}
	if !w.noBody && w.cl >= 0 && w.written < w.cl {
		w.keepAlive = false // the client waits for bytes that never come
	}
	w.c.flush()
}

var crlf = []byte("\r\n")

// flush writes c.out.
func (c *conn) flush() error {
	if len(c.out) == 0 || c.werr != nil {
		return c.werr
	}
	return c.writev(c.out)
}

// writev writes bufs in one system call; c.out is empty after it. A
// failed write means the client is gone: the request's context ends, so
// the handler stops its upstream.
func (c *conn) writev(bufs ...[]byte) error {
	if c.werr != nil {
		return c.werr
	}
	_, err := rawconn.Writev(c.nc, bufs...)
	c.out = c.out[:0]
	if err != nil {
		c.werr = err
		c.reqCancel()
	}
	return err
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if t := http.StatusText(code); t != "" {
		b = append(b, t...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// headerSeen is what WriteHeader needs of the handler's header, noted
// while it is written out rather than looked up key by key.
type headerSeen struct {
	length, connection []string
	ctype, date        bool
}

// appendHeaders writes h but the fields h1 writes itself. As net/http
// does, it drops invalid field names and turns line breaks inside values
// into spaces, so a handler cannot split the response.
func appendHeaders(b []byte, h http.Header, seen *headerSeen) []byte {
	for k, vs := range h {
		switch k {
		case "Content-Length":
			seen.length = vs
			continue
		case "Transfer-Encoding":
			continue
		case "Connection":
			seen.connection = vs
		case "Content-Type":
			seen.ctype = true
		case "Date":
			seen.date = true
		}
		if !validToken(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			b = append(b, strings.TrimSpace(v)...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// appendLines writes the valid lines of a WriteHeaderLines but those for
// framing, and says whether they carry a Date and a Content-Type.
func appendLines(b, lines []byte) (out []byte, date, ctype bool) {
	for len(lines) > 0 {
		i := bytes.Index(lines, crlf)
		if i < 0 {
			break
		}
		line := lines[:i+2]
		lines = lines[i+2:]
		name, value, ok := bytes.Cut(line[:i], colon)
		if !ok || !validToken(name) || !validValue(value) {
			continue // validValue takes the spaces and tabs around a value
		}
		switch {
		case fieldIs(name, "Content-Length"), fieldIs(name, "Transfer-Encoding"), fieldIs(name, "Connection"):
			continue
		case fieldIs(name, "Date"):
			date = true
		case fieldIs(name, "Content-Type"):
			ctype = true
		}
		b = append(b, line...)
	}
	return b, date, ctype
}

var colon = []byte(":")

// fieldIs compares a field name as sent, a token, with a canonical one
// of letters and dashes, ASCII case-insensitively: among token bytes,
// only a letter's two cases are equal once 0x20 is set.
func fieldIs(name []byte, canon string) bool {
	if len(name) != len(canon) {
		return false
	}
	for i, c := range name {
		if c|0x20 != canon[i]|0x20 {
			return false
		}
	}
	return true
}

func appendField(b []byte, k string, n int64) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

func appendChunkHead(b []byte, n int) []byte {
	b = strconv.AppendInt(b, int64(n), 16)
	return append(b, "\r\n"...)
}

// cachedDate is the Date header's value for one second.
type cachedDate struct {
	sec int64
	val []byte
}

func (s *Server) appendDate(b []byte) []byte {
	now := time.Now()
	d := s.date.Load()
	if d == nil || d.sec != now.Unix() {
		d = &cachedDate{sec: now.Unix(), val: now.UTC().AppendFormat(nil, http.TimeFormat)}
		s.date.Store(d)
	}
	return append(b, d.val...)
}
