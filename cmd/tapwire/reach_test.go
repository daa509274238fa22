//go:build linux

package main

import (
	"os"
	"os/exec"
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

// TestUpUDPBlocked is the README's "UDP blocked?" as a new user meets it:
// a router between client and server drops all UDP; the client's peer has
// Transport = auto, the server ListenTCP: the tunnel comes up over TCP on
// the same address and port, ping and a TCP transfer go through, and
// status says how.
func TestUpUDPBlocked(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	nc, nr, ns := nstest.New(t), nstest.New(t), nstest.New(t)
	nr.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	nc.Link(nr, "twvc", "twrc", []string{"198.18.60.2/24"}, []string{"198.18.60.1/24"})
	nr.Link(ns, "twrs", "twvs", []string{"198.18.61.1/24"}, []string{"198.18.61.2/24"})
	nc.Run("ip", "route", "add", "default", "via", "198.18.60.1")
	ns.Run("ip", "route", "add", "default", "via", "198.18.61.1")
	nr.Run("nft", "add table inet twblock; add chain inet twblock twfwd { type filter hook forward priority 0; }; add rule inet twblock twfwd meta l4proto udp drop")
	dir := t.TempDir()
	c := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "198.18.60.2", port: 51051}
	s := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "198.18.61.2", port: 51052}
	confS := writeConf(t, dir, "twsrv", s, "ListenTCP = 51052", c)
	b, _ := os.ReadFile(confS)
	os.WriteFile(confS, []byte(strings.Replace(string(b), "Endpoint = 198.18.60.2:51051\n", "", 1)), 0o600)
	confC := writeConf(t, dir, "twcli", c, "", s)
	b, _ = os.ReadFile(confC)
	os.WriteFile(confC, append(b, []byte("Transport = auto\nPersistentKeepalive = 25\n")...), 0o600)
	up(t, ns, confS)
	up(t, nc, confC)
	start := time.Now()
	for {
		if _, err := nc.Output("ping", "-n", "-c", "1", "-W", "1", "198.51.100.2"); err == nil {
			break
		}
		if time.Since(start) > 45*time.Second {
			out, _ := tapwireIn(t, nc, "status", "twcli")
			t.Fatalf("no tunnel over TCP within 45 s:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("up over TCP after %v", time.Since(start).Round(100*time.Millisecond))
	pingtest.Ping(t, nc, "198.51.100.2", 3, 1392)
	if out, err := ns.Output("iperf3", "-v"); err == nil && strings.Contains(out, "iperf") {
		srv := ns.Command("iperf3", "-s", "-1", "-B", "198.51.100.2", "-p", "5291")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		var out string
		for range 20 {
			if out, err = nc.Output("iperf3", "-c", "198.51.100.2", "-p", "5291", "-t", "2"); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("iperf3 over the TCP transport: %v\n%s", err, out)
		}
	}
	out, _ := tapwireIn(t, nc, "status", "twcli")
	if !strings.Contains(out, "transport: tcp to 198.18.61.2:51052 (auto: UDP gets no handshake through); moves: 1 to TCP, 0 back to UDP") {
		t.Errorf("client status:\n%s", out)
	}
	out, _ = tapwireIn(t, ns, "status", "twsrv")
	if !strings.Contains(out, "listening port: 51052 (UDP), 51052 (TCP)") || !strings.Contains(out, "transport: tcp from 198.18.60.2:") {
		t.Errorf("server status:\n%s", out)
	}
}

// netnsResolvconf gives ns its own resolv.conf and resolvconf.conf (ip
// netns exec mounts /etc/netns/NS/* over /etc/*), so that resolvconf run by
// tapwire in ns writes there and keeps its state in a directory of the
// test's, never in the host's; it returns the resolv.conf's path.
func netnsResolvconf(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	if _, err := exec.LookPath("resolvconf"); err != nil {
		t.Skip("needs resolvconf (Debian package openresolv; the README's test command installs it)")
	}
	if _, err := os.Stat("/etc/resolvconf.conf"); err != nil {
		t.Skip("needs /etc/resolvconf.conf (openresolv's) to mount the namespace's own over")
	}
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Cleanup(func() { os.RemoveAll(dir) })
	resolv := filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "resolvconf.conf"), []byte("resolv_conf=/etc/resolv.conf\nstate_dir="+state+"\n"), 0o644)
	return resolv
}

// TestUpDNS applies DNS = through resolvconf (Debian's openresolv) as
// wg-quick does, in a namespace with a resolv.conf of its own, takes it back
// on down; and refuses a file with DNS, before anything is created, where
// neither resolvconf nor resolvectl is.
func TestUpDNS(t *testing.T) {
	requireWGTool(t)
	ns := nstest.New(t)
	resolv := netnsResolvconf(t, ns)
	dir := t.TempDir()
	me := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, port: 51061}
	conf := writeConf(t, dir, "twdns", me, "DNS = 192.0.2.53, 2001:db8::53, example.test")
	up(t, ns, conf)
	got, _ := os.ReadFile(resolv)
	for _, want := range []string{"nameserver 192.0.2.53", "nameserver 2001:db8::53", "search example.test"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("resolv.conf after up lacks %q:\n%s", want, got)
		}
	}
	if out, err := tapwireIn(t, ns, "down", conf); err != nil {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(resolv); strings.Contains(string(got), "192.0.2.53") {
		t.Errorf("resolv.conf after down still has the tunnel's server:\n%s", got)
	}

	// No resolvconf, no resolvectl: refused with the file, line and key.
	cmd := ns.Command(filepath.Join(binaries(t), "tapwire"), "up", conf)
	cmd.Env = append(os.Environ(), "PATH=/nonexistent")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), conf+":5: DNS: neither resolvconf nor resolvectl") {
		t.Errorf("tapwire up without a DNS tool: %v\n%s", err, out)
	}
	if _, err := ns.Output("ip", "link", "show", "twdns"); err == nil {
		t.Error("the refused file created the interface")
	}
}
