package ui

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/gpu"
)

// overviewView is the overview page: every instance beside its GPU, the
// chat UI, what waits, and what needs the owner's attention.
type overviewView struct {
	Cert    *CertReport
	Docker  string // "ok", or why Docker does not answer
	Rows    []overviewRow
	Idle    []gpuCell // GPUs no instance uses
	Apps    []engine.AppStatus
	Waiting int
	Alerts  []alert
	Healthy int
}

type overviewRow struct {
	engine.InstanceStatus
	GPU  *gpuCell // nil for a CPU instance
	Held string   // models held and loading, in words
	Rate string   // tokens per second generated, "" when not known
	Exit string   // a recent exit corral did not ask for, in words
}

// gpuCell is one GPU's figures from its latest sample.
type gpuCell struct {
	Index       int
	Name, UUID  string
	Memory      string // "12.3 GB of 80.0 GB"
	MemoryPct   int
	Utilization uint32
	Temperature uint32
	Power       string
}

type alert struct {
	Level string // "error" or "warn"
	Text  string
}

func (a *admin) overviewPage(c *gin.Context) {
	a.pages.render(c, http.StatusOK, "overview", pageView(c, "Overview", "overview", a.overview()))
}

func (a *admin) overview() overviewView {
	st := a.Engine.Status()
	v := overviewView{Docker: st.Docker, Apps: st.Apps}
	inv := a.GPUs.Inventory()
	latest := map[string]gpu.Metrics{}
	for _, m := range a.GPUs.Latest() {
		latest[m.UUID] = m
	}
	cells := map[string]*gpuCell{}
	used := map[string]bool{}
	for _, d := range inv.Devices {
		cells[d.UUID] = newGPUCell(d, latest[d.UUID])
	}
	var rates map[string]float64
	if a.Tokens != nil {
		rates = a.Tokens.PerSecond()
	}
	var sched SchedulerStatus
	if a.Scheduler != nil {
		sched = a.Scheduler.Status()
		for _, q := range sched.Queue {
			v.Waiting += q.Waiting
		}
	}
	if st.Docker != "ok" {
		v.Alerts = append(v.Alerts, alert{"error", "Docker does not answer: " + st.Docker})
	}
	for _, in := range st.Instances {
		row := overviewRow{InstanceStatus: in, Held: HoldingText(sched.Holding[in.Name])}
		if x := in.LastExit; x != nil && a.now().Sub(x.At) < recentExit {
			row.Exit = "exited at " + x.At.Local().Format("15:04:05") + ": " + x.Reason
		}
		if rates != nil {
			row.Rate = fmt.Sprintf("%.1f tokens/s", rates[in.Name])
		}
		if in.GPU != "cpu" && in.GPU != "" {
			if cell, ok := cells[in.GPU]; ok {
				row.GPU, used[in.GPU] = cell, true
			} else {
				v.Alerts = append(v.Alerts, alert{"error", fmt.Sprintf("%s's GPU %s is missing: NVML does not list it (check nvidia-smi)", in.Name, in.GPU)})
			}
		}
		switch {
		case in.Phase == engine.PhaseHealthy:
			v.Healthy++
		case strings.Contains(in.Reason, "crash loop"):
			v.Alerts = append(v.Alerts, alert{"error", fmt.Sprintf("%s is crash-looping: %s", in.Name, in.Reason)})
		case in.Phase == engine.PhaseFailed:
			v.Alerts = append(v.Alerts, alert{"error", fmt.Sprintf("%s failed: %s", in.Name, in.Reason)})
		case in.Phase == engine.PhaseUnhealthy:
			v.Alerts = append(v.Alerts, alert{"warn", fmt.Sprintf("%s is unhealthy: %s", in.Name, in.Reason)})
		}
		v.Rows = append(v.Rows, row)
	}
	for _, d := range inv.Devices {
		if !used[d.UUID] {
			v.Idle = append(v.Idle, *cells[d.UUID])
		}
	}
	v.Alerts = append(v.Alerts, a.certAlerts(&v)...)
	v.Alerts = append(v.Alerts, a.diskAlerts()...)
	for _, app := range st.Apps {
		if app.Phase == engine.PhaseFailed || app.Phase == engine.PhaseUnhealthy {
			v.Alerts = append(v.Alerts, alert{"warn", fmt.Sprintf("the chat UI's %s is %s: %s", app.Name, app.Phase, app.Reason)})
		}
	}
	return v
}

