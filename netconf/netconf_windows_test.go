package netconf_test

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wintun"

	"github.com/tapwire/tapwire/netconf"
)

// TestWindowsLink configures a Wintun adapter the test creates (elevated,
// with wintun.dll next to the test binary or on the DLL path): MTU,
// addresses, routes, checked with net, Addrs and route print. It uses
// 198.18.0.0/15 (benchmarking), which nothing routes.
func TestWindowsLink(t *testing.T) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("needs an elevated process")
	}
	const name = "tapwire-nctest"
	ad, err := wintun.CreateAdapter(name, "tapwire", nil)
	if err != nil {
		t.Skipf("no Wintun adapter (is wintun.dll here?): %v", err)
	}
	defer ad.Close()
	sess, err := ad.StartSession(0x400000)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.End()

	h, err := netconf.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.SetUp(name); err != nil {
		t.Fatal(err)
	}
	if err := h.SetMTU(name, 1380); err != nil {
		t.Fatal(err)
	}
	if ifi, err := net.InterfaceByName(name); err != nil || ifi.MTU != 1380 {
		t.Errorf("MTU after SetMTU(1380): %v, %v", ifi, err)
	}
	v4, v6 := netip.MustParsePrefix("198.18.7.1/24"), netip.MustParsePrefix("fd5c:7a9::1/64")
	for range 2 {
		for _, p := range []netip.Prefix{v4, v6} {
			if err := h.AddAddr(name, p); err != nil {
				t.Fatalf("AddAddr(%s): %v", p, err)
			}
		}
	}
	if got, err := h.Addrs(name); err != nil || !slices.Contains(got, v4) || !slices.Contains(got, v6) {
		t.Errorf("Addrs = %v, %v; want %s and %s", got, err, v4, v6)
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
	if !inRoutePrint(t, "198.19.5.0") || !inRoutePrint(t, "fd5c:7a9:1::/48") {
		t.Error("the routes are not in route print")
	}
	for range 2 {
		for _, r := range []netconf.Route{r4, r6} {
			if err := h.DelRoute(r); err != nil {
				t.Fatalf("DelRoute(%s): %v", r, err)
			}
		}
	}
	if inRoutePrint(t, "198.19.5.0") || inRoutePrint(t, "fd5c:7a9:1::/48") {
		t.Error("the routes are still there after DelRoute")
	}
	for _, p := range []netip.Prefix{v4, v6, v4} {
		if err := h.DelAddr(name, p); err != nil {
			t.Fatalf("DelAddr(%s): %v", p, err)
		}
	}
	if gw, link, err := h.DefaultGateway(false); err != nil {
		t.Logf("no IPv4 default route: %v", err)
	} else {
		t.Logf("IPv4 default route via %s dev %s", gw, link)
	}
	if err := h.AddRule(netconf.Rule{Table: 5}); !errors.Is(err, netconf.ErrNotSupported) {
		t.Errorf("AddRule: %v, want ErrNotSupported", err)
	}
	if _, err := netconf.Open("blue"); !errors.Is(err, netconf.ErrNotSupported) {
		t.Errorf("Open(blue) = %v, want ErrNotSupported", err)
	}
}

// inRoutePrint reports whether route print lists dst.
func inRoutePrint(t *testing.T, dst string) bool {
	out, err := exec.Command("route", "print").Output()
	if err != nil {
		t.Fatalf("route print: %v", err)
	}
	return strings.Contains(string(out), dst)
}
