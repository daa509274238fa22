package wgquick

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/netconf"
)

// TestNewPlanOtherOS computes plans for macOS, FreeBSD and Windows hosts:
// routes in the main table, default routes split in halves, endpoint
// routes through the host's gateway, taken back on down.
func TestNewPlanOtherOS(t *testing.T) {
	t.Parallel()
	gw := Gateway{Via: netip.MustParseAddr("192.0.2.1"), Link: "en0"}
	host := Host{OS: "darwin", Gateway4: gw}
	cfg := parse(t, "Address = 10.0.0.2/24\nPostUp = echo %i",
		"AllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = 198.51.100.7:51820",
		"AllowedIPs = 10.9.0.0/16\nEndpoint = vpn.example.net:51820")
	p, err := NewPlan(cfg, "utun5", host)
	if err != nil {
		t.Fatal(err)
	}
	up := strs(p.Up)
	want := []string{
		"start the tun device utun5 (MTU automatic)",
		"ip address add 10.0.0.2/24 dev utun5",
		"ip link set utun5 up",
		"ip route add 0.0.0.0/1 dev utun5",
		"ip route add 128.0.0.0/1 dev utun5",
		"ip route add ::/1 dev utun5",
		"ip route add 8000::/1 dev utun5",
		"ip route add 10.9.0.0/16 dev utun5",
		"log: endpoint is a name: no route to it outside the tunnel, which may loop its packets through the tunnel peer=" + pubB + " endpoint=vpn.example.net:51820",
		"log: default route through the tunnel routes=split in halves",
		"ip route add 198.51.100.7/32 via 192.0.2.1 dev en0",
		"hook PostUp: echo utun5",
	}
	if !slices.Equal(up, want) {
		t.Errorf("up:\n%s\nwant:\n%s", strings.Join(up, "\n"), strings.Join(want, "\n"))
	}
	down := strs(p.Down)
	if wantDown := []string{"close the device utun5", "ip route del 198.51.100.7/32 via 192.0.2.1 dev en0"}; !slices.Equal(down, wantDown) {
		t.Errorf("down: %q, want %q", down, wantDown)
	}
	for _, s := range p.Up {
		if _, ok := s.(AddRule); ok {
			t.Errorf("a policy rule outside Linux: %s", s)
		}
	}

	// No gateway known: logged, no endpoint route.
	p, _ = NewPlan(cfg, "utun5", Host{OS: "freebsd"})
	if got := strings.Join(strs(p.Up), "\n"); !strings.Contains(got, "no default gateway") || strings.Contains(got, "198.51.100.7/32") {
		t.Errorf("without a gateway:\n%s", got)
	}
	// Table = off: no routes; Table = main: as auto.
	for _, c := range []struct{ table string }{{"off"}, {"main"}, {"254"}} {
		cfg := parse(t, "Table = "+c.table, "AllowedIPs = 0.0.0.0/0, 10.9.0.0/16\nEndpoint = 198.51.100.7:51820")
		p, err := NewPlan(cfg, "tun0", Host{OS: "freebsd", Gateway4: Gateway{Link: "vtnet0"}})
		if err != nil {
			t.Fatalf("Table = %s: %v", c.table, err)
		}
		n := 0
		for _, s := range p.Up {
			if _, ok := s.(AddRoute); ok {
				n++
			}
		}
		// main: two halves, 10.9/16, the endpoint; off: none.
		if want := map[string]int{"off": 0, "main": 4, "254": 4}[c.table]; n != want {
			t.Errorf("Table = %s: %d routes, want %d:\n%s", c.table, n, want, p)
		}
	}
}

// TestNewPlanOtherOSRefuses: what only Linux has is refused by key.
func TestNewPlanOtherOSRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		os, iface, key, msg string
	}{
		{"darwin", "Table = vpn", "Table", "Linux-only"},
		{"freebsd", "Table = 1234", "Table", "Linux-only"},
		{"windows", "Mode = tap\nBridge = br0", "Bridge", "Linux-only"},
		{"darwin", "DNS = 192.0.2.53", "DNS", "not supported on darwin yet"},
		{"windows", "DNS = 192.0.2.53", "DNS", "not supported on windows yet"},
	} {
		_, err := NewPlan(parse(t, c.iface, "AllowedIPs = 10.9.0.0/16"), "tun0", Host{OS: c.os, DNS: resolvconf})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("%s %q: %v, want a %s error saying %q", c.os, c.iface, err, c.key, c.msg)
		}
	}
	// FreeBSD has resolvconf.
	if _, err := NewPlan(parse(t, "DNS = 192.0.2.53", "AllowedIPs = 10.9.0.0/16"), "tun0", Host{OS: "freebsd", DNS: resolvconf}); err != nil {
		t.Errorf("DNS on FreeBSD with resolvconf: %v", err)
	}
}

// TestLeftoversRoutes: endpoint routes are journaled and taken back.
func TestLeftoversRoutes(t *testing.T) {
	t.Parallel()
	r := netconf.Route{Dst: netip.MustParsePrefix("198.51.100.7/32"), Via: netip.MustParseAddr("192.0.2.1"), Link: "en0"}
	l := Leftovers{Routes: []netconf.Route{r}}
	if l.Empty() || !slices.Equal(strs(l.Steps()), []string{"ip route del 198.51.100.7/32 via 192.0.2.1 dev en0"}) {
		t.Errorf("leftovers %+v: steps %q", l, strs(l.Steps()))
	}
	c := l.clone()
	c.Routes[0].Link = "x"
	if l.Routes[0].Link != "en0" {
		t.Error("clone shares its routes")
	}
}
