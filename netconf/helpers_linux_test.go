package netconf_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/netconf"
)

// ipLink is the part of `ip -j -d addr show` output the tests look at.
type ipLink struct {
	Ifindex  int      `json:"ifindex"`
	Ifname   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	Master   string   `json:"master"`
	Address  string   `json:"address"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
	AddrInfo []ipAddr `json:"addr_info"`
}

func (l ipLink) up() bool { return slices.Contains(l.Flags, "UP") }

type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Tentative bool   `json:"tentative"`
}

func (a ipAddr) prefix() string { return fmt.Sprintf("%s/%d", a.Local, a.Prefixlen) }

// ipRoute is the part of `ip -j route show table all` output the tests look at.
type ipRoute struct {
	Type     string `json:"type"`
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Table    string `json:"table"`
	Metric   int    `json:"metric"`
	Protocol string `json:"protocol"`
	Scope    string `json:"scope"`
}

func (r ipRoute) String() string {
	return fmt.Sprintf("%s %s via %q dev %q table %s metric %d proto %q scope %q",
		r.Type, r.Dst, r.Gateway, r.Dev, r.Table, r.Metric, r.Protocol, r.Scope)
}

// ipJSON runs `ip -j args...` in ns (nil: the test's own namespace) and
// decodes its output into v.
func ipJSON(t testing.TB, ns *nstest.NS, v any, args ...string) {
	t.Helper()
	args = append([]string{"-j"}, args...)
	var (
		out []byte
		err error
	)
	if ns == nil {
		out, err = exec.Command("ip", args...).CombinedOutput()
	} else {
		var s string
		s, err = ns.Output("ip", args...)
		out = []byte(s)
	}
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		out = []byte("[]")
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ip %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// links returns every link of ns with its addresses.
func links(t testing.TB, ns *nstest.NS) []ipLink {
	t.Helper()
	var ls []ipLink
	ipJSON(t, ns, &ls, "-d", "addr", "show")
	return ls
}

// linksNamed returns the links of ns called name (the tests want exactly one).
func linksNamed(t testing.TB, ns *nstest.NS, name string) []ipLink {
	t.Helper()
	var out []ipLink
	for _, l := range links(t, ns) {
		if l.Ifname == name {
			out = append(out, l)
		}
	}
	return out
}

// oneLink returns the only link of ns called name.
func oneLink(t testing.TB, ns *nstest.NS, name string) ipLink {
	t.Helper()
	ls := linksNamed(t, ns, name)
	if len(ls) != 1 {
		t.Fatalf("%d links named %s in %s, want 1: %+v", len(ls), name, ns.Name, ls)
	}
	return ls[0]
}

// routes returns every IPv4 and IPv6 route of ns in all tables, with the table
// filled in ("main" where ip leaves it out) and dst normalized to a prefix.
func routes(t testing.TB, ns *nstest.NS) []ipRoute {
	t.Helper()
	var all []ipRoute
	for _, fam := range []string{"-4", "-6"} {
		var rs []ipRoute
		ipJSON(t, ns, &rs, fam, "route", "show", "table", "all")
		for _, r := range rs {
			if r.Table == "" {
				r.Table = "main"
			}
			if r.Type == "" {
				r.Type = "unicast"
			}
			switch {
			case r.Dst == "default" && fam == "-4":
				r.Dst = "0.0.0.0/0"
			case r.Dst == "default":
				r.Dst = "::/0"
			case !strings.Contains(r.Dst, "/"):
				a := netip.MustParseAddr(r.Dst)
				r.Dst = netip.PrefixFrom(a, a.BitLen()).String()
			}
			all = append(all, r)
		}
	}
	return all
}

// addDummy makes a dummy link in ns. Kernels without the dummy driver get a
// veth pair instead, name plus peer name+"p", with the peer up so that name
// has carrier once it is up.
func addDummy(t testing.TB, ns *nstest.NS, name string) {
	t.Helper()
	if _, err := ns.Output("ip", "link", "add", name, "type", "dummy"); err == nil {
		return
	} else if !strings.Contains(err.Error(), "Unknown device type") {
		t.Fatal(err)
	}
	noDummyOnce.Do(func() { t.Log("kernel has no dummy links; using veth pairs instead") })
	ns.Run("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	ns.Run("ip", "link", "set", name+"p", "up")
}

var noDummyOnce sync.Once

// addVeth makes the veth pair a, b in ns.
func addVeth(t testing.TB, ns *nstest.NS, a, b string) {
	t.Helper()
	ns.Run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
}

// open returns a Handle on ns, closed when the test ends.
func open(t testing.TB, ns *nstest.NS) *netconf.Handle {
	t.Helper()
	h, err := netconf.Open(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// twice runs fn twice, failing the test if either call fails.
func twice(t testing.TB, what string, fn func() error) {
	t.Helper()
	for i := 1; i <= 2; i++ {
		if err := fn(); err != nil {
			t.Fatalf("%s (call %d): %v", what, i, err)
		}
	}
}

// rootState summarizes the test process's own namespace (the "root" one):
// links with their hardware address, MTU and master, addresses, and routes
// of all tables. Counters, operstate and lifetimes are left out.
func rootState(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, l := range links(t, nil) {
		out = append(out, fmt.Sprintf("link %d %s mac %s mtu %d master %q", l.Ifindex, l.Ifname, l.Address, l.MTU, l.Master))
		for _, a := range l.AddrInfo {
			out = append(out, fmt.Sprintf("addr %s %s", l.Ifname, a.prefix()))
		}
	}
	for _, r := range routes(t, nil) {
		out = append(out, "route "+r.String())
	}
	slices.Sort(out)
	return out
}

// guardRoot fails the test if the root namespace's links, addresses or
// routes differ after the test (including its other cleanups, which run
// first) from before. Call it before nstest.New.
func guardRoot(t testing.TB) {
	t.Helper()
	before := rootState(t)
	t.Cleanup(func() {
		after := rootState(t)
		if !slices.Equal(before, after) {
			t.Errorf("root namespace changed:\nbefore:\n  %s\nafter:\n  %s",
				strings.Join(before, "\n  "), strings.Join(after, "\n  "))
		}
	})
}

// setup prepares a test: root guard, a fresh namespace and a Handle on it.
func setup(t *testing.T) (*nstest.NS, *netconf.Handle) {
	t.Helper()
	nstest.RequireRoot(t)
	guardRoot(t)
	ns := nstest.New(t)
	return ns, open(t, ns)
}
