package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

type forwardReq struct {
	route  route
	body   []byte
	model  string
	stream bool
	rid    string
	// dropUsage removes the usage chunk corral asked for on the client's
	// behalf; filter screens the output (nil: off).
	dropUsage bool
	filter    Filter
}

// forwardRes is what the log line and, later, usage metering need.
type forwardRes struct {
	instance string
	attempts int
	status   int
	bytes    int64
	ttfb     time.Duration
	outcome  string
	counts   counts
	frames   int    // generated frames passed on (see framer.frames)
	hit      string // filter phrase that cut the output
}

// client is the state of the response to the client across attempts.
type client struct {
	w         http.ResponseWriter
	flusher   http.Flusher
	committed bool // headers sent (SSE keep-alive comments at most, unless wrote)
	wrote     bool // a byte of an upstream's body reached the client
	start     time.Time
	res       *forwardRes
}

func (c *client) commitSSE() {
	if c.committed {
		return
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	c.committed = true
	c.res.status = http.StatusOK
}

func (c *client) write(p []byte) error {
	return c.send(p, true)
}

// send writes p, flushing it at once unless the stream is ending: then
// net/http sends it with the final chunk in one write when the handler
// returns.
func (c *client) send(p []byte, flush bool) error {
	if !c.wrote {
		c.wrote = true
		c.res.ttfb = time.Since(c.start)
	}
	n, err := c.w.Write(p)
	c.res.bytes += int64(n)
	if flush && c.flusher != nil {
		c.flusher.Flush()
	}
	return err
}

// bodyEnder is a front door that can send a whole response before the
// handler returns (h1's EndBody).
type bodyEnder interface {
	EndBody() error
}

// end sends what was written as the whole answer, or flushes it where
// the front door cannot end a response early.
func (c *client) end() {
	if e, ok := c.w.(bodyEnder); ok {
		e.EndBody()
	} else if c.flusher != nil {
		c.flusher.Flush()
	}
}

// pick chooses an upstream for model among those not yet tried and counts
// the request in flight there. Choosing and counting happen under one lock:
// otherwise concurrent requests all see the same counts and pile onto the
// same instance.
func (g *Gateway) pick(model string, tried map[string]bool) (*Upstream, *upstreamState, *apiError) {
	g.pickMu.Lock()
	defer g.pickMu.Unlock()
	s := g.upstreams.Snapshot()
	now := g.now()
	var cands, ejected, placed []Candidate
	var down []string
	has := 0
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		if !u.Models[model] {
			continue
		}
		has++
		st := g.states.get(u.Name)
		if !u.Healthy || u.Draining {
			down = append(down, fmt.Sprintf("%s is %s", u.Name, u.Status))
			continue
		}
		st.healedSince(u.Since)
		if tried[u.Name] {
			continue
		}
		c := Candidate{Index: i, Loaded: st.loaded(u, model), Inflight: st.inflight.Load(), Weight: u.Weight, Parallel: u.Parallel, FreeMemory: u.FreeMemory}
		if st.ejected(now) {
			ejected = append(ejected, c)
			continue
		}
		cands = append(cands, c)
		if u.Placed[model] {
			placed = append(placed, c)
		}
	}
	if len(placed) > 0 {
		cands = placed
	}
	if len(cands) == 0 {
		// Every instance ejected by passive health: try them anyway rather
		// than refuse while the engine still calls them healthy.
		cands = ejected
	}
	if len(cands) > 0 {
		u := &s.Upstreams[Pick(cands, g.rnd)]
		st := g.states.get(u.Name)
		st.inflight.Add(1)
		return u, st, nil
	}
	switch {
	case len(s.Upstreams) == 0:
		return nil, nil, &apiError{Status: http.StatusServiceUnavailable, Message: "no Ollama instance is running yet: see corral status", RetryAfter: 5 * time.Second}
	case has == 0:
		avail := modelsAvailable(s)
		list := "none yet: pull one with corral pull MODEL"
		if len(avail) > 0 {
			list = strings.Join(avail, ", ")
		}
		return nil, nil, &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("model %q not found; models available: %s", model, list), Param: "model", Code: "model_not_found"}
	case len(down) > 0 && len(down) == has:
		return nil, nil, &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("all %d instances with %s are unavailable: %s", has, model, strings.Join(down, "; ")), RetryAfter: 5 * time.Second}
	}
	return nil, nil, nil // every candidate tried
}

