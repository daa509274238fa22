// Package daemon runs a command in the background the way wireguard-go
// does: the program re-executes itself as a detached child in a new
// session, waits until the child says it is ready (or why it failed), and
// exits with that verdict. The child does all the work, so a failure leaves
// nothing half set up and is reported by the command the user typed.
//
// The child learns that it is the child from an environment variable and
// reports on an inherited pipe (descriptor 3). Both are the child's alone:
// TakeChild removes the variable from the child's environment and makes the
// descriptor close-on-exec, so the programs the child starts (hooks) run as
// if started by hand, and cannot speak for the child.
//
// Under systemd (Type=notify) the service runs in the foreground instead,
// and a Notifier tells systemd when it is ready, reloading or stopping;
// TakeNotifier hides NOTIFY_SOCKET from the programs it starts in the same
// way.
package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv marks the re-executed child.
const childEnv = "TAPWIRE_DAEMON_CHILD"

// readyFD is the descriptor on which the child reports: "ready" or
// "error: ...".
const readyFD = 3

// Child is the background child's end of the readiness pipe.
type Child struct {
	mu sync.Mutex
	f  *os.File // nil once reported
}

// TakeChild returns the Child when this process is the background child
// that Background started, and nil otherwise (started by hand, or the
// marker is set but descriptor 3 is not a pipe). It removes the marker
// from the process's environment and makes descriptor 3 close-on-exec, so
// that the programs this process starts are not children of Background:
// a hook that runs `tapwire up` goes into the background itself, and a
// hook that writes to descriptor 3 does not reach the waiting parent.
// Call it once, before starting other programs; later calls return nil.
func TakeChild() *Child {
	if os.Getenv(childEnv) != "1" {
		return nil
	}
	os.Unsetenv(childEnv)
	var st unix.Stat_t
	if err := unix.Fstat(readyFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	unix.CloseOnExec(readyFD)
	return &Child{f: os.NewFile(readyFD, "ready")}
}

// Ready tells the waiting parent that the child is ready (err nil) or has
// failed, and closes the pipe: only the first call says anything. On a nil
// Child (not the background child) it does nothing.
func (c *Child) Ready(err error) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(c.f, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		fmt.Fprintln(c.f, "ready")
	}
	c.f.Close()
	c.f = nil
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
