// Package daemon runs a command in the background the way wireguard-go
// does: the program re-executes itself as a detached child in a new
// session, waits until the child says it is ready (or why it failed), and
// exits with that verdict. The child does all the work, so a failure leaves
// nothing half set up and is reported by the command the user typed.
package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// childEnv marks the re-executed child.
const childEnv = "TAPWIRE_DAEMON_CHILD"

// readyFD is the descriptor on which the child reports: "ready" or
// "error: ...".
const readyFD = 3

// IsChild reports whether this process is the background child.
func IsChild() bool { return os.Getenv(childEnv) == "1" }

// Background re-runs this program with the same arguments as a detached
// child whose output goes to logPath (or nowhere if empty), and waits up to
// timeout for it to call Ready. It returns nil once the child is ready, or
// the error the child reported.
func Background(logPath string, timeout time.Duration) error {
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
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("daemon: background process not ready after %v", timeout)
	}
}

// Ready tells the waiting parent that the child is ready (err nil) or has
// failed. Outside a background child it does nothing.
func Ready(err error) {
	if !IsChild() {
		return
	}
	f := os.NewFile(readyFD, "ready")
	if f == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(f, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		fmt.Fprintln(f, "ready")
	}
	f.Close()
}
