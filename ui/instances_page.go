package ui

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
)

// instancesView is the instances page: every container corral runs, what
// can be done to each, and the settings every instance runs with.
type instancesView struct {
	Rows     []instanceRow
	Settings *engine.Settings // nil: not changeable here
	Rolling  int              // instances still waiting for a new setting
	Confirm  *confirmAction   // an action that waits for a yes
	Done     string           // what was just done
	Error    string
}

type instanceRow struct {
	Name, Kind, Image, Reason, Held, Since string
	Phase                                  engine.Phase
}

// confirmAction is a destructive action the page asks about first.
type confirmAction struct {
	Name, Action, Verb, Consequence string
}

// instanceActions are what the pages may do to a container; the
// consequence is what the confirmation says.
var instanceActions = map[string]struct {
	verb, consequence string
	act               func(Engine, context.Context, string) error
}{
	"restart":  {"Restart", "Its container restarts in place: requests on it fail, models it holds load again.", Engine.Restart},
	"recreate": {"Recreate", "Its requests finish (up to the drain grace period), then a new container replaces it; models and data stay.", Engine.Recreate},
	"stop":     {"Stop", "Its requests finish, then it is taken down and stays down, across restarts of corral, until you start it.", Engine.Stop},
	"start":    {"Start", "", func(e Engine, _ context.Context, name string) error { return e.Start(name) }},
}

func (a *admin) instancesView() instancesView {
	st := a.Engine.Status()
	var sched SchedulerStatus
	if a.Scheduler != nil {
		sched = a.Scheduler.Status()
	}
	v := instancesView{}
	for _, in := range st.Instances {
		kind := "CPU"
		if in.GPU != "cpu" && in.GPU != "" {
			kind = "GPU " + strconv.Itoa(in.GPUIndex)
		}
		if strings.Contains(in.Reason, "update pending") {
			v.Rolling++
		}
		v.Rows = append(v.Rows, instanceRow{Name: in.Name, Kind: kind, Image: in.Image, Phase: in.Phase, Reason: in.Reason,
			Held: HoldingText(sched.Holding[in.Name]), Since: sinceText(in.Since)})
	}
	for _, app := range st.Apps {
		v.Rows = append(v.Rows, instanceRow{Name: app.Name, Kind: "chat UI (" + app.Role + ")", Image: app.Image, Phase: app.Phase,
			Reason: app.Reason, Since: sinceText(app.Since)})
	}
	if a.Settings != nil {
		s := a.Settings.InstanceSettings()
		v.Settings = &s
	}
	return v
}

// whenLayout is how the instance pages write a moment: recent, so the
// day and the second, not the year.
const whenLayout = "Jan 2 15:04:05"

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "since " + t.Local().Format(whenLayout)
}

func (a *admin) instancesPage(c *gin.Context) {
	v := a.instancesView()
	v.Done = c.Query("done")
	a.pages.render(c, http.StatusOK, "instances", pageView(c, "Instances", "instances", v))
}

// confirmInstanceAction asks before a restart, recreate or stop.
func (a *admin) confirmInstanceAction(c *gin.Context) {
	name, action := c.Param("name"), c.Param("action")
	act, ok := instanceActions[action]
	if !ok || action == "start" {
		a.pages.render(c, http.StatusNotFound, "notfound", pageView(c, "No such page", "", c.Request.URL.Path))
		return
	}
	v := a.instancesView()
	if !slices.ContainsFunc(v.Rows, func(r instanceRow) bool { return r.Name == name }) {
		v.Error = "There is no instance or chat UI container called " + name + "."
		a.pages.render(c, http.StatusNotFound, "instances", pageView(c, "Instances", "instances", v))
		return
	}
	v.Confirm = &confirmAction{Name: name, Action: action, Verb: act.verb, Consequence: act.consequence}
	a.pages.render(c, http.StatusOK, "instances", pageView(c, "Instances", "instances", v))
}

