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
	if len(args) < 2 || args[0] == "" || args[0][0] == '-' {
		if err := fs.parse(args); err != nil {
			return helpOK(err)
		}
		return usageError{"usage: corral weight INSTANCE N (see corral status for instance names)"}
	}
	name, raw := args[0], args[1]
	if err := fs.parse(args[2:]); err != nil {
		return helpOK(err)
	}
	w, err := strconv.Atoi(raw)
	if err != nil {
		return usageError{fmt.Sprintf("weight %q: give a whole number from 1 to %d", raw, engine.MaxWeight)}
	}
	var st engine.Status
	if err := newDaemon(*dataDir).do(ctx, http.MethodPut, "/api/v1/instances/"+name+"/weight", map[string]int{"weight": w}, &st); err != nil {
		return err
	}
	printStatus(a.stdout, st)
	return nil
}
