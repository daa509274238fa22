//go:build linux

// Package pingtest runs the system's ping inside a test namespace and checks
// that every echo request was answered.
package pingtest

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
)

var received = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// Require skips the test when ping (iputils-ping) is missing.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("needs ping (Debian package iputils-ping; the README's test command installs it)")
	}
}

// Ping sends count echo requests of size payload bytes to dst from inside ns
// and fails the test unless all are answered. It returns ping's output.
func Ping(t testing.TB, ns *nstest.NS, dst string, count, size int) string {
	t.Helper()
	return ping(t, ns, dst, count, size)
}

// PingDF is Ping with the Don't Fragment flag set on IPv4 (ping -M do, which
// also keeps IPv6 from fragmenting locally): a packet too big for the path
// is lost or refused instead of fragmented on the way, so every answered
// request crossed at its full size.
func PingDF(t testing.TB, ns *nstest.NS, dst string, count, size int) string {
	t.Helper()
	return ping(t, ns, dst, count, size, "-M", "do")
}

// PingNoDF is Ping with the Don't Fragment flag clear (ping -M dont): a
// router on the way may fragment the requests.
func PingNoDF(t testing.TB, ns *nstest.NS, dst string, count, size int) string {
	t.Helper()
	return ping(t, ns, dst, count, size, "-M", "dont")
}

func ping(t testing.TB, ns *nstest.NS, dst string, count, size int, extra ...string) string {
	t.Helper()
	args := append([]string{"-n", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "2", "-s", strconv.Itoa(size)}, extra...)
	out, err := ns.Output("ping", append(args, dst)...)
	m := received.FindStringSubmatch(out)
	if err != nil || m == nil || m[1] != m[2] {
		t.Fatalf("ping %s %s in %s: %v\n%s", strings.Join(args, " "), dst, ns.Name, err, out)
	}
	return out
}
