//go:build linux

package main

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill a child when this process dies, so no
// child outlives a crashed or killed harness.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
