package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"corral/engine"
	"corral/gpu"
)

// runGPUs discovers GPUs in-process: it needs no running daemon, which is
// what a user checking a fresh server wants.
func (a *app) gpusCmd(_ context.Context, args []string) error {
	fs := newFlagSet("gpus", a.stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	inv := a.discover()
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	printGPUs(a.stdout, inv)
	return nil
}

func printGPUs(w io.Writer, inv gpu.Inventory) {
	if len(inv.Devices) == 0 {
		fmt.Fprintf(w, "no GPUs: %s\ncorral serve will run Ollama on CPU (--cpu-instances).\n", inv.Reason)
		return
	}
	fmt.Fprintf(w, "driver %s, CUDA %s\n", dash(inv.DriverVersion), dash(inv.CUDAVersion))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tNAME\tUUID\tMEMORY USED\tMEMORY TOTAL\tPCI BUS")
	for _, d := range inv.Devices {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Index, d.Name, d.UUID, engine.IECBytes(int64(d.MemoryUsed)), engine.IECBytes(int64(d.MemoryTotal)), dash(d.PCIBusID))
	}
	tw.Flush()
}
