package daemon

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
)

// notifyEnv names the socket systemd listens on for a Type=notify
// service's state (sd_notify(3)).
const notifyEnv = "NOTIFY_SOCKET"

// Notifier tells systemd a service's state over the socket of
// NOTIFY_SOCKET: READY=1 once it serves, RELOADING=1 and READY=1 again
// around a reload, STOPPING=1 when it starts shutting down, and a STATUS=
// line that systemctl status shows. A nil *Notifier (no systemd waiting)
// does nothing.
//
// It is written here rather than taken from go-systemd's daemon.SdNotify,
// which reads NOTIFY_SOCKET again at every call (so it cannot be hidden
// from the programs the service starts without losing later messages) and
// has no MONOTONIC_USEC for reloads.
type Notifier struct {
	mu   sync.Mutex
	addr *net.UnixAddr
}

// TakeNotifier returns the Notifier for $NOTIFY_SOCKET, or nil when it is
// not set (not started by systemd, or a Type that does not listen). It
// removes the variable from the process's environment, so that the
// programs the process starts (hooks) do not speak for it, as TakeChild
// does with its pipe. A socket path starting with @ is in the abstract
// namespace. Call it once; later calls return nil.
func TakeNotifier() *Notifier {
	path, ok := os.LookupEnv(notifyEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(notifyEnv)
	return NewNotifier(path)
}

// NewNotifier returns a Notifier that sends to the datagram socket at path
// (@NAME: NAME in the abstract namespace), nil for an empty path or one
// that is not a unix socket's (systemd's vsock: addresses).
func NewNotifier(path string) *Notifier {
	if path == "" || !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return nil
	}
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// Ready says that the service is up, with status as its STATUS= line, and
// that this process is the one to watch (MAINPID).
func (n *Notifier) Ready(status string) error {
	return n.send(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=%s\n", os.Getpid(), oneLine(status)))
}

// Reloading says that the service reloads its configuration (RELOADING=1,
// with the time as Type=notify-reload wants it); Ready says when it is
// done, whether the reload succeeded or not.
func (n *Notifier) Reloading(status string) error {
	usec, err := monotonicUsec()
	if err != nil {
		return fmt.Errorf("daemon: notify: %w", err)
	}
	return n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=%s\n", usec, oneLine(status)))
}

// Stopping says that the service is shutting down.
func (n *Notifier) Stopping(status string) error {
	return n.send(fmt.Sprintf("STOPPING=1\nSTATUS=%s\n", oneLine(status)))
}

// Status changes the STATUS= line alone.
func (n *Notifier) Status(status string) error {
	return n.send(fmt.Sprintf("STATUS=%s\n", oneLine(status)))
}

// send sends state in one datagram.
func (n *Notifier) send(state string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("daemon: notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("daemon: notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// oneLine keeps a STATUS= value on its line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
