package netconf_test

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/netconf"
)

func TestOpen(t *testing.T) {
	ns, _ := setup(t)
	addDummy(t, ns, "d0")
	want := oneLink(t, ns, "d0").Ifindex

	for _, ref := range []string{ns.Name, ns.Path()} {
		h, err := netconf.Open(ref)
		if err != nil {
			t.Fatalf("Open(%q): %v", ref, err)
		}
		got, err := h.LinkIndex("d0")
		h.Close()
		if err != nil || got != want {
			t.Errorf("Open(%q).LinkIndex(d0) = %d, %v; want %d", ref, got, err, want)
		}
	}

	// "" is the test's own namespace, where loopback is always index 1 and
	// d0 (made in ns) is absent.
	h, err := netconf.Open("")
	if err != nil {
		t.Fatal(err)
	}
	if idx, err := h.LinkIndex("lo"); err != nil || idx != 1 {
		t.Errorf(`Open("").LinkIndex(lo) = %d, %v; want 1`, idx, err)
	}
	if _, err := h.LinkIndex("d0"); !errors.Is(err, netconf.ErrLinkNotFound) {
		t.Errorf(`Open("").LinkIndex(d0) = %v; want ErrLinkNotFound`, err)
	}
	h.Close()
	h.Close()
	if _, err := h.LinkIndex("lo"); !errors.Is(err, netconf.ErrClosed) {
		t.Errorf("LinkIndex after Close = %v; want ErrClosed", err)
	}
	if err := h.SetUp("lo"); !errors.Is(err, netconf.ErrClosed) {
		t.Errorf("SetUp after Close = %v; want ErrClosed", err)
	}

	if h, err := netconf.Open("twt-no-such-namespace"); err == nil {
		h.Close()
		t.Error("Open of a missing namespace succeeded")
	} else {
		if !strings.Contains(err.Error(), "twt-no-such-namespace") {
			t.Errorf("error %q does not name the namespace", err)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %q does not match fs.ErrNotExist", err)
		}
	}
}

func TestLinkIndex(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	for _, name := range []string{"lo", "d0"} {
		got, err := h.LinkIndex(name)
		if err != nil {
			t.Fatal(err)
		}
		if want := oneLink(t, ns, name).Ifindex; got != want {
			t.Errorf("LinkIndex(%s) = %d, want %d", name, got, want)
		}
	}
}

func TestLinkNotFound(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	ns.Run("ip", "link", "add", "br0", "type", "bridge")
	const missing = "nosuch0"
	p4 := netip.MustParsePrefix("192.0.2.10/24")
	calls := map[string]func() error{
		"SetUp":           func() error { return h.SetUp(missing) },
		"SetDown":         func() error { return h.SetDown(missing) },
		"SetMTU":          func() error { return h.SetMTU(missing, 1400) },
		"SetHardwareAddr": func() error { return h.SetHardwareAddr(missing, net.HardwareAddr{2, 0, 0, 0, 0, 1}) },
		"AddAddr":         func() error { return h.AddAddr(missing, p4) },
		"DelAddr":         func() error { return h.DelAddr(missing, p4) },
		"Addrs":           func() error { _, err := h.Addrs(missing); return err },
		"AddRoute": func() error {
			return h.AddRoute(netconf.Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Link: missing})
		},
		"DelRoute": func() error {
			return h.DelRoute(netconf.Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Link: missing})
		},
		"AttachLink":   func() error { return h.AttachToBridge(missing, "br0") },
		"AttachBridge": func() error { return h.AttachToBridge("d0", missing) },
		"DetachFrom":   func() error { return h.DetachFromBridge(missing) },
		"LinkIndex":    func() error { _, err := h.LinkIndex(missing); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, netconf.ErrLinkNotFound) {
			t.Errorf("%s: err = %v; want ErrLinkNotFound", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, missing) || !strings.Contains(msg, ns.Name) {
			t.Errorf("%s: error %q does not name the link and the namespace", name, msg)
		}
	}
	if err := h.DelLink(missing); err != nil {
		t.Errorf("DelLink of a missing link: %v", err)
	}
}

