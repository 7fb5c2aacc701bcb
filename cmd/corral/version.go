package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("version", stdout)
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	fmt.Fprintf(stdout, "corral %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
