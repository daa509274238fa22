package wgquick

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/netconf"
)

// nsRunner returns a Runner for a fresh namespace of the test's: netconf,
// hooks, DNS tools and sysctls all act there.
func nsRunner(t *testing.T) (*nstest.NS, *Runner) {
	t.Helper()
	nstest.GuardHost(t)
	ns := nstest.New(t)
	nc, err := netconf.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return ns, &Runner{
		Net:     nc,
		Command: ns.Command,
		Sysctl: func(key, value string) error {
			return ns.Do(func() error {
				return os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(value), 0o644)
			})
		},
	}
}

// tunStart starts a persistent tun or tap device (ip tuntap), with no
// engine behind it, as the device; closing the device deletes it.
func tunStart(t *testing.T, ns *nstest.NS, r *Runner, ev *events) func(StartDevice) (Device, error) {
	return func(sd StartDevice) (Device, error) {
		mode := "tun"
		if sd.TAP {
			mode = "tap"
		}
		if out, err := ns.Output("ip", "tuntap", "add", "dev", sd.Name, "mode", mode); err != nil {
			t.Errorf("ip link add: %v: %s", err, out)
			return nil, err
		}
		return &fakeDevice{ev: ev, onClose: func() error { return r.Net.DelLink(sd.Name) }}, nil
	}
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

func mustLack(t *testing.T, what, out string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(out, n) {
			t.Errorf("%s still has %q:\n%s", what, n, out)
		}
	}
}

// TestApplyDefaultRoute brings up a TUN plan with both default routes in a
// namespace whose table 51820 is taken: the plan chooses 51821, and Up
// adds the addresses, routes, rules and sysctl; the hooks run in the
// namespace. Down takes the rules away and the device with its routes.
func TestApplyDefaultRoute(t *testing.T) {
	t.Parallel()
	ns, r := nsRunner(t)
	ns.Run("ip", "tuntap", "add", "dev", "busy0", "mode", "tun")
	ns.Run("ip", "link", "set", "busy0", "up")
	ns.Run("ip", "route", "add", "203.0.113.0/24", "dev", "busy0", "table", "51820")
	ns.Run("sysctl", "-q", "-w", "net.ipv4.conf.all.src_valid_mark=0")
	dir := t.TempDir()
	cfg := parse(t, "Address = 198.51.100.1/24, 2001:db8::1/64\n"+
		"PostUp = ip -o link show %i > "+filepath.Join(dir, "postup")+"\nPostDown = ip -o link show %i > "+filepath.Join(dir, "postdown")+" 2>&1 || echo gone > "+filepath.Join(dir, "postdown"),
		"AllowedIPs = 198.51.100.2/32, 0.0.0.0/0, ::/0", "AllowedIPs = 192.0.2.0/24")
	host := ReadHost(r.Net, cfg)
	if !slices.Equal(host.BusyTables, []uint32{51820}) {
		t.Errorf("ReadHost: busy tables %v, want [51820]", host.BusyTables)
	}
	plan, err := NewPlan(cfg, "twq0", host)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	a, err := r.Up(t.Context(), plan, tunStart(t, ns, r, ev))
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, plan)
	}
	if got := ev.get(); !slices.Equal(got, []string{"fwmark 51821"}) {
		t.Errorf("device: %q, want fwmark 51821", got)
	}
	mustContain(t, "ip addr", ns.Run("ip", "addr", "show", "twq0"), "198.51.100.1/24", "2001:db8::1/64", "UP")
	mustContain(t, "main table", ns.Run("ip", "route", "show"), "198.51.100.2 dev twq0", "192.0.2.0/24 dev twq0")
	mustContain(t, "table 51821", ns.Run("ip", "route", "show", "table", "51821"), "default dev twq0")
	mustContain(t, "IPv6 table 51821", ns.Run("ip", "-6", "route", "show", "table", "51821"), "default dev twq0")
	mustContain(t, "ip rule", ns.Run("ip", "rule", "show"), "not from all fwmark 0xca6d lookup 51821", "from all lookup main suppress_prefixlength 0")
	mustContain(t, "ip -6 rule", ns.Run("ip", "-6", "rule", "show"), "not from all fwmark 0xca6d lookup 51821", "from all lookup main suppress_prefixlength 0")
	if got := strings.TrimSpace(ns.Run("sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")); got != "1" {
		t.Errorf("src_valid_mark %s, want 1", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "postup")); !strings.Contains(string(b), "twq0") {
		t.Errorf("PostUp did not see the interface in the namespace: %q", b)
	}

	a.Down(func() {})
	mustLack(t, "ip rule after down", ns.Run("ip", "rule", "show"), "51821", "suppress_prefixlength")
	mustLack(t, "ip -6 rule after down", ns.Run("ip", "-6", "rule", "show"), "51821", "suppress_prefixlength")
	mustLack(t, "links after down", ns.Run("ip", "-o", "link"), "twq0")
	if b, _ := os.ReadFile(filepath.Join(dir, "postdown")); strings.TrimSpace(string(b)) != "gone" {
		t.Errorf("PostDown ran before the device went: %q", b)
	}
	mustContain(t, "table 51820 after down", ns.Run("ip", "route", "show", "table", "51820"), "203.0.113.0/24 dev busy0")
}