func (a *admin) instanceActionForm(c *gin.Context) {
	name, action := c.Param("name"), c.Param("action")
	act, ok := instanceActions[action]
	if !ok {
		a.pages.render(c, http.StatusNotFound, "notfound", pageView(c, "No such page", "", c.Request.URL.Path))
		return
	}
	// The page does not wait for a drain that may take the grace period.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 2*time.Minute)
	defer cancel()
	if err := act.act(a.Engine, ctx, name); err != nil {
		v := a.instancesView()
		v.Error = err.Error()
		a.pages.render(c, http.StatusBadRequest, "instances", pageView(c, "Instances", "instances", v))
		return
	}
	a.log.Info("instance action from the admin page", "instance", name, "action", action)
	back := "/instances"
	if c.PostForm("from") == "detail" {
		back += "/" + url.PathEscape(name)
	}
	c.Redirect(http.StatusSeeOther, back+"?done="+url.QueryEscape(act.verb+" "+name))
}

// instanceSettingsForm applies new settings to every instance, rolled
// out one at a time.
func (a *admin) instanceSettingsForm(c *gin.Context) {
	s := a.Settings.InstanceSettings()
	s.OllamaImage = strings.TrimSpace(c.PostForm("image"))
	s.KeepAlive = strings.TrimSpace(c.PostForm("keep_alive"))
	fail := func(msg string) {
		v := a.instancesView()
		v.Error = msg
		v.Settings = &s
		a.pages.render(c, http.StatusBadRequest, "instances", pageView(c, "Instances", "instances", v))
	}
	if p := strings.TrimSpace(c.PostForm("num_parallel")); p == "" {
		s.NumParallel = 0
	} else if n, err := strconv.Atoi(p); err != nil {
		fail("Parallel requests: give a whole number, or leave it empty for Ollama's default.")
		return
	} else {
		s.NumParallel = n
	}
	if err := a.Settings.SetInstanceSettings(s); err != nil {
		fail(err.Error())
		return
	}
	a.log.Info("instance settings changed from the admin page", "image", s.OllamaImage, "keep_alive", s.KeepAlive, "num_parallel", s.NumParallel)
	c.Redirect(http.StatusSeeOther, "/instances?done="+url.QueryEscape("New settings saved: instances are replaced one at a time, each once the others are healthy"))
}

// logTailLines and logPageBytes keep the detail page light: the rest is
// a follow away, or in the API.
const (
	logTailLines = 100
	logPageBytes = 48 << 10
)

// instanceDetail is one container's page: its state, recent events and
// the end of its log.
type instanceDetail struct {
	Row       instanceRow
	Events    []eventRow
	Log       string
	LogError  string
	Truncated bool
	Done      string
}

type eventRow struct {
	At, Change, Reason string
}

func (a *admin) instancePage(c *gin.Context) {
	name := c.Param("name")
	v := a.instancesView()
	i := slices.IndexFunc(v.Rows, func(r instanceRow) bool { return r.Name == name })
	if i < 0 {
		a.pages.render(c, http.StatusNotFound, "notfound", pageView(c, "No such page", "", c.Request.URL.Path))
		return
	}
	d := instanceDetail{Row: v.Rows[i], Done: c.Query("done")}
	for _, ev := range a.Engine.Events(name) {
		d.Events = append(d.Events, eventRow{At: ev.At.Local().Format(whenLayout), Change: string(ev.From) + " → " + string(ev.To), Reason: ev.Reason})
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	var buf limitedBuffer
	buf.max = logPageBytes
	if err := a.Engine.Logs(ctx, name, logTailLines, false, &buf); err != nil {
		d.LogError = err.Error()
	}
	d.Log, d.Truncated = buf.String(), buf.full
	a.pages.render(c, http.StatusOK, "instance", pageView(c, name, "instances", d))
}

// limitedBuffer keeps the last bytes up to max; more is dropped from the
// front, so the newest lines show.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	full bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.Buffer.Write(p)
	if over := b.Len() - b.max; over > 0 {
		b.full = true
		rest := append([]byte(nil), b.Bytes()[over:]...)
		b.Reset()
		b.Buffer.Write(rest)
	}
	return n, nil
}