// forward sends the request to an instance, retrying on another one what
// failed before the client saw a byte.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, fr forwardReq) forwardRes {
	var res forwardRes
	c := &client{w: w, start: g.now(), res: &res}
	c.flusher, _ = w.(http.Flusher)
	tried := map[string]bool{}
	var last *apiError
	for res.attempts < g.cfg.MaxAttempts {
		u, st, aerr := g.pick(fr.model, tried)
		if aerr != nil {
			last = aerr
			break
		}
		if u == nil {
			break
		}
		tried[u.Name] = true
		res.attempts++
		res.instance = u.Name
		if g.obs != nil {
			g.obs.Attempt(fr.route.name, fr.model, u.Name)
		}
		retry, aerr := g.attempt(r, fr, u, st, c)
		st.inflight.Add(-1)
		if !retry {
			return res
		}
		last = aerr
		res.instance = ""
		if g.obs != nil {
			g.obs.Retry(u.Name)
		}
		if r.Context().Err() != nil {
			res.outcome = "client gone"
			return res
		}
	}
	if last == nil {
		last = &apiError{Status: http.StatusServiceUnavailable, Message: "no instance could take the request", RetryAfter: 5 * time.Second}
	}
	res.outcome = "failed: " + last.Message
	if c.committed {
		c.write(streamError(fr.route.sse, last.Message, "upstream_stream_error"))
		return res
	}
	res.status = last.Status
	last.write(w, fr.route.dialect)
	return res
}

// hopByHop are the fields that concern one connection, not the message
// (RFC 9110 7.6.1), and Content-Length: each side of the gateway frames
// its own. Neither way passes them on.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Content-Length"}

// fieldIn reports whether a field name, as sent or as Go's header maps
// key it, is one of names.
func fieldIn(name string, names ...string) bool {
	for _, n := range names {
		if len(name) == len(n) && strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// dropRequestField reports whether a request field stays out of what an
// instance gets: the hop-by-hop ones and the caller's credentials.
func dropRequestField(k string) bool {
	return fieldIn(k, hopByHop...) || fieldIn(k, "Authorization", "Cookie")
}

func upstreamRequest(ctx context.Context, r *http.Request, u *Upstream, fr forwardReq) (*http.Request, error) {
	target := *u.URL
	target.Path = r.URL.Path
	target.RawQuery = r.URL.RawQuery
	ureq, err := http.NewRequestWithContext(ctx, r.Method, target.String(), bytes.NewReader(fr.body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		if !dropRequestField(k) {
			ureq.Header[k] = vs
		}
	}
	ureq.Header.Set(requestIDKey, fr.rid)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ureq.Header.Set("X-Forwarded-For", host)
	}
	return ureq, nil
}

// roundTrip waits for the upstream's headers. SSE clients get comment
// lines from ka meanwhile (nil: none), so a cold model load does not look
// like a dead server. The comments come from a timer rather than a
// goroutine per request: the handler is blocked in RoundTrip. ka is
// silenced when roundTrip returns, so no comment follows the answer's
// first bytes; its timer is stopped by the caller, later, off the path to
// the first token.
//
// A nil ureq sends r with the lean client (streaming requests), which
// starts the timer, and the watch for the client leaving, once the
// request is out.
func (g *Gateway) roundTrip(r, ureq *http.Request, u *Upstream, fr forwardReq, ka *keepAlive) (*http.Response, error) {
	defer ka.silence()
	sent := func() {
		ka.start()
		watchClient(r)
	}
	if ureq == nil {
		return g.lean.roundTrip(r, u, fr, sent)
	}
	sent()
	return g.transport.RoundTrip(ureq)
}

// keepAlive writes SSE comment lines to c every so often until stopped;
// mu keeps its writes from overlapping what the handler writes next. A
// nil keepAlive does nothing.
type keepAlive struct {
	mu    sync.Mutex
	done  bool
	t     *time.Timer
	c     *client
	every time.Duration
}

func (k *keepAlive) start() {
	if k == nil {
		return
	}
	k.mu.Lock() // fire waits until t is set
	if !k.done && k.t == nil {
		k.t = time.AfterFunc(k.every, k.fire)
	}
	k.mu.Unlock()
}

func (k *keepAlive) fire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return
	}
	// Comments are invisible to SSE parsers: a retry on another instance
	// stays possible after them.
	k.c.commitSSE()
	k.c.w.Write([]byte(": keep-alive\n\n"))
	if k.c.flusher != nil {
		k.c.flusher.Flush()
	}
	k.t.Reset(k.every)
}

// silence stops the comments: a timer that fires after it writes nothing.
func (k *keepAlive) silence() {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.done = true
	k.mu.Unlock()
}