func TestUpDown(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	if oneLink(t, ns, "d0").up() {
		t.Fatal("new link is already up")
	}
	twice(t, "SetUp", func() error { return h.SetUp("d0") })
	if !oneLink(t, ns, "d0").up() {
		t.Error("d0 not up after SetUp")
	}
	twice(t, "SetDown", func() error { return h.SetDown("d0") })
	if oneLink(t, ns, "d0").up() {
		t.Error("d0 still up after SetDown")
	}
}

func TestMTU(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	for _, mtu := range []int{1400, 9000, 1280} {
		twice(t, "SetMTU", func() error { return h.SetMTU("d0", mtu) })
		if got := oneLink(t, ns, "d0").MTU; got != mtu {
			t.Errorf("MTU = %d after SetMTU(%d)", got, mtu)
		}
	}
	if err := h.SetMTU("d0", 0); err == nil {
		t.Error("SetMTU(0) succeeded")
	}
	addVeth(t, ns, "va", "vb")
	if err := h.SetMTU("va", 1<<20); err == nil {
		t.Error("SetMTU(1 MiB) on a veth succeeded")
	} else if !strings.Contains(err.Error(), "va") {
		t.Errorf("error %q does not name the link", err)
	}
}

func TestHardwareAddr(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	addVeth(t, ns, "va", "vb")
	ns.Run("ip", "link", "set", "va", "up")
	for i, name := range []string{"d0", "va"} {
		mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, byte(i + 1)}
		twice(t, "SetHardwareAddr "+name, func() error { return h.SetHardwareAddr(name, mac) })
		if got := oneLink(t, ns, name).Address; got != mac.String() {
			t.Errorf("%s: address %s, want %s", name, got, mac)
		}
	}
	if err := h.SetHardwareAddr("va", nil); err == nil {
		t.Error("SetHardwareAddr(nil) succeeded")
	}
}

// addrsOn returns the addresses of link in ns as ip shows them, without
// IPv6 link-local ones.
func addrsOn(t *testing.T, ns *nstest.NS, link string) []string {
	t.Helper()
	var out []string
	for _, a := range oneLink(t, ns, link).AddrInfo {
		if a.Family == "inet6" && strings.HasPrefix(a.Local, "fe80:") {
			continue
		}
		out = append(out, a.prefix())
	}
	slices.Sort(out)
	return out
}

func TestAddrs(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	twice(t, "SetUp", func() error { return h.SetUp("d0") })
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.10/24"),
		netip.MustParsePrefix("198.51.100.10/24"),
		netip.MustParsePrefix("2001:db8::10/64"),
	}
	for _, p := range want {
		twice(t, "AddAddr "+p.String(), func() error { return h.AddAddr("d0", p, netconf.NoDAD()) })
	}
	wantStr := []string{"192.0.2.10/24", "198.51.100.10/24", "2001:db8::10/64"}
	if got := addrsOn(t, ns, "d0"); !slices.Equal(got, wantStr) {
		t.Errorf("ip addr shows %v, want each of %v once", got, wantStr)
	}
	got, err := h.Addrs("d0")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(got, want) {
		t.Errorf("Addrs = %v, want %v", got, want)
	}

	// The same IPv6 address with another prefix length is a conflict, not
	// success, and changes nothing.
	err = h.AddAddr("d0", netip.MustParsePrefix("2001:db8::10/80"))
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("AddAddr of 2001:db8::10/80 over /64 = %v; want an error matching fs.ErrExist", err)
	} else if !strings.Contains(err.Error(), "2001:db8::10/64") {
		t.Errorf("error %q does not name the existing address", err)
	}
	if got := addrsOn(t, ns, "d0"); !slices.Equal(got, wantStr) {
		t.Errorf("after conflict ip addr shows %v, want %v", got, wantStr)
	}

	for _, p := range want {
		twice(t, "DelAddr "+p.String(), func() error { return h.DelAddr("d0", p) })
	}
	if got := addrsOn(t, ns, "d0"); len(got) != 0 {
		t.Errorf("after DelAddr ip addr shows %v", got)
	}
	if got, err := h.Addrs("d0"); err != nil || len(got) != 0 {
		t.Errorf("Addrs after DelAddr = %v, %v; want none (link-local left out)", got, err)
	}
	if err := h.DelAddr("d0", netip.MustParsePrefix("203.0.113.1/24")); err != nil {
		t.Errorf("DelAddr of an address never added: %v", err)
	}

	for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("::ffff:192.0.2.1/120")} {
		if err := h.AddAddr("d0", bad); err == nil {
			t.Errorf("AddAddr(%v) succeeded", bad)
		}
	}
}

