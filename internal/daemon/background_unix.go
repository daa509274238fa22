//go:build !windows

package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readyPipe returns descriptor 3, made close-on-exec, when it is a pipe
// (the one Background gave the child), and nil otherwise.
func readyPipe() *os.File {
	var st unix.Stat_t
	if err := unix.Fstat(readyFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	unix.CloseOnExec(readyFD)
	return os.NewFile(readyFD, "ready")
}

// Background re-runs this program with the same arguments as a detached
// child whose output goes to logPath (or nowhere if empty), and waits for
// it to call Ready. It returns nil once the child is ready, or the error
// the child reported.
//
// When ctx ends first (a timeout, or the user's interrupt), Background asks
// the child to stop with SIGTERM, so that it takes back what it did, and
// waits up to stopWait for it to exit before it kills it (SIGKILL). The
// error then says which, with the cause of ctx and what the child reported
// on its way out, if anything.
func Background(ctx context.Context, logPath string, stopWait time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemon: find own executable: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer r.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return fmt.Errorf("daemon: %w", err)
	}
	defer devnull.Close()
	out := devnull
	if logPath != "" {
		if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err == nil {
			defer f.Close()
			out = f
		}
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, out
	cmd.ExtraFiles = []*os.File{w} // becomes fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("daemon: start background process: %w", err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	select {
	case line := <-lines:
		switch {
		case line == "ready":
			cmd.Process.Release()
			return nil
		case strings.HasPrefix(line, "error: "):
			<-exited
			return errors.New(strings.TrimPrefix(line, "error: "))
		default:
			err := <-exited
			return fmt.Errorf("daemon: background process exited before it was ready: %v", err)
		}
	case <-ctx.Done():
	}
	// Not ready in time: ask it to stop and take back what it did.
	cause := context.Cause(ctx)
	how := "stopped it"
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopWait)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		cmd.Process.Kill()
		<-exited
		how = fmt.Sprintf("killed it: it did not stop within %v of SIGTERM", stopWait)
	}
	// Its last words, if any: the pipe ends with the child (no program it
	// started holds it), so this waits only when something unforeseen does.
	select {
	case line := <-lines:
		if msg, ok := strings.CutPrefix(line, "error: "); ok {
			how += " (it said: " + msg + ")"
		}
	case <-time.After(time.Second):
	}
	return fmt.Errorf("daemon: background process not ready: %w; %s", cause, how)
}

// CanBackground reports whether Background works on this system: true on
// Unix systems.
func CanBackground() bool { return true }
