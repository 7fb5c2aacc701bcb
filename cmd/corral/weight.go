package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"corral/engine"
)

// weightCmd sets an instance's share of the gateway's traffic.
func (a *app) weightCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("weight", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	pos, err := fs.parseArgs(args, 2)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) < 2 || pos[0] == "" {
		return usageError{"usage: corral weight INSTANCE N (see corral status for instance names)"}
	}
	name, raw := pos[0], pos[1]
	w, err := strconv.Atoi(raw)
	if err != nil {
		return usageError{fmt.Sprintf("weight %q: give a whole number from 1 to %d", raw, engine.MaxWeight)}
	}
	var st engine.Status
	if err := newDaemon(*dataDir).do(ctx, http.MethodPut, "/api/v1/instances/"+name+"/weight", map[string]int{"weight": w}, &st); err != nil {
		return err
	}
	printStatus(a.stdout, statusReport{Status: st})
	return nil
}
