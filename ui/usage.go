package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/usage"
)

// Usage is what the API needs to report the gateway's usage.
type Usage interface {
	Query(ctx context.Context, q usage.Query) ([]usage.Row, error)
}

// UsageReport is the body of GET /api/v1/usage. Each row's queued_ns is
// the time its requests waited in corral's queue for an instance, in
// nanoseconds, summed.
type UsageReport struct {
	By    string      `json:"by"`
	Since time.Time   `json:"since,omitzero"` // the bounds as understood; zero: open
	Until time.Time   `json:"until,omitzero"`
	Key   string      `json:"key,omitempty"`
	Rows  []usage.Row `json:"rows"`
}

// usageParams are the query parameters GET /api/v1/usage takes.
var usageParams = []string{"by", "since", "until", "key"}

// usage answers GET /api/v1/usage?by=key|model|user|day&since=…&until=…&key=…
// since is a date (2026-11-01), an RFC 3339 time or days back (7d);
// until is a date, included, or an RFC 3339 time. Totals are by UTC day.
func (h handler) usage(c *gin.Context) {
	params := c.Request.URL.Query()
	for name, vals := range params {
		if !slices.Contains(usageParams, name) {
			c.JSON(http.StatusBadRequest, gin.H{"error": fmt.Sprintf("unknown parameter %q: use by, since, until and key", name)})
			return
		}
		if len(vals) > 1 {
			c.JSON(http.StatusBadRequest, gin.H{"error": fmt.Sprintf("parameter %q given %d times: give it once", name, len(vals))})
			return
		}
	}
	q := usage.Query{By: params.Get("by"), Key: params.Get("key")}
	if q.By == "" {
		q.By = usage.ByKey
	}
	var err error
	since, until := params.Get("since"), params.Get("until")
	q.Since, err = usage.ParseSince(since, time.Now())
	if err == nil {
		q.Until, err = usage.ParseUntil(until)
	}
	if err == nil && !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		err = fmt.Errorf("until %s is not after since %s: nothing to report", until, since)
	}
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	rows, err := h.Usage.Query(c.Request.Context(), q)
	switch {
	case errors.Is(err, usage.ErrInvalidQuery):
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	case err != nil:
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return
	}
	if rows == nil {
		rows = []usage.Row{}
	}
	c.JSON(http.StatusOK, UsageReport{By: q.By, Since: q.Since, Until: q.Until, Key: q.Key, Rows: rows})
}