func newGPUCell(d gpu.Device, m gpu.Metrics) *gpuCell {
	used, total := m.MemoryUsed, m.MemoryTotal
	if total == 0 {
		used, total = d.MemoryUsed, d.MemoryTotal
	}
	c := &gpuCell{Index: d.Index, Name: d.Name, UUID: d.UUID, Utilization: m.UtilizationGPU, Temperature: m.TemperatureC,
		Memory: humanBytes(int64(used)) + " of " + humanBytes(int64(total))}
	if total > 0 {
		c.MemoryPct = int(used * 100 / total)
	}
	if m.PowerW > 0 {
		c.Power = fmt.Sprintf("%.0f W", m.PowerW)
		if m.PowerLimitW > 0 {
			c.Power += fmt.Sprintf(" of %.0f W", m.PowerLimitW)
		}
	}
	return c
}

// HoldingText says what an instance holds and loads, such as
// "holds llama3.2:1b (2 in flight), qwen3:8b (idle); loading phi3"; ""
// for nothing.
func HoldingText(held []HeldModel) string {
	var holds, loads []string
	for _, h := range held {
		switch {
		case h.Loading && h.InFlight > 0: // sent, and waiting for the load
			loads = append(loads, fmt.Sprintf("%s (%d in flight)", h.Model, h.InFlight))
		case h.Loading:
			loads = append(loads, h.Model)
		case h.InFlight > 0:
			holds = append(holds, fmt.Sprintf("%s (%d in flight)", h.Model, h.InFlight))
		default:
			holds = append(holds, h.Model+" (idle)")
		}
	}
	var parts []string
	if len(holds) > 0 {
		parts = append(parts, "holds "+strings.Join(holds, ", "))
	}
	if len(loads) > 0 {
		parts = append(parts, "loading "+strings.Join(loads, ", "))
	}
	return strings.Join(parts, "; ")
}

// recentExit is how long the overview says an instance exited: long
// enough for the owner to see it after the restart healed it.
const recentExit = time.Hour

// DiskReport is the space on the disk of the data directory.
type DiskReport struct {
	Path        string
	Free, Total uint64
}

// diskLow is when the overview warns: too little for a model pull or a
// day of logs and usage.
func diskLow(d DiskReport) bool {
	return d.Free < 5<<30 || (d.Total > 0 && d.Free*20 < d.Total)
}

func (a *admin) diskAlerts() []alert {
	if a.DataDisk == nil {
		return nil
	}
	d, err := a.DataDisk()
	switch {
	case err != nil:
		return []alert{{"warn", "cannot read the free space of the data directory: " + err.Error()}}
	case diskLow(d):
		return []alert{{"warn", fmt.Sprintf("disk low: %s free of %s on %s; free some space (docker system prune, or remove models you no longer use)",
			humanBytes(int64(d.Free)), humanBytes(int64(d.Total)), d.Path)}}
	}
	return nil
}

// certAlerts fills v.Cert and says when certificates fail or run out.
func (a *admin) certAlerts(v *overviewView) []alert {
	if a.Certs == nil {
		return nil
	}
	r, ok := a.Certs.CertReport()
	if !ok {
		return nil
	}
	v.Cert = &r
	names := strings.Join(r.Names, ", ")
	var out []alert
	if r.State == "retrying" {
		msg := "certificates for " + names + " are failing: " + r.LastError
		if r.Hint != "" {
			msg += " (" + r.Hint + ")"
		}
		out = append(out, alert{"error", msg})
	}
	if !r.NotAfter.IsZero() {
		left := r.NotAfter.Sub(a.now())
		switch {
		case left <= 0:
			out = append(out, alert{"error", "the certificate for " + names + " expired on " + r.NotAfter.Format(time.DateOnly) + ": browsers refuse the site"})
		case left < certExpiryWarning:
			out = append(out, alert{"warn", fmt.Sprintf("the certificate for %s expires in %d days (%s) and has not been renewed", names, int(left.Hours()/24), r.NotAfter.Format(time.DateOnly))})
		}
	}
	return out
}