func TestNoDAD(t *testing.T) {
	ns, h := setup(t)
	// DAD runs only on links that do ARP/ND and have carrier: a veth pair
	// with both ends up.
	addVeth(t, ns, "va", "vb")
	twice(t, "SetUp va", func() error { return h.SetUp("va") })
	twice(t, "SetUp vb", func() error { return h.SetUp("vb") })

	tentative := func(p string) bool {
		t.Helper()
		for _, a := range oneLink(t, ns, "va").AddrInfo {
			if a.prefix() == p {
				return a.Tentative
			}
		}
		t.Fatalf("%s not on va", p)
		return false
	}

	// Control: without NoDAD the address starts tentative (DAD takes a
	// second), so the check below means something.
	withDAD := netip.MustParsePrefix("2001:db8::1/64")
	twice(t, "AddAddr with DAD", func() error { return h.AddAddr("va", withDAD) })
	if !tentative(withDAD.String()) {
		t.Log("kernel did not mark an address tentative; NoDAD check is weaker")
	}

	noDAD := netip.MustParsePrefix("2001:db8:0:1::1/64")
	twice(t, "AddAddr NoDAD", func() error { return h.AddAddr("va", noDAD, netconf.NoDAD()) })
	if tentative(noDAD.String()) {
		t.Errorf("%s is tentative despite NoDAD", noDAD)
	}

	// NoDAD is ignored for IPv4.
	v4 := netip.MustParsePrefix("192.0.2.1/24")
	twice(t, "AddAddr v4 NoDAD", func() error { return h.AddAddr("va", v4, netconf.NoDAD()) })
	if got := addrsOn(t, ns, "va"); !slices.Equal(got, []string{"192.0.2.1/24", "2001:db8:0:1::1/64", "2001:db8::1/64"}) {
		t.Errorf("ip addr shows %v", got)
	}
}

// matching returns the routes of ns in the given table (as ip names it) to
// dst.
func matching(t *testing.T, ns *nstest.NS, table, dst string) []ipRoute {
	t.Helper()
	var out []ipRoute
	for _, r := range routes(t, ns) {
		if r.Table == table && r.Dst == dst && r.Type == "unicast" {
			out = append(out, r)
		}
	}
	return out
}

