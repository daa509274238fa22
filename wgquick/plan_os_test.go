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
		{"darwin", "FwMark = 0x1234", "FwMark", "no mark on darwin"},
		{"windows", "FwMark = 51820", "FwMark", "no mark on windows"},
	} {
		_, err := NewPlan(parse(t, c.iface, "AllowedIPs = 10.9.0.0/16"), "tun0", Host{OS: c.os, DNS: resolvconf})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("%s %q: %v, want a %s error saying %q", c.os, c.iface, err, c.key, c.msg)
		}
	}
	// FreeBSD has marks (SO_USER_COOKIE) and resolvconf.
	if _, err := NewPlan(parse(t, "FwMark = 51820", "AllowedIPs = 10.9.0.0/16"), "tun0", Host{OS: "freebsd"}); err != nil {
		t.Errorf("FwMark on FreeBSD: %v", err)
	}
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

// TestDNSOtherOS: on macOS every network service gets the tunnel's DNS
// and down gives each back what it had; on Windows netsh sets the servers
// on the tunnel's interface, by family.
func TestDNSOtherOS(t *testing.T) {
	t.Parallel()
	cfg := parse(t, "DNS = 192.0.2.53, 2001:db8::53, 192.0.2.54, corp.example", "AllowedIPs = 10.9.0.0/16")
	mac := Host{OS: "darwin", DNS: DNSTool{Networksetup, "/usr/sbin/networksetup"}, DNSServices: []DNSService{
		{Name: "Wi-Fi", Servers: []string{"198.51.100.1"}},
		{Name: "Bob's Ethernet", Search: []string{"home.arpa"}},
	}}
	p, err := NewPlan(cfg, "utun5", mac)
	if err != nil {
		t.Fatal(err)
	}
	var set *SetDNS
	for _, s := range p.Up {
		if s, ok := s.(SetDNS); ok {
			set = &s
		}
	}
	if set == nil {
		t.Fatalf("no SetDNS in %q", strs(p.Up))
	}
	want := []string{
		"/usr/sbin/networksetup -setdnsservers Wi-Fi 192.0.2.53 2001:db8::53 192.0.2.54",
		"/usr/sbin/networksetup -setsearchdomains Wi-Fi corp.example",
		"/usr/sbin/networksetup -setdnsservers Bob's Ethernet 192.0.2.53 2001:db8::53 192.0.2.54",
		"/usr/sbin/networksetup -setsearchdomains Bob's Ethernet corp.example",
	}
	var got []string
	for _, c := range set.Cmds {
		got = append(got, c.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("macOS DNS:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	restore := "'/usr/sbin/networksetup' '-setdnsservers' 'Wi-Fi' '198.51.100.1'\n" +
		"'/usr/sbin/networksetup' '-setsearchdomains' 'Wi-Fi' 'Empty'\n" +
		"'/usr/sbin/networksetup' '-setdnsservers' 'Bob'\\''s Ethernet' 'Empty'\n" +
		"'/usr/sbin/networksetup' '-setsearchdomains' 'Bob'\\''s Ethernet' 'home.arpa'\n"
	if u := set.Unset; !slices.Equal(u.Args, []string{"/bin/sh", "-s"}) || u.Stdin != restore {
		t.Errorf("macOS DNS given back by %q with\n%s\nwant\n%s", u.Args, u.Stdin, restore)
	}

	win := Host{OS: "windows", DNS: DNSTool{Netsh, `C:\Windows\system32\netsh.exe`}}
	p, err = NewPlan(cfg, "wg0", win)
	if err != nil {
		t.Fatal(err)
	}
	up := strings.Join(strs(p.Up), "\n")
	for _, w := range []string{
		`netsh.exe interface ipv4 set dnsservers name=wg0 source=static address=192.0.2.53 register=none validate=no`,
		`netsh.exe interface ipv4 add dnsservers name=wg0 address=192.0.2.54 index=2 validate=no`,
		`netsh.exe interface ipv6 set dnsservers name=wg0 source=static address=2001:db8::53 register=none validate=no`,
		"log: DNS search domains are not set on Windows: only the servers are domains=[corp.example]",
	} {
		if !strings.Contains(up, w) {
			t.Errorf("Windows plan lacks %q:\n%s", w, up)
		}
	}
}

// TestParseNetworksetup reads what macOS's networksetup prints.
func TestParseNetworksetup(t *testing.T) {
	t.Parallel()
	out := "An asterisk (*) denotes that a network service is disabled.\nWi-Fi\n*Bluetooth PAN\nThunderbolt Bridge\n"
	if got := ParseNetworkServices(out); !slices.Equal(got, []string{"Wi-Fi", "Thunderbolt Bridge"}) {
		t.Errorf("services: %q", got)
	}
	if got := ParseNetworksetupList("There aren't any DNS Servers set on Wi-Fi.\n"); got != nil {
		t.Errorf("no servers: %q", got)
	}
	if got := ParseNetworksetupList("192.0.2.1\n2001:db8::1\n"); !slices.Equal(got, []string{"192.0.2.1", "2001:db8::1"}) {
		t.Errorf("servers: %q", got)
	}
}

// TestCmdLine checks the command lines of Windows' "cmd /c" commands (the
// hooks, and the netsh that gives DNS back): the script as written, its
// quotes left for cmd.exe and netsh, not escaped as \" by Go.
func TestCmdLine(t *testing.T) {
	t.Parallel()
	hook := `netsh interface ipv4 add route 0.0.0.0/0 "wg0" & echo "up"`
	if line, ok := cmdLine("cmd", []string{"/c", hook}); !ok || line != "cmd /c "+hook {
		t.Errorf("hook: %q, %v", line, ok)
	}
	cfg := &config.Config{Interface: config.Interface{DNS: []string{"192.0.2.53", "2001:db8::53"}}}
	p, err := NewPlan(cfg, "wg0", Host{OS: "windows", DNS: DNSTool{Netsh, `C:\Windows\system32\netsh.exe`}})
	if err != nil {
		t.Fatal(err)
	}
	var unset []string
	for _, s := range p.Down {
		if u, ok := s.(UnsetDNS); ok {
			unset = u.Cmd.Args
		}
	}
	want := `cmd /c C:\Windows\system32\netsh.exe interface ipv4 delete dnsservers name="wg0" address=all validate=no & ` +
		`C:\Windows\system32\netsh.exe interface ipv6 delete dnsservers name="wg0" address=all validate=no`
	if len(unset) == 0 {
		t.Fatalf("no UnsetDNS in %v", strs(p.Down))
	}
	if line, ok := cmdLine(unset[0], unset[1:]); !ok || line != want {
		t.Errorf("DNS given back by\n%q, want\n%q", line, want)
	}
	for _, args := range [][]string{{"bash", "-c", "true"}, {"cmd"}, {"cmd", "/k", "x"}} {
		if line, ok := cmdLine(args[0], args[1:]); ok {
			t.Errorf("cmdLine(%q) = %q, want none", args, line)
		}
	}
}
