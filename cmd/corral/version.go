package main

import (
	"context"
	"fmt"
	"runtime"
)

func (a *app) versionCmd(_ context.Context, args []string) error {
	fs := newFlagSet("version", a.stdout)
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	fmt.Fprintf(a.stdout, "corral %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