// TestApplyTableAndRollback: Table = 1234 puts every route there and adds
// no rules; a failing PostUp takes the device (and so its routes) away.
func TestApplyTableAndRollback(t *testing.T) {
	t.Parallel()
	ns, r := nsRunner(t)
	cfg := parse(t, "Table = 1234\nAddress = 198.51.100.1/24", "AllowedIPs = 198.51.100.0/24, 0.0.0.0/0")
	plan, err := NewPlan(cfg, "twq1", ReadHost(r.Net, cfg))
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	a, err := r.Up(t.Context(), plan, tunStart(t, ns, r, ev))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "table 1234", ns.Run("ip", "route", "show", "table", "1234"), "default dev twq1", "198.51.100.0/24 dev twq1")
	mustLack(t, "ip rule", ns.Run("ip", "rule", "show"), "suppress_prefixlength", "fwmark")
	a.Down(func() {})

	// The same with a PostUp that fails, and a default route of wg-quick's
	// way: its rules go too.
	cfg = parse(t, "Address = 198.51.100.1/24\nPostUp = exit 7", "AllowedIPs = 0.0.0.0/0")
	plan, err = NewPlan(cfg, "twq1", ReadHost(r.Net, cfg))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Up(t.Context(), plan, tunStart(t, ns, r, ev))
	if err == nil || err.Error() != `PostUp hook "exit 7": exit status 7` {
		t.Fatalf("Up with a failing PostUp: %v", err)
	}
	mustLack(t, "ip rule after the rollback", ns.Run("ip", "rule", "show"), "51820", "suppress_prefixlength")
	mustLack(t, "links after the rollback", ns.Run("ip", "-o", "link"), "twq1")
}

// TestApplyBridge: a tap plan with Bridge creates the bridge, makes the
// device its port and puts the addresses on the bridge; down (and a
// rollback) takes the addresses off and leaves the bridge.
func TestApplyBridge(t *testing.T) {
	t.Parallel()
	ns, r := nsRunner(t)
	for _, postUp := range []string{"true", "false"} {
		cfg := parse(t, "Mode = tap\nBridge = twbr0\nAddress = 198.51.100.1/24, 2001:db8::1/64\nPostUp = "+postUp)
		host := ReadHost(r.Net, cfg)
		plan, err := NewPlan(cfg, "twq2", host)
		if err != nil {
			t.Fatal(err)
		}
		if existed := postUp == "false"; slices.Contains(host.Links, "twbr0") != existed {
			t.Errorf("ReadHost: links %v (the bridge exists the second time only)", host.Links)
		}
		a, err := r.Up(t.Context(), plan, tunStart(t, ns, r, &events{}))
		if postUp == "false" {
			if err == nil {
				t.Fatal("Up with PostUp = false succeeded")
			}
		} else {
			if err != nil {
				t.Fatal(err)
			}
			mustContain(t, "the device", ns.Run("ip", "-d", "link", "show", "twq2"), "master twbr0")
			mustContain(t, "the bridge", ns.Run("ip", "addr", "show", "twbr0"), "198.51.100.1/24", "2001:db8::1/64", "UP")
			a.Down(func() {})
		}
		mustLack(t, "the bridge after down", ns.Run("ip", "addr", "show", "twbr0"), "198.51.100.1", "2001:db8::1")
		mustLack(t, "links after down", ns.Run("ip", "-o", "link"), "twq2")
	}
}

