package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel send the child SIGTERM when the benchmark
// dies without cleaning up (SIGKILL, a crash).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
