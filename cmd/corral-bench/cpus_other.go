//go:build !linux

package main

import (
	"context"
	"errors"
)

// cpuPlan is Linux-only (CPU affinity); elsewhere the benchmark refuses to
// run before it places anything, and this keeps the package building.
type cpuPlan struct {
	mode, note string
	awake      bool
}

const (
	cpusSplit  = "split"
	cpusShared = "shared"
)

func planCPUs(mode string) (cpuPlan, error)            { return cpuPlan{mode: cpusShared}, nil }
func (p cpuPlan) shared(note string) cpuPlan           { return cpuPlan{mode: cpusShared, note: note} }
func (p cpuPlan) split() bool                          { return false }
func (p cpuPlan) proxyCPUs() int                       { return 0 }
func (p cpuPlan) describe() string                     { return "shared" }
func (p cpuPlan) pinSelf() error                       { return nil }
func (p cpuPlan) unpinSelf() error                     { return nil }
func (p cpuPlan) onProxyCPUs(start func() error) error { return start() }

func cpusOf(pid int) string { return "unknown" }

func startSpinner(ctx context.Context, dir string, p cpuPlan) (*child, error) {
	return nil, errors.New("--awake: Linux only")
}

func spin(ctx context.Context) error { return errors.New("spin: Linux only") }

func spinsIdle(pid int) bool { return false }
