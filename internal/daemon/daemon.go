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
	"fmt"
	"os"
	"strings"
	"sync"
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
	f := readyPipe()
	if f == nil {
		return nil
	}
	return &Child{f: f}
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
