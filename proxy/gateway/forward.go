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
	"net/http/httptrace"
	"strings"
	"syscall"
	"time"

	"corral/proxy/scheduler"
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
	// key names the caller's key; consumer is whom corral's queue is fair
	// between: the key, or the key and its end user, who share the key's
	// weight.
	key, consumer string
	// allowed reports whether the caller's key may use a model, for the
	// list in a 404.
	allowed func(model string) bool
}

// forwardRes is what the log line and, later, usage metering need.
type forwardRes struct {
	instance string
	attempts int
	status   int
	bytes    int64
	ttfb     time.Duration
	queued   time.Duration // in corral's queue, over all attempts
	outcome  string
	counts   counts
	frames   int    // generated frames passed on (see framer.frames)
	hit      string // filter phrase that cut the output
}

// forward sends the request to an instance, retrying on another one what
// failed before the client saw a byte.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, fr forwardReq) forwardRes {
	var res forwardRes
	c := newClient(w, &res)
	tried := map[string]bool{}
	var last *apiError
	for res.attempts < g.cfg.MaxAttempts {
		// A stream waiting in the queue gets keep-alive comments, as one
		// waiting for a cold load does.
		var ka *keepAlive
		if fr.stream && fr.route.sse {
			ka = &keepAlive{c: c, every: g.cfg.KeepAliveInterval}
			ka.start()
		}
		u, st, grant, aerr := g.acquire(r.Context(), fr, tried)
		if u == nil {
			ka.stop()
			if aerr != nil {
				last = aerr
			} else if r.Context().Err() != nil {
				res.outcome = "client gone"
				return res
			}
			break
		}
		res.queued += grant.Waited
		tried[u.Name] = true
		res.attempts++
		res.instance = u.Name
		if g.obs != nil {
			g.obs.Attempt(fr.route.name, fr.model, u.Name)
		}
		began := time.Now()
		retry, aerr, out := g.attempt(r, fr, u, st, c, ka, grant.Cold)
		ka.stop()
		st.inflight.Add(-1)
		out.OK = out.OK && !retry && res.outcome == "ok"
		out.Duration = time.Since(began)
		grant.Done(out)
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
		last = &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("model %s is unavailable: no instance could take the request", fr.model), RetryAfter: 5 * time.Second}
	}
	res.outcome = "failed: " + last.Message
	if c.committed {
		c.write(streamError(fr.route, last.Message, "upstream_stream_error"))
		return res
	}
	res.status = last.Status
	last.write(w, fr.route.dialect)
	return res
}

// hopByHop are the fields that concern one connection, not the message
// (RFC 9110 7.6.1), those that ask something of the next hop (Expect,
// the proxy's credentials), and Content-Length: each side of the gateway
// frames its own. Neither way passes them on, nor the fields a
// Connection field names.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Content-Length", "Expect"}

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

// connectionNamed reports whether name is listed in h's Connection
// fields, which makes it hop-by-hop too.
func connectionNamed(h http.Header, name string) bool {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" && strings.EqualFold(f, name) {
				return true
			}
		}
	}
	return false
}

// dropRequestField reports whether a request field stays out of what an
// instance gets: the hop-by-hop ones and the caller's credentials (its
// bearer key or Anthropic's x-api-key, and cookies).
func dropRequestField(h http.Header, k string) bool {
	return fieldIn(k, hopByHop...) || fieldIn(k, "Authorization", "Cookie", anthropicKeyField) || connectionNamed(h, k)
}

func upstreamRequest(ctx context.Context, r *http.Request, u *Upstream, fr forwardReq) (*http.Request, error) {
	target := *u.URL
	target.Path = r.URL.Path
	target.RawPath = r.URL.RawPath
	target.RawQuery = r.URL.RawQuery
	ureq, err := http.NewRequestWithContext(ctx, r.Method, target.String(), bytes.NewReader(fr.body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		if !dropRequestField(r.Header, k) {
			ureq.Header[k] = vs
		}
	}
	ureq.Header.Set(requestIDKey, fr.rid)
	// The front door sets the forwarded fields; a gateway reached
	// directly says at least who asked.
	if ureq.Header.Get("X-Forwarded-For") == "" {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			ureq.Header.Set("X-Forwarded-For", host)
		}
	}
	return ureq, nil
}

