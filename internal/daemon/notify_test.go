//go:build linux

package daemon

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenNotify listens on a datagram socket as systemd does for a
// Type=notify service, at path (@NAME: abstract), until the test ends.
func listenNotify(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive returns the next datagram on c as its KEY=VALUE lines.
func receive(t *testing.T, c *net.UnixConn) map[string]string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.Lines(string(b[:n])) {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			t.Errorf("a line without =: %q in %q", line, b[:n])
		}
		m[k] = v
	}
	return m
}

func nowUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// TestNotifier sends each state to a real socket, at a path and in the
// abstract namespace, and reads what systemd would.
func TestNotifier(t *testing.T) {
	t.Parallel()
	for _, path := range []string{filepath.Join(t.TempDir(), "notify"), fmt.Sprintf("@tapwire-notify-test-%d", os.Getpid())} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			c := listenNotify(t, path)
			n := NewNotifier(path)
			if err := n.Ready("wg0 up:\n2 peers"); err != nil {
				t.Fatal(err)
			}
			if m := receive(t, c); m["READY"] != "1" || m["MAINPID"] != strconv.Itoa(os.Getpid()) || m["STATUS"] != "wg0 up: 2 peers" || len(m) != 3 {
				t.Errorf("Ready sent %q", m)
			}
			before := nowUsec(t)
			if err := n.Reloading("reloading wg0.conf"); err != nil {
				t.Fatal(err)
			}
			after := nowUsec(t)
			m := receive(t, c)
			usec, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
			if m["RELOADING"] != "1" || err != nil || usec < before || usec > after || m["STATUS"] != "reloading wg0.conf" {
				t.Errorf("Reloading sent %q, want MONOTONIC_USEC in [%d, %d]", m, before, after)
			}
			if err := n.Stopping("taking wg0 down"); err != nil {
				t.Fatal(err)
			}
			if m := receive(t, c); m["STOPPING"] != "1" || m["STATUS"] != "taking wg0 down" || len(m) != 2 {
				t.Errorf("Stopping sent %q", m)
			}
			if err := n.Status("still here"); err != nil {
				t.Fatal(err)
			}
			if m := receive(t, c); m["STATUS"] != "still here" || len(m) != 1 {
				t.Errorf("Status sent %q", m)
			}
		})
	}
}

// TestNotifierNil: no socket, no Notifier, and a nil one does nothing; a
// socket nobody listens on is an error.
func TestNotifierNil(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "vsock:2:1234", "relative/path"} {
		if n := NewNotifier(path); n != nil {
			t.Errorf("NewNotifier(%q) = %v, want nil", path, n)
		}
	}
	var n *Notifier
	if err := n.Ready("up"); err != nil {
		t.Errorf("nil Notifier: %v", err)
	}
	gone := NewNotifier(filepath.Join(t.TempDir(), "nobody"))
	if err := gone.Ready("up"); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("Ready to a socket nobody listens on: %v", err)
	}
}

// TestTakeNotifier: the variable is taken from the environment, so a
// program the service runs does not see it, and only once.
func TestTakeNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, path)
	t.Setenv(notifyEnv, path)
	n := TakeNotifier()
	if n == nil {
		t.Fatal("TakeNotifier with NOTIFY_SOCKET set: nil")
	}
	out, err := exec.Command("sh", "-c", "echo \"[$"+notifyEnv+"]\"").Output()
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Errorf("a program run after TakeNotifier sees NOTIFY_SOCKET %s (%v)", out, err)
	}
	if TakeNotifier() != nil {
		t.Error("TakeNotifier twice: not nil")
	}
	if err := n.Ready("up"); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, c); m["READY"] != "1" {
		t.Errorf("Ready sent %q", m)
	}
}