// stop silences k and stops its timer.
func (k *keepAlive) stop() {
	if k == nil {
		return
	}
	k.silence()
	k.mu.Lock()
	if k.t != nil {
		k.t.Stop()
	}
	k.mu.Unlock()
}

// attempt tries one upstream. retry means nothing of its answer reached
// the client and another instance may try; aerr then says what went wrong.
func (g *Gateway) attempt(r *http.Request, fr forwardReq, u *Upstream, st *upstreamState, c *client) (retry bool, aerr *apiError) {
	// The lean client stops the upstream by closing its connection, so
	// only http.Transport requests need a context of their own.
	ctx, cancel := r.Context(), context.CancelFunc(func() {})
	var ureq *http.Request // nil: the lean client, for streams
	if !fr.stream || !leanUsable(u) {
		ctx, cancel = context.WithCancel(r.Context())
		defer cancel()
		var err error
		ureq, err = upstreamRequest(ctx, r, u, fr)
		if err != nil {
			return true, &apiError{Status: http.StatusBadGateway, Message: err.Error()}
		}
	}
	var ka *keepAlive
	if fr.stream && fr.route.sse {
		ka = &keepAlive{c: c, every: g.cfg.KeepAliveInterval}
		defer ka.stop()
	}
	resp, err := g.roundTrip(r, ureq, u, fr, ka)
	if err != nil {
		if r.Context().Err() != nil {
			c.res.outcome = "client gone"
			return false, nil
		}
		st.failure(g.now(), g.cfg.EjectAfter, g.cfg.EjectFor, g.cfg.MaxEject)
		g.log.Warn("instance failed", "id", fr.rid, "instance", u.Name, "err", err)
		return true, &apiError{Status: http.StatusBadGateway, Message: fmt.Sprintf("instance %s: %v", u.Name, err)}
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable {
		msg := upstreamMessage(resp)
		if resp.StatusCode == http.StatusBadGateway {
			st.failure(g.now(), g.cfg.EjectAfter, g.cfg.EjectFor, g.cfg.MaxEject)
		}
		g.log.Warn("instance refused", "id", fr.rid, "instance", u.Name, "status", resp.StatusCode, "msg", msg)
		return true, &apiError{Status: resp.StatusCode, Message: fmt.Sprintf("instance %s: %s", u.Name, msg), RetryAfter: time.Second}
	}

	if !fr.stream {
		// A whole answer is small: read it before sending, so an instance
		// dying half way is retried and the client never sees half a body.
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		if err != nil {
			st.failure(g.now(), g.cfg.EjectAfter, g.cfg.EjectFor, g.cfg.MaxEject)
			return true, &apiError{Status: http.StatusBadGateway, Message: fmt.Sprintf("instance %s: reading answer: %v", u.Name, err)}
		}
		if resp.StatusCode == http.StatusOK {
			c.res.counts = answerCounts(fr.route.dialect == dialectOpenAI, body)
		}
		copyHeader(c.w.Header(), resp.Header)
		c.w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		c.res.status = resp.StatusCode
		c.w.WriteHeader(resp.StatusCode)
		c.write(body)
		g.settle(st, fr, resp.StatusCode, c)
		return false, nil
	}
	g.stream(r.Context(), ctx, cancel, resp, fr, u, st, c)
	return false, nil
}

// stream passes a streaming answer through chunk by chunk, flushing each
// one, and ends a stream the instance cut with an error event or line.
func (g *Gateway) stream(clientCtx, ctx context.Context, cancel context.CancelFunc, resp *http.Response, fr forwardReq, u *Upstream, st *upstreamState, c *client) {
	if c.committed {
		if resp.StatusCode != http.StatusOK {
			// Headers went out with the keep-alives; say it in the stream.
			msg := fmt.Sprintf("instance %s: %s", u.Name, upstreamMessage(resp))
			c.write(streamError(fr.route.sse, msg, "upstream_stream_error"))
			c.res.outcome = "failed: " + msg
			return
		}
	} else {
		c.res.status = resp.StatusCode
		writeStreamHeader(c.w, resp)
		c.committed = true
	}
	// The lean client's body bounds each read by the idle timeout itself.
	var idle *time.Timer
	if _, lean := resp.Body.(*leanBody); !lean {
		idle = time.AfterFunc(g.cfg.IdleTimeout, cancel)
		defer idle.Stop()
	}
	var sf StreamFilter
	if fr.filter != nil {
		sf = fr.filter.NewStream()
	}
	fm := newFramer(fr.route.sse, fr.dropUsage, sf)
	defer fm.release()
	// Whichever way the stream ends, what it carried is counted.
	defer func() { c.res.counts, c.res.frames = fm.counts, fm.frames }()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if idle != nil {
				idle.Reset(g.cfg.IdleTimeout)
			}
			if out := fm.feed(buf[:n]); len(out) > 0 {
				if werr := c.send(out, !fm.ended); werr != nil {
					c.res.outcome = "client gone"
					return
				}
			}
			if fm.hit != "" {
				// The output matched the filter: end the stream with an error
				// the client's SDK shows, and stop the generation.
				c.res.hit = fm.hit
				c.write(streamError(fr.route.sse, "the answer was stopped by the content filter", "content_filter"))
				c.res.outcome = "filtered"
				cancel()
				return
			}
			if fm.ended {
				// The answer is whole: the client gets its end now, not
				// after what is left to do (the upstream's last bytes, the
				// log line, usage), and its leaving then does not cut the
				// upstream's last bytes, which keep the connection usable.
				if lb, ok := resp.Body.(*leanBody); ok {
					lb.detach()
				}
				c.end()
			}
		}
		if err == nil {
			continue
		}
		if fm.ended {
			// The answer was whole and the client has had it: whatever
			// cut the rest (the client leaving after its end aborts the
			// read) cut only the connection's end.
			g.settle(st, fr, resp.StatusCode, c)
			return
		}
		if clientCtx.Err() != nil {
			c.res.outcome = "client gone"
			return
		}
		if tail := fm.tail(); len(tail) > 0 {
			c.write(tail) // a last frame without its separator
		}
		if resp.StatusCode != http.StatusOK {
			g.settle(st, fr, resp.StatusCode, c)
			return
		}
		why := "stream ended early"
		switch {
		case ctx.Err() != nil || errors.Is(err, errUpstreamIdle):
			why = fmt.Sprintf("no data for %s", g.cfg.IdleTimeout)
		case err != io.EOF:
			why = err.Error()
		}
		msg := fmt.Sprintf("instance %s failed mid-stream: %s", u.Name, why)
		st.failure(g.now(), g.cfg.EjectAfter, g.cfg.EjectFor, g.cfg.MaxEject)
		g.log.Warn("stream cut", "id", fr.rid, "instance", u.Name, "err", why)
		c.write(streamError(fr.route.sse, msg, "upstream_stream_error"))
		c.res.outcome = "cut: " + why
		return
	}
}

