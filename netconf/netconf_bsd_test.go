//go:build darwin || freebsd

package netconf_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/netconf"
)

// TestBSDLink configures an interface the test creates (createLink: a
// feth on macOS, a tun on FreeBSD) as root: MTU, up, addresses, routes,
// and checks them with net, Addrs and netstat. It uses 198.18.0.0/15
// (benchmarking), which nothing routes.
func TestBSDLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	h, err := netconf.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	name := createLink(t, h)

	if err := h.SetMTU(name, 1380); err != nil {
		t.Fatal(err)
	}
	if ifi, err := net.InterfaceByName(name); err != nil || ifi.MTU != 1380 {
		t.Errorf("MTU after SetMTU(1380): %v, %v", ifi, err)
	}
	if err := h.SetUp(name); err != nil {
		t.Fatal(err)
	}
	if ifi, _ := net.InterfaceByName(name); ifi == nil || ifi.Flags&net.FlagUp == 0 {
		t.Errorf("%s is not up after SetUp", name)
	}

	v4, v6 := netip.MustParsePrefix("198.18.7.1/24"), netip.MustParsePrefix("fd5c:7a9::1/64")
	for range 2 { // the second time is idempotent
		for _, p := range []netip.Prefix{v4, v6} {
			if err := h.AddAddr(name, p, netconf.NoDAD()); err != nil {
				t.Fatalf("AddAddr(%s): %v", p, err)
			}
		}
	}
	got, err := h.Addrs(name)
	if err != nil || !slices.Contains(got, v4) || !slices.Contains(got, v6) {
		t.Errorf("Addrs = %v, %v; want %s and %s", got, err, v4, v6)
	}
	if err := h.AddAddr(name, netip.MustParsePrefix("198.18.7.1/25")); !errors.Is(err, os.ErrExist) {
		t.Errorf("AddAddr with another prefix length: %v, want EEXIST", err)
	}

	r4 := netconf.Route{Dst: netip.MustParsePrefix("198.19.5.0/24"), Link: name}
	r6 := netconf.Route{Dst: netip.MustParsePrefix("fd5c:7a9:1::/48"), Link: name}
	for range 2 {
		for _, r := range []netconf.Route{r4, r6} {
			if err := h.AddRoute(r); err != nil {
				t.Fatalf("AddRoute(%s): %v", r, err)
			}
		}
	}
	if !inNetstat(t, "inet", "198.19.5") || !inNetstat(t, "inet6", "fd5c:7a9:1::") {
		t.Error("the routes are not in netstat -rn")
	}
	for range 2 {
		for _, r := range []netconf.Route{r4, r6} {
			if err := h.DelRoute(r); err != nil {
				t.Fatalf("DelRoute(%s): %v", r, err)
			}
		}
	}
	if inNetstat(t, "inet", "198.19.5") || inNetstat(t, "inet6", "fd5c:7a9:1::") {
		t.Error("the routes are still in netstat -rn after DelRoute")
	}
	if err := h.AddRoute(netconf.Route{Dst: r4.Dst, Link: name, Table: 100}); !errors.Is(err, netconf.ErrNotSupported) {
		t.Errorf("a route in table 100: %v, want ErrNotSupported", err)
	}

	for range 2 {
		for _, p := range []netip.Prefix{v4, v6} {
			if err := h.DelAddr(name, p); err != nil {
				t.Fatalf("DelAddr(%s): %v", p, err)
			}
		}
	}
	if got, _ := h.Addrs(name); slices.Contains(got, v4) || slices.Contains(got, v6) {
		t.Errorf("Addrs after DelAddr = %v", got)
	}

	if gw, link, err := h.DefaultGateway(false); err != nil {
		t.Logf("no IPv4 default route: %v", err)
	} else if link == "" {
		t.Errorf("DefaultGateway = %s, no link", gw)
	} else {
		t.Logf("IPv4 default route via %s dev %s", gw, link)
	}
	if err := h.AddRule(netconf.Rule{Table: 5}); !errors.Is(err, netconf.ErrNotSupported) {
		t.Errorf("AddRule: %v, want ErrNotSupported", err)
	}
	if _, err := h.LinkIndex("tapwire-nope0"); !errors.Is(err, netconf.ErrLinkNotFound) {
		t.Errorf("LinkIndex of a missing link: %v", err)
	}
}

func TestOpenNamespace(t *testing.T) {
	if _, err := netconf.Open("blue"); !errors.Is(err, netconf.ErrNotSupported) {
		t.Errorf("Open(blue) = %v, want ErrNotSupported", err)
	}
}

// ifconfigCreate clones an interface (ifconfig KIND create) and destroys it
// with DelLink when the test ends.
func ifconfigCreate(t *testing.T, h *netconf.Handle, kind string) string {
	out, err := exec.Command("ifconfig", kind, "create").CombinedOutput()
	if err != nil {
		t.Skipf("ifconfig %s create: %v: %s", kind, err, out)
	}
	name := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if err := h.DelLink(name); err != nil {
			t.Errorf("DelLink(%s): %v", name, err)
		}
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("%s is still there after DelLink", name)
		}
	})
	return name
}

// inNetstat reports whether netstat -rn lists a destination starting with
// dst.
func inNetstat(t *testing.T, family, dst string) bool {
	out, err := exec.Command("netstat", "-rn", "-f", family).Output()
	if err != nil {
		t.Fatalf("netstat: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], dst) {
			return true
		}
	}
	return false
}