// TestApplyDNS runs resolvconf (openresolv) in the namespace, with a
// resolv.conf and state of the test's (ip netns exec mounts
// /etc/netns/NS/* over /etc/*), as tapwire up does.
func TestApplyDNS(t *testing.T) {
	t.Parallel()
	path, err := exec.LookPath("resolvconf")
	if err != nil {
		t.Skip("needs resolvconf (Debian package openresolv)")
	}
	if _, err := os.Stat("/etc/resolvconf.conf"); err != nil {
		t.Skip("needs /etc/resolvconf.conf (openresolv's) to mount the namespace's own over")
	}
	ns, r := nsRunner(t)
	etc := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	resolv := filepath.Join(etc, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "resolvconf.conf"), []byte("resolv_conf=/etc/resolv.conf\nstate_dir="+t.TempDir()+"\n"), 0o644)

	cfg := parse(t, "Address = 198.51.100.1/24\nDNS = 192.0.2.53, example.test")
	plan, err := NewPlan(cfg, "twq3", Host{DNS: DNSTool{Resolvconf, path}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Up(t.Context(), plan, tunStart(t, ns, r, &events{}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(resolv)
	mustContain(t, "resolv.conf", string(b), "nameserver 192.0.2.53", "search example.test")
	a.Down(func() {})
	b, _ = os.ReadFile(resolv)
	mustLack(t, "resolv.conf after down", string(b), "192.0.2.53")
}

// TestApplyBridgeAddressFails: when one of the addresses cannot go on the
// bridge, the ones before it come off again, and an address the bridge had
// before stays.
func TestApplyBridgeAddressFails(t *testing.T) {
	t.Parallel()
	ns, r := nsRunner(t)
	ns.Run("ip", "link", "add", "twbr1", "type", "bridge")
	ns.Run("ip", "addr", "add", "2001:db8::1/48", "dev", "twbr1", "nodad") // the same address, another length: EEXIST
	cfg := parse(t, "Mode = tap\nBridge = twbr1\nAddress = 198.51.100.1/24, 2001:db8::1/64")
	plan, err := NewPlan(cfg, "twq4", ReadHost(r.Net, cfg))
	if err != nil {
		t.Fatal(err)
	}
	var last Leftovers
	r.Journal = func(l Leftovers) { last = l }
	if _, err := r.Up(t.Context(), plan, tunStart(t, ns, r, &events{})); err == nil || !strings.Contains(err.Error(), "2001:db8::1/64") {
		t.Fatalf("Up: %v, want the second address refused\n%s", err, plan)
	}
	out := ns.Run("ip", "addr", "show", "twbr1")
	mustLack(t, "the bridge after the failure", out, "198.51.100.1", "2001:db8::1/64")
	mustContain(t, "the bridge after the failure", out, "2001:db8::1/48")
	mustLack(t, "links after the failure", ns.Run("ip", "-o", "link"), "twq4")
	if !last.Empty() {
		t.Errorf("journal after the rollback: %+v, want empty", last)
	}
}

// TestApplyLeftoversCleaned: what an Up whose process was killed leaves
// (policy rules, the bridge's addresses) is in its journal, and Clean
// takes it back; a second Clean finds nothing to fail on.
func TestApplyLeftoversCleaned(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, iface, peer string
		gone              func(ns *nstest.NS)
	}{
		{"default route", "Address = 198.51.100.1/24, 2001:db8::1/64", "AllowedIPs = 0.0.0.0/0, ::/0", func(ns *nstest.NS) {
			mustLack(t, "ip rule", ns.Run("ip", "rule", "show"), "51820", "suppress_prefixlength")
			mustLack(t, "ip -6 rule", ns.Run("ip", "-6", "rule", "show"), "51820", "suppress_prefixlength")
		}},
		{"bridge", "Mode = tap\nBridge = twbr2\nAddress = 198.51.100.1/24, 2001:db8::1/64", "", func(ns *nstest.NS) {
			mustLack(t, "the bridge", ns.Run("ip", "addr", "show", "twbr2"), "198.51.100.1", "2001:db8::1")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ns, r := nsRunner(t)
			var peers []string
			if c.peer != "" {
				peers = append(peers, c.peer)
			}
			cfg := parse(t, c.iface, peers...)
			plan, err := NewPlan(cfg, "twq5", ReadHost(r.Net, cfg))
			if err != nil {
				t.Fatal(err)
			}
			var last Leftovers
			r.Journal = func(l Leftovers) { last = l }
			if _, err := r.Up(t.Context(), plan, tunStart(t, ns, r, &events{})); err != nil {
				t.Fatal(err)
			}
			if last.Empty() {
				t.Fatal("nothing in the journal")
			}
			// The process is killed: its device goes, nothing else.
			ns.Run("ip", "link", "del", "twq5")
			b, _ := json.Marshal(last)
			var back Leftovers
			json.Unmarshal(b, &back)
			fresh := &Runner{Net: r.Net, Command: r.Command}
			fresh.Clean(back)
			c.gone(ns)
			var logs bytes.Buffer
			again := &Runner{Net: r.Net, Command: r.Command, Log: slog.New(slog.NewTextHandler(&logs, nil))}
			again.Clean(back)
			if strings.Contains(logs.String(), "WARN") {
				t.Errorf("a second Clean warns:\n%s", logs.String())
			}
		})
	}
}
