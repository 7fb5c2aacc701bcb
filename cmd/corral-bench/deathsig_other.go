//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing: only Linux has a parent-death signal (and
// only Linux has the /proc the benchmark reads).
func setDeathSignal(*exec.Cmd) {}