func TestRoutes(t *testing.T) {
	ns, h := setup(t)
	addDummy(t, ns, "d0")
	addDummy(t, ns, "d1")
	for _, l := range []string{"d0", "d1"} {
		twice(t, "SetUp "+l, func() error { return h.SetUp(l) })
	}
	twice(t, "AddAddr v4", func() error { return h.AddAddr("d0", netip.MustParsePrefix("192.0.2.10/24")) })
	twice(t, "AddAddr v6", func() error { return h.AddAddr("d0", netip.MustParsePrefix("2001:db8::10/64"), netconf.NoDAD()) })

	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	tests := []struct {
		name  string
		r     netconf.Route
		table string
		gw    string
		dev   string
		scope string // IPv4 only
		metr  int
	}{
		{"v4 link main", netconf.Route{Dst: pfx("198.51.100.0/24"), Link: "d0"}, "main", "", "d0", "link", 0},
		{"v4 gw main", netconf.Route{Dst: pfx("203.0.113.0/24"), Via: addr("192.0.2.254")}, "main", "192.0.2.254", "d0", "global", 0},
		{"v4 gw+link metric", netconf.Route{Dst: pfx("203.0.113.128/25"), Via: addr("192.0.2.254"), Link: "d0", Metric: 50}, "main", "192.0.2.254", "d0", "global", 50},
		{"v4 default main", netconf.Route{Dst: pfx("0.0.0.0/0"), Via: addr("192.0.2.1")}, "main", "192.0.2.1", "d0", "global", 0},
		{"v4 link table", netconf.Route{Dst: pfx("198.51.100.0/24"), Link: "d1", Table: 100}, "100", "", "d1", "link", 0},
		{"v4 default table", netconf.Route{Dst: pfx("0.0.0.0/0"), Via: addr("192.0.2.254"), Link: "d0", Table: 100, Metric: 7}, "100", "192.0.2.254", "d0", "global", 7},
		{"v4 host table 1000", netconf.Route{Dst: pfx("198.51.100.7/32"), Link: "d1", Table: 1000}, "1000", "", "d1", "link", 0},
		{"v6 link main", netconf.Route{Dst: pfx("2001:db8:1::/64"), Link: "d1"}, "main", "", "d1", "", 1024},
		{"v6 gw main", netconf.Route{Dst: pfx("2001:db8:2::/64"), Via: addr("2001:db8::fe"), Link: "d0"}, "main", "2001:db8::fe", "d0", "", 1024},
		{"v6 gw only metric", netconf.Route{Dst: pfx("2001:db8:3::/48"), Via: addr("2001:db8::fe"), Metric: 10}, "main", "2001:db8::fe", "d0", "", 10},
		{"v6 default main", netconf.Route{Dst: pfx("::/0"), Via: addr("2001:db8::1")}, "main", "2001:db8::1", "d0", "", 1024},
		{"v6 link table", netconf.Route{Dst: pfx("2001:db8:1::/64"), Link: "d0", Table: 100}, "100", "", "d0", "", 1024},
		{"v6 default table", netconf.Route{Dst: pfx("::/0"), Via: addr("2001:db8::fe"), Table: 100, Metric: 5}, "100", "2001:db8::fe", "d0", "", 5},
	}
	check := func(t *testing.T, r netconf.Route, table, gw, dev, scope string, metric int) {
		t.Helper()
		got := matching(t, ns, table, r.Dst.String())
		if len(got) != 1 {
			t.Fatalf("%d routes to %s in table %s, want 1: %v", len(got), r.Dst, table, got)
		}
		g := got[0]
		gotScope := g.Scope
		if gotScope == "" {
			gotScope = "global" // ip -j leaves the universe scope out
		}
		if g.Gateway != gw || g.Dev != dev || g.Metric != metric || (scope != "" && gotScope != scope) {
			t.Errorf("route %v; want via %q dev %s metric %d scope %q", g, gw, dev, metric, scope)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matching(t, ns, tt.table, tt.r.Dst.String()); len(got) != 0 {
				t.Fatalf("route already there: %v", got)
			}
			twice(t, "AddRoute "+tt.r.String(), func() error { return h.AddRoute(tt.r) })
			check(t, tt.r, tt.table, tt.gw, tt.dev, tt.scope, tt.metr)
		})
	}

	// A different route with the same destination, table and metric is a
	// conflict and is left in place.
	conflict := netconf.Route{Dst: pfx("198.51.100.0/24"), Via: addr("192.0.2.254")}
	if err := h.AddRoute(conflict); !errors.Is(err, fs.ErrExist) {
		t.Errorf("AddRoute(%v) over a link route = %v; want an error matching fs.ErrExist", conflict, err)
	} else if !strings.Contains(err.Error(), "dev d0") {
		t.Errorf("error %q does not describe the existing route", err)
	}
	check(t, tests[0].r, "main", "", "d0", "link", 0)
	conflict6 := netconf.Route{Dst: pfx("2001:db8:2::/64"), Via: addr("2001:db8::fd"), Link: "d0"}
	if err := h.AddRoute(conflict6); !errors.Is(err, fs.ErrExist) {
		t.Errorf("AddRoute(%v) = %v; want an error matching fs.ErrExist", conflict6, err)
	}
	// The kernel's own connected route counts as present.
	if err := h.AddRoute(netconf.Route{Dst: pfx("192.0.2.0/24"), Link: "d0"}); err != nil {
		t.Errorf("AddRoute of the connected route: %v", err)
	}
	// The same destination with another metric is another route.
	other := netconf.Route{Dst: pfx("198.51.100.0/24"), Via: addr("192.0.2.254"), Metric: 200}
	twice(t, "AddRoute "+other.String(), func() error { return h.AddRoute(other) })
	if got := matching(t, ns, "main", "198.51.100.0/24"); len(got) != 2 {
		t.Errorf("routes to 198.51.100.0/24: %v, want 2", got)
	}
	twice(t, "DelRoute "+other.String(), func() error { return h.DelRoute(other) })

	for _, tt := range tests {
		twice(t, "DelRoute "+tt.r.String(), func() error { return h.DelRoute(tt.r) })
		if got := matching(t, ns, tt.table, tt.r.Dst.String()); len(got) != 0 {
			t.Errorf("after DelRoute(%v): %v", tt.r, got)
		}
	}
	// Connected routes survive.
	if got := matching(t, ns, "main", "192.0.2.0/24"); len(got) != 1 {
		t.Errorf("connected route: %v", got)
	}
	if err := h.DelRoute(netconf.Route{Dst: pfx("203.0.113.0/24"), Via: addr("192.0.2.77"), Table: 200}); err != nil {
		t.Errorf("DelRoute of a route never added: %v", err)
	}

	for _, bad := range []netconf.Route{
		{Dst: pfx("198.51.100.1/24"), Link: "d0"},                // host bits
		{Dst: pfx("198.51.100.0/24")},                            // no nexthop
		{Dst: pfx("198.51.100.0/24"), Via: addr("2001:db8::fe")}, // mixed families
		{},
	} {
		if err := h.AddRoute(bad); err == nil {
			t.Errorf("AddRoute(%+v) succeeded", bad)
		}
	}
}

