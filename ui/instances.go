package ui

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"corral/engine"
)

// Weight is the body of PUT /api/v1/instances/:name/weight.
type Weight struct {
	Weight int `json:"weight"`
}

// containerAction answers a restart, recreate, stop or start of the
// container named in the path with the status after it.
func (h handler) containerAction(act func(Engine, context.Context, string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := act(h.Engine, c.Request.Context(), c.Param("name")); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, h.Engine.Status())
	}
}

func (h handler) setWeight(c *gin.Context) {
	var req Weight
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Engine.SetWeight(c.Param("name"), req.Weight); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, h.Engine.Status())
}

// logs answers GET /api/v1/instances/NAME/logs?tail=N&follow=1 as plain
// text; with follow it streams until the client leaves.
func (h handler) logs(c *gin.Context) {
	tail, err := strconv.Atoi(c.DefaultQuery("tail", "100"))
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "tail: give a number of lines, such as 100"})
		return
	}
	follow := c.Query("follow") == "1" || c.Query("follow") == "true"
	w := &logWriter{c: c}
	err = h.Engine.Logs(c.Request.Context(), c.Param("name"), tail, follow, w)
	switch {
	case err != nil && !w.started: // a bad name or tail: a clean 400
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
	case err != nil:
		w.Write([]byte("\ncorral: " + err.Error() + "\n"))
	case !w.started:
		w.Write(nil) // an empty log is still a 200
	}
}

// logWriter starts the plain-text answer with the first line and sends
// each write at once: log lines are for watching.
type logWriter struct {
	c       *gin.Context
	started bool
}

func (l *logWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.c.Header("Content-Type", "text/plain; charset=utf-8")
		l.c.Header("X-Accel-Buffering", "no")
		l.c.Status(http.StatusOK)
	}
	n, err := l.c.Writer.Write(p)
	l.c.Writer.Flush()
	return n, err
}

func (h handler) setInstanceSettings(c *gin.Context) {
	var req engine.Settings
	cur := h.Settings.InstanceSettings()
	req = cur
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Settings.SetInstanceSettings(req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, h.Settings.InstanceSettings())
}
