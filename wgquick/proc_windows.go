package wgquick

import "os/exec"

// ownGroup does nothing on Windows: a hook is killed alone.
func ownGroup(*exec.Cmd, bool) {}

// kill kills a started hook's shell (cmd).
func kill(cmd *exec.Cmd, _ bool) { cmd.Process.Kill() }
