package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// client is the state of the response to the client across attempts.
type client struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	committed bool // headers sent (SSE keep-alive comments at most, unless wrote)
	wrote     bool // a byte of an upstream's body reached the client
	start     time.Time
	res       *forwardRes
}

func newClient(w http.ResponseWriter, res *forwardRes) *client {
	return &client{w: w, rc: http.NewResponseController(w), start: time.Now(), res: res}
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

// write sends p and flushes it at once: each chunk reaches the client as
// the instance produced it. A client that stops reading makes this fail
// once the front door's write deadline passes.
func (c *client) write(p []byte) error {
	if !c.wrote {
		c.wrote = true
		c.res.ttfb = time.Since(c.start)
	}
	n, err := c.w.Write(p)
	c.res.bytes += int64(n)
	if err != nil {
		return err
	}
	return c.flush()
}

func (c *client) flush() error {
	err := c.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// roundTrip waits for the upstream's headers. SSE clients get comment
// lines from ka meanwhile (nil: none), so a cold model load does not look
// like a dead server. The comments come from a timer rather than a
// goroutine per request: the handler is blocked in RoundTrip. ka is
// silenced when roundTrip returns, so no comment follows the answer's
// first bytes.
func (g *Gateway) roundTrip(ureq *http.Request, ka *keepAlive) (*http.Response, error) {
	defer ka.silence()
	ka.start()
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
	k.c.flush()
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

// drainAfterEnd bounds what is read of an upstream's answer after its
// last event: its framing's end normally follows at once, and reading it
// keeps the connection in the pool; anything more is not worth waiting
// for.
const (
	drainAfterEndBytes = 64 << 10
	drainAfterEndTime  = time.Second
)

// stream passes a streaming answer through chunk by chunk, flushing each
// one, and ends a stream the instance cut with an error event or line.
// cancel stops the upstream request: a client gone, a filter hit, or an
// instance silent for IdleTimeout; unwatch stops the client's leaving
// from cancelling it.
func (g *Gateway) stream(clientCtx context.Context, cancel context.CancelFunc, unwatch func() bool, resp *http.Response, fr forwardReq, u *Upstream, st *upstreamState, c *client) {
	if c.committed {
		if resp.StatusCode != http.StatusOK {
			// Headers went out with the keep-alives; say it in the stream.
			msg := fmt.Sprintf("instance %s: %s", u.Name, upstreamMessage(resp))
			c.write(streamError(fr.route, msg, "upstream_stream_error"))
			c.res.outcome = "failed: " + msg
			return
		}
	} else {
		c.res.status = resp.StatusCode
		h := c.w.Header()
		copyHeader(h, resp.Header)
		h.Set("X-Accel-Buffering", "no") // for a proxy in front of corral
		c.w.WriteHeader(resp.StatusCode)
		c.committed = true
		// The client learns at once that its stream has begun, before the
		// first token: over HTTP/2 the header waits for a flush.
		c.flush()
	}
	var idled atomic.Bool
	idle := time.AfterFunc(g.cfg.IdleTimeout, func() {
		idled.Store(true)
		cancel()
	})
	defer idle.Stop()
	var sf StreamFilter
	if fr.filter != nil {
		sf = fr.filter.NewStream()
	}
	fm := newFramer(fr.route.sse, fr.dropUsage, sf)
	fm.events = fr.route.events
	defer fm.release()
	// Whichever way the stream ends, what it carried is counted.
	defer func() { c.res.counts, c.res.frames = fm.counts, fm.frames }()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			idle.Reset(g.cfg.IdleTimeout)
			out := fm.feed(buf[:n])
			if fm.ended {
				// From the moment the client can have the answer's end, its
				// leaving must not cut the instance's last bytes.
				unwatch()
			}
			if len(out) > 0 {
				if werr := c.write(out); werr != nil {
					c.res.outcome = "client gone"
					g.log.Info("client stopped reading or left; upstream request cancelled", "id", fr.rid, "instance", u.Name, "err", werr)
					cancel()
					return
				}
			}
			if fm.hit != "" {
				// The output matched the filter: end the stream with an error
				// the client's SDK shows, and stop the generation.
				c.res.hit = fm.hit
				c.write(streamError(fr.route, "the answer was stopped by the content filter", "content_filter"))
				c.res.outcome = "filtered"
				cancel()
				return
			}
			if fm.ended {
				// The answer is whole and the client has it. Nothing the
				// instance sends after its end is passed on; what little
				// follows is read so the connection stays usable.
				idle.Stop()
				drain(resp.Body, cancel)
				g.settle(st, resp.StatusCode, c)
				return
			}
		}
		if err == nil {
			continue
		}
		if clientCtx.Err() != nil {
			c.res.outcome = "client gone"
			return
		}
		if tail := fm.tail(); len(tail) > 0 {
			c.write(tail) // a last frame without its separator
		}
		if resp.StatusCode != http.StatusOK {
			g.settle(st, resp.StatusCode, c)
			return
		}
		why := "stream ended early"
		switch {
		case idled.Load():
			why = fmt.Sprintf("no data for %s", g.cfg.IdleTimeout)
		case err != io.EOF:
			// The error names addresses; the client gets the gist, the log
			// the rest.
			why = "connection lost"
		}
		msg := fmt.Sprintf("instance %s failed mid-stream: %s", u.Name, why)
		g.failed(st)
		g.log.Warn("stream cut", "id", fr.rid, "instance", u.Name, "reason", why, "err", err)
		c.write(streamError(fr.route, msg, "upstream_stream_error"))
		c.res.outcome = "cut: " + why
		return
	}
}

// drain reads an answer's last bytes after its end, within bounds; past
// them the upstream request is cancelled, which closes its connection.
func drain(body io.Reader, cancel context.CancelFunc) {
	t := time.AfterFunc(drainAfterEndTime, cancel)
	defer t.Stop()
	n, _ := io.Copy(io.Discard, io.LimitReader(body, drainAfterEndBytes))
	if n == drainAfterEndBytes {
		cancel()
	}
}
