package ui

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Live parts of pages come as Server-Sent Events: the server renders the
// part again and sends it when it changed. A page without script shows
// the same part, rendered once.
const (
	liveEvery = 2 * time.Second
	// liveFor bounds one stream; the browser's EventSource reconnects,
	// and a session that ended gets a 401 then instead of a stream.
	liveFor = 10 * time.Minute
)

// livePart answers GET /live/PART: part's partial of page, from data,
// whenever it changes.
func (a *admin) livePart(page, partial string, data func(*gin.Context) any) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := a.liveContext(c)
		defer cancel()
		startSSE(c)
		var last []byte
		tick := time.NewTicker(liveEvery)
		defer tick.Stop()
		for {
			var buf bytes.Buffer
			if err := a.pages.renderTo(&buf, page, partial, data(c)); err != nil {
				a.log.Error("live part failed to render", "page", page, "part", partial, "err", err)
				return
			}
			if !bytes.Equal(buf.Bytes(), last) {
				last = buf.Bytes()
				if err := sseData(c.Writer, last); err != nil {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
}

// liveContext bounds a live stream: liveFor at most, and it ends as soon
// as its session does (signed out, or the admin token rotated). The
// watcher stops with the stream.
func (a *admin) liveContext(c *gin.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), liveFor)
	go func() {
		tick := time.NewTicker(liveEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if !a.stillSignedIn(c.Request) {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// stillSignedIn says whether the request's session is still live; a
// bearer token (no cookie) is checked against the current token.
func (a *admin) stillSignedIn(r *http.Request) bool {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		_, ok := a.sessions.get(ck.Value)
		return ok
	}
	return bearerOK(r, *a.token.Load())
}

// logsLive streams a container's last log lines and then its new ones,
// one event each.
func (a *admin) logsLive(c *gin.Context) {
	ctx, cancel := a.liveContext(c)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The page's tail again, then what comes: no line written between
		// the page and this stream is lost, and a reconnect starts whole.
		pw.CloseWithError(a.Engine.Logs(ctx, c.Param("name"), logTailLines, true, pw))
	}()
	defer func() { cancel(); pr.Close(); <-done }()
	startSSE(c)
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if err := sseData(c.Writer, sc.Bytes()); err != nil {
			return
		}
	}
}

// startSSE begins an answer of Server-Sent Events: the live parts, and
// the API's pull and import progress.
func startSSE(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Writer.Flush()
}

// sseData sends one message; each line of it a data: line.
func sseData(w gin.ResponseWriter, msg []byte) error {
	var b strings.Builder
	for line := range strings.SplitSeq(string(msg), "\n") {
		b.WriteString("data: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	w.Flush()
	return nil
}