// settle records a finished answer: an instance that answered below 500
// is healthy, and the model is now loaded there.
func (g *Gateway) settle(st *upstreamState, fr forwardReq, status int, c *client) {
	if status < 500 {
		st.success(fr.model, g.now())
	}
	c.res.outcome = "ok"
	if status >= 400 {
		c.res.outcome = fmt.Sprintf("upstream status %d", status)
	}
}

// headerLineWriter is a front door that takes header fields as lines
// (h1's response): a stream's upstream fields then pass through with no
// map on either side.
type headerLineWriter interface {
	WriteHeaderLines(code int, lines []byte)
}

// accelLine tells a proxy in front of corral (nginx) not to buffer.
const accelLine = "X-Accel-Buffering: no\r\n"

// writeStreamHeader sends a streaming answer's status and header.
func writeStreamHeader(w http.ResponseWriter, resp *http.Response) {
	if lb, ok := resp.Body.(*leanBody); ok {
		if lw, ok := w.(headerLineWriter); ok && resp.Header == nil {
			lw.WriteHeaderLines(resp.StatusCode, append(lb.fields, accelLine...))
			return
		}
		lb.header(resp)
	}
	h := w.Header()
	copyHeader(h, resp.Header)
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(resp.StatusCode)
}

// dropResponseField reports whether an answer's field stays out of what
// the client gets: the hop-by-hop ones, and those the gateway sets
// itself.
func dropResponseField(name string) bool {
	return fieldIn(name, hopByHop...) || fieldIn(name, "X-Request-Id", "X-Accel-Buffering")
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if !dropResponseField(k) {
			dst[k] = vs
		}
	}
}

// upstreamMessage extracts the error text of an Ollama or OpenAI-shaped
// error body, or the status.
func upstreamMessage(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var o struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &o) == nil && len(o.Error) > 0 {
		var s string
		if json.Unmarshal(o.Error, &s) == nil {
			return s
		}
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(o.Error, &e) == nil && e.Message != "" {
			return e.Message
		}
	}
	if t := strings.TrimSpace(string(raw)); t != "" && len(t) < 200 {
		return resp.Status + ": " + t
	}
	return resp.Status
}