func TestBridge(t *testing.T) {
	ns, h := setup(t)
	twice(t, "AddBridge", func() error { return h.AddBridge("br0") })
	br := oneLink(t, ns, "br0")
	if br.LinkInfo.Kind != "bridge" || !br.up() {
		t.Errorf("br0: kind %q, flags %v; want an up bridge", br.LinkInfo.Kind, br.Flags)
	}
	// An existing bridge that is down is set up again.
	ns.Run("ip", "link", "set", "br0", "down")
	twice(t, "AddBridge again", func() error { return h.AddBridge("br0") })
	if !oneLink(t, ns, "br0").up() {
		t.Error("AddBridge left an existing bridge down")
	}

	addVeth(t, ns, "va", "vb")
	twice(t, "AttachToBridge", func() error { return h.AttachToBridge("va", "br0") })
	if m := oneLink(t, ns, "va").Master; m != "br0" {
		t.Errorf("va master = %q, want br0", m)
	}
	if m := oneLink(t, ns, "vb").Master; m != "" {
		t.Errorf("vb master = %q, want none", m)
	}

	// Moving to another bridge.
	twice(t, "AddBridge br1", func() error { return h.AddBridge("br1") })
	twice(t, "AttachToBridge br1", func() error { return h.AttachToBridge("va", "br1") })
	if m := oneLink(t, ns, "va").Master; m != "br1" {
		t.Errorf("va master = %q, want br1", m)
	}

	twice(t, "DetachFromBridge", func() error { return h.DetachFromBridge("va") })
	if m := oneLink(t, ns, "va").Master; m != "" {
		t.Errorf("va master = %q after detach", m)
	}

	// Wrong kinds.
	if err := h.AddBridge("va"); !errors.Is(err, netconf.ErrNotBridge) {
		t.Errorf("AddBridge over a veth = %v; want ErrNotBridge", err)
	} else if !strings.Contains(err.Error(), "veth") {
		t.Errorf("error %q does not name the existing kind", err)
	}
	if err := h.AttachToBridge("vb", "va"); !errors.Is(err, netconf.ErrNotBridge) {
		t.Errorf("AttachToBridge to a veth = %v; want ErrNotBridge", err)
	}
	if m := oneLink(t, ns, "vb").Master; m != "" {
		t.Errorf("vb master = %q", m)
	}

	twice(t, "DelLink br0", func() error { return h.DelLink("br0") })
	twice(t, "DelLink br1", func() error { return h.DelLink("br1") })
	twice(t, "DelLink va", func() error { return h.DelLink("va") })
	for _, name := range []string{"br0", "br1", "va", "vb"} {
		if ls := linksNamed(t, ns, name); len(ls) != 0 {
			t.Errorf("%s still there: %+v", name, ls)
		}
	}
}