// attempt tries one upstream. retry means nothing of its answer reached
// the client and another instance may try; aerr then says what went wrong.
// out tells the scheduler how long the instance took to answer; cold
// means the request loads its model there, after which what the instance
// holds is read again. ka, when not nil, writes keep-alive comments until
// the answer begins.
func (g *Gateway) attempt(r *http.Request, fr forwardReq, u *Upstream, st *upstreamState, c *client, ka *keepAlive, cold bool) (retry bool, aerr *apiError, out scheduler.Outcome) {
	// The client leaving cancels the upstream request until the answer is
	// whole; after that its leaving must not cut the answer's last bytes,
	// which keep the instance's connection usable (see stream).
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	unwatch := context.AfterFunc(r.Context(), cancel)
	defer unwatch()
	var reused *upstreamConn
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if uc, ok := i.Conn.(*upstreamConn); ok && i.Reused {
			uc.asked()
			reused = uc
		}
	}})
	ureq, err := upstreamRequest(ctx, r, u, fr)
	if err != nil {
		g.log.Warn("instance request", "id", fr.rid, "instance", u.Name, "err", err)
		return true, instanceError(http.StatusBadGateway, fr, u, "it could not be asked"), out
	}
	sent := time.Now()
	resp, err := g.roundTrip(ureq, ka)
	if err != nil {
		if r.Context().Err() != nil {
			c.res.outcome = "client gone"
			return false, nil, out
		}
		g.failed(st)
		g.log.Warn("instance failed", "id", fr.rid, "instance", u.Name, "err", err)
		return true, instanceError(http.StatusBadGateway, fr, u, failureText(err, g.cfg.HeaderTimeout)), out
	}
	defer resp.Body.Close()
	out.TTFB, out.OK = time.Since(sent), resp.StatusCode < 400
	if cold && resp.StatusCode < 400 {
		g.refreshUpstreams()
	}
	if reused != nil && reused.answeredUnasked() {
		// Bytes the instance sent unasked on the idle connection: not this
		// request's answer, and not for any other either.
		reused.Close()
		g.failed(st)
		g.log.Warn("instance answered before it was asked", "id", fr.rid, "instance", u.Name)
		return true, instanceError(http.StatusBadGateway, fr, u, "it answered before it was asked"), out
	}

	if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable {
		msg := upstreamMessage(resp)
		if resp.StatusCode == http.StatusBadGateway {
			g.failed(st)
		}
		g.log.Warn("instance refused", "id", fr.rid, "instance", u.Name, "status", resp.StatusCode, "msg", msg)
		aerr := instanceError(resp.StatusCode, fr, u, msg)
		aerr.RetryAfter = time.Second
		return true, aerr, out
	}

	if !fr.stream {
		// A whole answer is small: read it before sending, so an instance
		// dying half way is retried and the client never sees half a body.
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			g.failed(st)
			g.log.Warn("instance answer cut", "id", fr.rid, "instance", u.Name, "err", err)
			return true, instanceError(http.StatusBadGateway, fr, u, "its answer was cut off"), out
		}
		if resp.StatusCode == http.StatusOK {
			c.res.counts = answerCounts(fr.route, body)
		}
		copyHeader(c.w.Header(), resp.Header)
		c.w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		c.res.status = resp.StatusCode
		c.w.WriteHeader(resp.StatusCode)
		c.write(body)
		g.settle(st, resp.StatusCode, c)
		return false, nil, out
	}
	g.stream(r.Context(), cancel, unwatch, resp, fr, u, st, c)
	return false, nil, out
}

// maxAnswer bounds a whole (non-streamed) answer held in memory.
const maxAnswer = 64 << 20

// instanceError is a failed attempt as the client sees it, if no other
// instance does better: the model, the instance and why, which says
// nothing of the instance's address.
func instanceError(status int, fr forwardReq, u *Upstream, why string) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf("model %s on instance %s: %s", fr.model, u.Name, public(why))}
}

// failureText says why an instance could not answer, in words that name
// no address: the client sees it, the log has the error itself.
func failureText(err error, headerTimeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, errInstanceDown):
		return "it went down while corral connected"
	case errors.As(err, &ne) && ne.Timeout():
		if strings.Contains(err.Error(), "awaiting response headers") {
			return fmt.Sprintf("no answer within %s", headerTimeout)
		}
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return "connection failed"
}

// settle records a finished answer: an instance that answered below 500
// is healthy.
func (g *Gateway) settle(st *upstreamState, status int, c *client) {
	if status < 500 {
		st.success()
	}
	c.res.outcome = "ok"
	if status >= 400 {
		c.res.outcome = fmt.Sprintf("upstream status %d", status)
	}
}

// dropResponseField reports whether an answer's field stays out of what
// the client gets: the hop-by-hop ones, and those the gateway sets
// itself.
func dropResponseField(h http.Header, name string) bool {
	return fieldIn(name, hopByHop...) || fieldIn(name, "X-Request-Id", "X-Accel-Buffering") || connectionNamed(h, name)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if !dropResponseField(src, k) {
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
