package ui

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/usage"
)

// usageView is the usage page: tokens per day as a chart, and a table
// by key, model, user or day over a range.
type usageView struct {
	By, Range string
	Bys       []string
	Ranges    []string
	Chart     usageChart
	Rows      []usageRowView
	Total     usageRowView
	Error     string
}

type usageRowView struct {
	Group                      string
	Requests, Prompt, Complete int64
	Errors                     int64
	AvgQueue                   string
}

// usageChart is an SVG bar chart of tokens per day, drawn on the server.
type usageChart struct {
	Width, Height int
	Bars          []usageBar
	Max           string // the tallest bar's value, for the axis
}

type usageBar struct {
	X, Y, W, H int
	Day, Title string
}

var (
	usageBys    = []string{usage.ByKey, usage.ByModel, usage.ByUser, usage.ByDay}
	usageRanges = []string{"7d", "30d", "90d"}
)

// usageQuery reads the page's by and range, defaulting to keys over 30
// days, and refusing anything else.
func usageQuery(c *gin.Context) (usage.Query, string, error) {
	by, rng := c.DefaultQuery("by", usage.ByKey), c.DefaultQuery("range", "30d")
	if !slices.Contains(usageBys, by) {
		return usage.Query{}, rng, fmt.Errorf("by %q: use key, model, user or day", by)
	}
	if !slices.Contains(usageRanges, rng) {
		return usage.Query{}, rng, fmt.Errorf("range %q: use 7d, 30d or 90d", rng)
	}
	since, err := usage.ParseSince(rng, time.Now())
	return usage.Query{By: by, Since: since}, rng, err
}

func (a *admin) usagePage(c *gin.Context) {
	v := usageView{Bys: usageBys, Ranges: usageRanges}
	q, rng, err := usageQuery(c)
	v.By, v.Range = q.By, rng
	if err == nil {
		var rows, days []usage.Row
		if rows, err = a.Usage.Query(c.Request.Context(), q); err == nil {
			days, err = a.Usage.Query(c.Request.Context(), usage.Query{By: usage.ByDay, Since: q.Since})
		}
		v.Rows, v.Total = usageRows(rows)
		v.Chart = chartOf(days, q.Since)
	}
	code := http.StatusOK
	if err != nil {
		v.Error, code = err.Error(), http.StatusBadRequest
	}
	a.pages.render(c, code, "usage", pageView(c, "Usage", "usage", v))
}

// usageCSV is the page's table as CSV, for a spreadsheet.
func (a *admin) usageCSV(c *gin.Context) {
	q, rng, err := usageQuery(c)
	var rows []usage.Row
	if err == nil {
		rows, err = a.Usage.Query(c.Request.Context(), q)
	}
	if err != nil {
		c.String(http.StatusBadRequest, "%s\n", err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="corral-usage-by-%s-%s.csv"`, q.By, rng))
	w := csv.NewWriter(c.Writer)
	w.Write([]string{q.By, "requests", "prompt_tokens", "completion_tokens", "errors", "queued_seconds"})
	for _, r := range rows {
		w.Write([]string{r.Group, strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.PromptTokens, 10),
			strconv.FormatInt(r.CompletionTokens, 10), strconv.FormatInt(r.Errors, 10), strconv.FormatFloat(r.Queued.Seconds(), 'f', 3, 64)})
	}
	w.Flush()
}

func usageRows(rows []usage.Row) ([]usageRowView, usageRowView) {
	var out []usageRowView
	total := usageRowView{Group: "total"}
	var queued time.Duration
	for _, r := range rows {
		group := r.Group
		if group == "" {
			group = "(none)"
		}
		out = append(out, usageRowView{Group: group, Requests: r.Requests, Prompt: r.PromptTokens, Complete: r.CompletionTokens,
			Errors: r.Errors, AvgQueue: avgQueue(r.Queued, r.Requests)})
		total.Requests += r.Requests
		total.Prompt += r.PromptTokens
		total.Complete += r.CompletionTokens
		total.Errors += r.Errors
		queued += r.Queued
	}
	total.AvgQueue = avgQueue(queued, total.Requests)
	return out, total
}

func avgQueue(d time.Duration, n int64) string {
	if n == 0 {
		return "—"
	}
	return ShortDuration((d / time.Duration(n)).Round(time.Millisecond))
}

// chartOf draws tokens (prompt and completion) per UTC day since since,
// a bar for every day, empty ones too.
func chartOf(days []usage.Row, since time.Time) usageChart {
	const width, height, gap = 720, 160, 2
	byDay := map[string]int64{}
	for _, r := range days {
		byDay[r.Group] = r.PromptTokens + r.CompletionTokens
	}
	var labels []string
	for d := since.UTC().Truncate(24 * time.Hour); !d.After(time.Now().UTC()); d = d.Add(24 * time.Hour) {
		labels = append(labels, d.Format(time.DateOnly))
	}
	if len(labels) == 0 {
		return usageChart{Width: width, Height: height}
	}
	var top int64 = 1
	for _, l := range labels {
		top = max(top, byDay[l])
	}
	c := usageChart{Width: width, Height: height, Max: strconv.FormatInt(top, 10)}
	w := width / len(labels)
	for i, l := range labels {
		h := int(byDay[l] * (height - 20) / top)
		c.Bars = append(c.Bars, usageBar{X: i * w, Y: height - h, W: max(w-gap, 1), H: h, Day: l,
			Title: fmt.Sprintf("%s: %d tokens", l, byDay[l])})
	}
	return c
}
