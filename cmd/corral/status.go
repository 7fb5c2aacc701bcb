package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"corral/engine"
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
	FrontDoor *DoorReport `json:"front_door,omitempty"`
}

func printStatus(w io.Writer, st statusReport) {
	if st.Docker != "ok" {
		fmt.Fprintf(w, "%s\n\n", st.Docker)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGPU\tPHASE\tWEIGHT\tCONTAINER\tIMAGE\tENDPOINT\tREASON")
	for _, in := range st.Instances {
		gpuCol := in.GPU
		if in.GPUIndex >= 0 {
			gpuCol = fmt.Sprintf("%d", in.GPUIndex)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, gpuCol, in.Phase, in.Weight, short(in.ContainerID), in.Image, dash(in.Endpoint), in.Reason)
	}
	tw.Flush()
	if st.FrontDoor != nil {
		printDoor(w, *st.FrontDoor)
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
