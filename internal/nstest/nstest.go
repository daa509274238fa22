//go:build linux

// Package nstest gives tests throw-away network namespaces: each is made with
// `ip netns add`, has its loopback up, and is deleted by t.Cleanup whether the
// test passes or fails. Tests that need root call RequireRoot first, which
// skips them cleanly when run unprivileged.
package nstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tapwire/tapwire/internal/inns"
)

var counter atomic.Uint64 // distinguishes namespaces made by one test binary

// RequireRoot skips the test unless it runs as root with /dev/net/tun and the
// ip command present. CI runs as root, so there these tests always run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to create network namespaces and TUN/TAP devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
}

// NS is a network namespace owned by one test.
type NS struct {
	Name string
	t    testing.TB
}

// New makes a fresh namespace with loopback up and registers its removal.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("twt-%d-%d", os.Getpid(), counter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

// Path is the namespace's file, usable wherever tapwire takes a namespace.
func (ns *NS) Path() string { return inns.Path(ns.Name) }

// Command returns a command that runs inside the namespace.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Output runs a command inside the namespace and returns its combined output.
func (ns *NS) Output(name string, args ...string) (string, error) {
	out, err := ns.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns.Name, err, out)
	}
	return string(out), nil
}

// Run runs a command inside the namespace and fails the test if it fails.
func (ns *NS) Run(name string, args ...string) string {
	ns.t.Helper()
	out, err := ns.Output(name, args...)
	if err != nil {
		ns.t.Fatal(err)
	}
	return out
}

// Do runs fn on a thread inside the namespace (see inns.Do).
func (ns *NS) Do(fn func() error) error { return inns.Do(ns.Name, fn) }

// HTTPClient returns an HTTP client whose connections are dialed inside
// the namespace (its loopback and links), whatever thread the request
// runs on; it keeps no idle connections, so nothing outlives a request.
func (ns *NS) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil, // never a proxy from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// Link joins ns and other with a veth pair (names a in ns, b in other),
// gives each end its addresses (IPv6 without duplicate address detection)
// and brings both up.
func (ns *NS) Link(other *NS, a, b string, addrsA, addrsB []string) {
	ns.t.Helper()
	ns.Run("ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", other.Name)
	for _, end := range []struct {
		ns    *NS
		name  string
		addrs []string
	}{{ns, a, addrsA}, {other, b, addrsB}} {
		for _, addr := range end.addrs {
			args := []string{"addr", "add", addr, "dev", end.name}
			if strings.Contains(addr, ":") {
				args = append(args, "nodad")
			}
			end.ns.Run("ip", args...)
		}
		end.ns.Run("ip", "link", "set", end.name, "up")
	}
}

// GuardHost fails the test if the test process's own network namespace
// (the host's) gains or loses an interface or an address by the end of the
// test: everything a test does belongs in namespaces it made.
func GuardHost(t testing.TB) {
	t.Helper()
	before := hostNetwork(t)
	t.Cleanup(func() {
		if after := hostNetwork(t); !slices.Equal(before, after) {
			t.Errorf("the host's network changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}

func hostNetwork(t testing.TB) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		out = append(out, fmt.Sprint(ifi.Name, addrs))
	}
	return out
}
