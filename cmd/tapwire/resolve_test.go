package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
)

// netnsHosts gives ns an /etc/hosts of its own (ip netns exec mounts
// /etc/netns/NS/hosts over /etc/hosts), removed when the test ends, and
// returns its path: writing it in place changes what the namespace's
// processes resolve.
func netnsHosts(t *testing.T, ns *nstest.NS, content string) string {
	t.Helper()
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "hosts")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEndpointNameFollowed gives a client its server by name (from the
// client namespace's /etc/hosts), then moves the server to another address
// and the name with it: the client follows without any command, as soon
// as its handshakes to the old address go unanswered.
func TestEndpointNameFollowed(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	nc, ns := nstest.New(t), nstest.New(t)
	nc.Link(ns, "twvc", "twvs", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	hosts := netnsHosts(t, nc, "127.0.0.1 localhost\n192.0.2.2 twsrv.test\n")
	dir := t.TempDir()
	c := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "192.0.2.1", port: 51041}
	s := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51042}
	confS := writeConf(t, dir, "twsrv", s, "", c)
	confC := writeConf(t, dir, "twcli", c, "", s)
	b, _ := os.ReadFile(confC)
	os.WriteFile(confC, []byte(strings.Replace(string(b), "Endpoint = 192.0.2.2:51042", "Endpoint = twsrv.test:51042", 1)), 0o600)
	// The server learns the client's endpoint from its handshake.
	b, _ = os.ReadFile(confS)
	os.WriteFile(confS, []byte(strings.Replace(string(b), "Endpoint = 192.0.2.1:51041\n", "", 1)), 0o600)
	up(t, ns, confS)
	up(t, nc, confC)
	pingtest.Ping(t, nc, "198.51.100.2", 2, 56)
	if out, _ := tapwireIn(t, nc, "status", "twcli"); !strings.Contains(out, "endpoint: 192.0.2.2:51042 (twsrv.test:51042, followed)") {
		t.Errorf("status does not show the followed name:\n%s", out)
	}

	// The server moves: it stops, comes back on another address (so it
	// knows nothing of the client, and cannot make it roam), and its name
	// follows.
	if out, err := tapwireIn(t, ns, "down", confS); err != nil {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	ns.Run("ip", "addr", "del", "192.0.2.2/24", "dev", "twvs")
	ns.Run("ip", "addr", "add", "192.0.2.3/24", "dev", "twvs")
	up(t, ns, confS)
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n192.0.2.3 twsrv.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	for {
		if _, err := nc.Output("ping", "-n", "-c", "1", "-W", "1", "198.51.100.2"); err == nil {
			break
		}
		if time.Since(moved) > 90*time.Second {
			out, _ := tapwireIn(t, nc, "status", "twcli")
			t.Fatalf("the client did not follow the server's name within 90 s:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("followed the moved server in %v", time.Since(moved).Round(100*time.Millisecond))
	if out, _ := tapwireIn(t, nc, "status", "twcli"); !strings.Contains(out, "endpoint: 192.0.2.3:51042 (twsrv.test:51042, followed)") {
		t.Errorf("status after the move:\n%s", out)
	}
}
