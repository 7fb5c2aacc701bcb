package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// MaxLogTail bounds how many lines a log request may ask for, so a page
// or a script cannot make corral copy a container's whole history.
const MaxLogTail = 5000

// Logs writes the last tail lines of an instance's or companion's
// container log (stdout and stderr together) to w and, with follow, what
// it writes next until ctx ends.
func (e *Engine) Logs(ctx context.Context, name string, tail int, follow bool, w io.Writer) error {
	if tail < 0 || tail > MaxLogTail {
		return fmt.Errorf("tail %d: use 0 to %d lines", tail, MaxLogTail)
	}
	_, id, err := e.containerOf(name)
	if err != nil {
		return err
	}
	rc, err := e.docker.Logs(ctx, id, tail, follow)
	if err != nil {
		return err
	}
	defer rc.Close()
	// Close on cancel: a follow that waits for the next line returns then.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	return nil
}
