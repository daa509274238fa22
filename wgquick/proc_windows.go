package wgquick

import (
	"os/exec"
	"syscall"
)

// ownGroup does nothing on Windows: a hook is killed alone.
func ownGroup(*exec.Cmd, bool) {}

// kill kills a started hook's shell (cmd).
func kill(cmd *exec.Cmd, _ bool) { cmd.Process.Kill() }

// setCmdLine makes cmd run with the command line line as it is, unquoted
// (see cmdLine).
func setCmdLine(cmd *exec.Cmd, line string) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CmdLine = line
}