// threadNamespaces returns the network namespace of every thread of this
// process, as /proc shows them (net:[inode]).
func threadNamespaces(t *testing.T) map[string]bool {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range tasks {
		if l, err := os.Readlink(p); err == nil { // threads may exit meanwhile
			out[l] = true
		}
	}
	return out
}

// TestStaysInOwnNamespace configures a namespace through a Handle while the
// test goroutine, locked to its thread, stays in the root namespace, and
// checks that nothing leaks out: not the thread, not any other thread of the
// process, not a link, address or route (guardRoot checks the latter).
func TestStaysInOwnNamespace(t *testing.T) {
	nstest.RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	threadsBefore := threadNamespaces(t)

	guardRoot(t)
	ns := nstest.New(t)
	h, err := netconf.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	names := []string{"twd0", "twbr0", "twva", "twvb"}
	addDummy(t, ns, "twd0")
	addVeth(t, ns, "twva", "twvb")
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x42}
	pfx := netip.MustParsePrefix
	steps := []struct {
		what string
		fn   func() error
	}{
		{"SetMTU", func() error { return h.SetMTU("twd0", 1400) }},
		{"SetHardwareAddr", func() error { return h.SetHardwareAddr("twd0", mac) }},
		{"SetUp", func() error { return h.SetUp("twd0") }},
		{"AddAddr v4", func() error { return h.AddAddr("twd0", pfx("198.51.100.77/24")) }},
		{"AddAddr v6", func() error { return h.AddAddr("twd0", pfx("2001:db8::77/64"), netconf.NoDAD()) }},
		{"AddRoute", func() error {
			return h.AddRoute(netconf.Route{Dst: pfx("0.0.0.0/0"), Via: netip.MustParseAddr("198.51.100.1")})
		}},
		{"AddRoute v6", func() error {
			return h.AddRoute(netconf.Route{Dst: pfx("::/0"), Via: netip.MustParseAddr("2001:db8::1"), Table: 100})
		}},
		{"AddBridge", func() error { return h.AddBridge("twbr0") }},
		{"AttachToBridge", func() error { return h.AttachToBridge("twva", "twbr0") }},
		{"SetUp veth", func() error { return h.SetUp("twva") }},
	}
	for _, s := range steps {
		twice(t, s.what, s.fn)
		if now, err := netns.Get(); err != nil {
			t.Fatal(err)
		} else {
			same := now.Equal(self)
			now.Close()
			if !same {
				t.Fatalf("after %s the test thread is in another namespace", s.what)
			}
		}
	}

	// The work is in ns ...
	d0 := oneLink(t, ns, "twd0")
	if d0.MTU != 1400 || d0.Address != mac.String() || !d0.up() {
		t.Errorf("twd0 in %s: %+v", ns.Name, d0)
	}
	if m := oneLink(t, ns, "twva").Master; m != "twbr0" {
		t.Errorf("twva master %q", m)
	}
	if got := matching(t, ns, "main", "0.0.0.0/0"); len(got) != 1 || got[0].Gateway != "198.51.100.1" {
		t.Errorf("default route in %s: %v", ns.Name, got)
	}
	// ... and none of it in the root namespace.
	for _, l := range links(t, nil) {
		if slices.Contains(names, l.Ifname) || strings.HasPrefix(l.Ifname, "twd0") {
			t.Errorf("link %s appeared in the root namespace", l.Ifname)
		}
		for _, a := range l.AddrInfo {
			if a.Local == "198.51.100.77" || a.Local == "2001:db8::77" {
				t.Errorf("address %s appeared on %s in the root namespace", a.prefix(), l.Ifname)
			}
		}
	}
	for _, r := range routes(t, nil) {
		if r.Gateway == "198.51.100.1" || r.Gateway == "2001:db8::1" || r.Table == "100" {
			t.Errorf("route %v appeared in the root namespace", r)
		}
	}

	if now, err := netns.Get(); err != nil {
		t.Fatal(err)
	} else {
		defer now.Close()
		if !now.Equal(self) {
			t.Error("test thread left the root namespace")
		}
	}
	// No thread of the process was left in ns (or anywhere new).
	for n := range threadNamespaces(t) {
		if !threadsBefore[n] {
			t.Errorf("a thread is in namespace %s, not one the process started in (%v)", n, threadsBefore)
		}
	}
}

