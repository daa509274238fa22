//go:build !windows

package wgquick

import (
	"os/exec"
	"syscall"
)

// ownGroup makes the hook the leader of a process group of its own, if
// group.
func ownGroup(cmd *exec.Cmd, group bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = group
}

// kill kills a started hook: its process group if group, else its shell.
func kill(cmd *exec.Cmd, group bool) {
	pid := cmd.Process.Pid
	if group {
		pid = -pid // the group
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// setCmdLine does nothing: only Windows hands a program one command line.
func setCmdLine(*exec.Cmd, string) {}
