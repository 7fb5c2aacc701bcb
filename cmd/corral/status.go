package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"corral/engine"
)

func (a *app) statusCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("status", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	var st engine.Status
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

func printStatus(w io.Writer, st engine.Status) {
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