func TestAddVethAcrossNamespaces(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	h, err := netconf.Open(a.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.AddVeth("twx0", "twx1", b.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Output("ip", "link", "show", "twx0"); err != nil {
		t.Error(err)
	}
	if _, err := b.Output("ip", "link", "show", "twx1"); err != nil {
		t.Error(err)
	}
	if err := h.AddVeth("twx0", "twx2", ""); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second AddVeth: %v, want EEXIST", err)
	}
}

func TestRulesIdempotent(t *testing.T) {
	ns := nstest.New(t)
	h, err := netconf.Open(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rules := []netconf.Rule{
		{Table: 51820, Mark: 51820, Invert: true, SuppressPrefixlen: -1},
		{Table: 254, SuppressPrefixlen: 0},
		{V6: true, Table: 51820, Mark: 51820, Invert: true, SuppressPrefixlen: -1},
	}
	for i := 0; i < 2; i++ {
		for _, r := range rules {
			if err := h.AddRule(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := ns.Run("ip", "rule", "show")
	if strings.Count(out, "not from all fwmark 0xca6c lookup 51820") != 1 || strings.Count(out, "lookup main suppress_prefixlength 0") != 1 {
		t.Errorf("ip rule show after adding each rule twice:\n%s", out)
	}
	if out6 := ns.Run("ip", "-6", "rule", "show"); strings.Count(out6, "fwmark 0xca6c lookup 51820") != 1 {
		t.Errorf("ip -6 rule show:\n%s", out6)
	}
	for i := 0; i < 2; i++ {
		for _, r := range rules {
			if err := h.DelRule(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out := ns.Run("ip", "rule", "show"); strings.Contains(out, "51820") || strings.Contains(out, "suppress") {
		t.Errorf("rules left after deleting:\n%s", out)
	}
	if empty, err := h.TableEmpty(51820, false); err != nil || !empty {
		t.Errorf("TableEmpty = %v, %v", empty, err)
	}
}
