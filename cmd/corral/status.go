package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"corral/engine"
	"corral/ui"
)

func (a *app) statusCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("status", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	var st statusReport
	if err := newDaemon(*dataDir).getJSON(ctx, "/api/v1/status", &st); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(a.stdout, st)
	return nil
}

// statusReport is what GET /api/v1/status answers (ui.StatusReport).
type statusReport struct {
	engine.Status
	FrontDoor *DoorReport         `json:"front_door,omitempty"`
	Scheduler *ui.SchedulerStatus `json:"scheduler,omitempty"`
	ChatUI    *ChatUIInfo         `json:"chat_ui,omitempty"`
}

func printStatus(w io.Writer, st statusReport) {
	if st.Docker != "ok" {
		fmt.Fprintf(w, "%s\n\n", st.Docker)
	}
	// The table is aligned on its own, then each instance's row is
	// followed by what it holds: a line without tabs would end the
	// tabwriter's columns.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGPU\tPHASE\tWEIGHT\tCONTAINER\tIMAGE\tENDPOINT\tREASON")
	for _, in := range st.Instances {
		gpuCol := in.GPU
		if in.GPUIndex >= 0 {
			gpuCol = fmt.Sprintf("%d", in.GPUIndex)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, gpuCol, in.Phase, in.Weight, short(in.ContainerID), in.Image, dash(in.Endpoint), in.Reason)
	}
	tw.Flush()
	rows := strings.SplitAfter(table.String(), "\n")
	io.WriteString(w, rows[0])
	for i, in := range st.Instances {
		io.WriteString(w, rows[i+1])
		if st.Scheduler != nil {
			if h := ui.HoldingText(st.Scheduler.Holding[in.Name]); h != "" {
				fmt.Fprintf(w, "  %s\n", h)
			}
		}
	}
	if st.Scheduler != nil {
		printQueue(w, st.Scheduler.Queue)
	}
	printChatUI(w, st.ChatUI, st.Apps)
	if st.FrontDoor != nil {
		printDoor(w, *st.FrontDoor)
	}
}

// printQueue shows what waits in corral's queue, a line a model with its
// keys, most waiting first; nothing when nothing waits.
func printQueue(w io.Writer, queue []ui.QueueStatus) {
	type model struct {
		name    string
		waiting int
		oldest  time.Duration
		keys    []ui.QueueStatus
	}
	var models []*model
	total := 0
	for _, q := range queue {
		if q.Waiting <= 0 {
			continue
		}
		i := slices.IndexFunc(models, func(m *model) bool { return m.name == q.Model })
		if i < 0 {
			i = len(models)
			models = append(models, &model{name: q.Model})
		}
		m := models[i]
		m.waiting += q.Waiting
		m.oldest = max(m.oldest, q.Oldest)
		m.keys = append(m.keys, q)
		total += q.Waiting
	}
	if total == 0 {
		return
	}
	fmt.Fprintf(w, "\nQueue (%d waiting):\n", total)
	for _, m := range models {
		slices.SortFunc(m.keys, func(a, b ui.QueueStatus) int {
			return cmp.Or(cmp.Compare(b.Waiting, a.Waiting), strings.Compare(a.Key, b.Key))
		})
		keys := make([]string, len(m.keys))
		for i, k := range m.keys {
			name := k.Key
			if name == "" {
				name = "(none)"
			}
			keys[i] = fmt.Sprintf("key %s %d", name, k.Waiting)
		}
		fmt.Fprintf(w, "  %s: %d waiting (%s), oldest %s\n", m.name, m.waiting, strings.Join(keys, ", "), roundWait(m.oldest))
	}
}

// roundWait shows a wait to a useful precision: 0s, 85ms, 3.2s, 4m5s.
func roundWait(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func printDoor(w io.Writer, d DoorReport) {
	fmt.Fprintf(w, "\nFront door (%d connections open):\n", d.OpenConns)
	for _, name := range []string{"http", "https", "redirect"} {
		if a, ok := d.Listeners[name]; ok {
			fmt.Fprintf(w, "  %-8s listens on %s\n", name, a)
		}
	}
	for _, r := range d.Routes {
		fmt.Fprintf(w, "  route  %s\n", r)
	}
	c := d.Certificates
	if c == nil {
		return
	}
	fmt.Fprintf(w, "\nCertificates for %s: %s (%s", strings.Join(c.Names, ", "), c.State, c.Source)
	if c.CA != "" {
		fmt.Fprintf(w, ", CA %s", c.CA)
	}
	fmt.Fprintln(w, ")")
	for _, cert := range c.Certificates {
		fmt.Fprintf(w, "  %s: issued by %s, valid until %s", strings.Join(cert.Names, ", "), cert.Issuer, cert.NotAfter.Local().Format(time.DateTime))
		if !cert.NextRenewal.IsZero() {
			fmt.Fprintf(w, ", renewed from %s", cert.NextRenewal.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	if c.LastError != "" {
		fmt.Fprintf(w, "  last error (%s", c.LastErrorAt.Local().Format(time.DateTime))
		if c.Challenge != "" {
			fmt.Fprintf(w, ", challenge %s", c.Challenge)
		}
		fmt.Fprintf(w, "): %s\n  what to do: %s\n", c.LastError, c.Hint)
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return dash(id)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
