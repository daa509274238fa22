package wgquick

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/config"
)

const (
	priv = "UEXQ6j2NmxJOIZNHrSzhSpvXYjXf+f6A+zHLPDfhClE="
	pubA = "XPuXB5OiiadCafPmALSSgru+uLZXg49Vz+RX+Zy5C0o="
	pubB = "V91HnQtcASIratR1nmIaVSAVBxtSsUZnByrGWwpY/HM="
)

// parse parses a wg0.conf whose [Interface] has iface's lines, then each
// peer's [Peer] lines (pubA's, then pubB's). Table names: vpn is 100, main 254.
func parse(t *testing.T, iface string, peers ...string) *config.Config {
	t.Helper()
	text := "[Interface]\nPrivateKey = " + priv + "\n" + iface + "\n"
	for i, p := range peers {
		text += "[Peer]\nPublicKey = " + []string{pubA, pubB}[i] + "\n" + p + "\n"
	}
	names := func(name string) (uint32, bool, error) {
		switch name {
		case "vpn":
			return 100, true, nil
		case "main":
			return 254, true, nil
		}
		return 0, false, nil
	}
	cfg, err := config.Options{TableNames: names}.Parse("/etc/wireguard/wg0.conf", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func strs(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out
}

var resolvconf = DNSTool{Kind: Resolvconf, Path: "/sbin/resolvconf"}

// TestNewPlan computes plans for files and hosts, and checks every step of
// up and down, in order.
func TestNewPlan(t *testing.T) {
	t.Parallel()
	const (
		start = "start the tun device wg0 (MTU automatic)"
		setUp = "ip link set wg0 up"
		close = "close the device wg0"
	)
	defaultRoute4 := []string{
		"ip route add 0.0.0.0/0 dev wg0 table 51820",
		"ip rule add not fwmark 0xca6c table 51820",
		"ip rule add table 254 suppress_prefixlength 0",
		"sysctl -w net.ipv4.conf.all.src_valid_mark=1",
	}
	for _, c := range []struct {
		name   string
		iface  string
		peers  []string
		host   Host
		up     []string
		down   []string
		fwmark uint32 // Plan.FwMark
		link   string // Plan.AddrLink; "" for wg0
	}{
		{
			name:  "tun, addresses, routes in main",
			iface: "Address = 10.0.0.1/24, fd00::1/64\nMTU = 1420",
			peers: []string{"AllowedIPs = 10.0.0.2/32, 192.168.1.0/24", "AllowedIPs = 10.0.0.3/32, fd00::3/128"},
			up: []string{"start the tun device wg0 (MTU 1420)", "ip address add 10.0.0.1/24 dev wg0", "ip address add fd00::1/64 dev wg0", setUp,
				"ip route add 10.0.0.2/32 dev wg0", "ip route add 192.168.1.0/24 dev wg0", "ip route add 10.0.0.3/32 dev wg0", "ip route add fd00::3/128 dev wg0"},
			down: []string{close},
		},
		{
			name: "no peers, no addresses",
			up:   []string{start, setUp},
			down: []string{close},
		},
		{
			name:  "a prefix two peers allow is routed once",
			peers: []string{"AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 10.1.0.0/24"},
			up:    []string{start, setUp, "ip route add 10.0.0.0/24 dev wg0", "ip route add 10.1.0.0/24 dev wg0"},
			down:  []string{close},
		},
		{
			name:  "Table = off: no routes, no rules, even for a default route",
			iface: "Table = off",
			peers: []string{"AllowedIPs = 10.0.0.0/24, 0.0.0.0/0, ::/0"},
			up:    []string{start, setUp},
			down:  []string{close},
		},
		{
			name:  "Table = 1234: every route there, the default one too, no rules",
			iface: "Table = 1234",
			peers: []string{"AllowedIPs = 10.0.0.0/24, 0.0.0.0/0, ::/0"},
			up:    []string{start, setUp, "ip route add 10.0.0.0/24 dev wg0 table 1234", "ip route add 0.0.0.0/0 dev wg0 table 1234", "ip route add ::/0 dev wg0 table 1234"},
			down:  []string{close},
		},
		{
			name:  "Table = vpn: the name's table",
			iface: "Table = vpn",
			peers: []string{"AllowedIPs = 10.0.0.0/24"},
			up:    []string{start, setUp, "ip route add 10.0.0.0/24 dev wg0 table 100"},
			down:  []string{close},
		},
		{
			name:  "Table = main: a default route goes in main",
			iface: "Table = main",
			peers: []string{"AllowedIPs = 0.0.0.0/0"},
			up:    []string{start, setUp, "ip route add 0.0.0.0/0 dev wg0 table 254"},
			down:  []string{close},
		},
		{
			name:  "Table = 0 is the main table",
			iface: "Table = 0",
			peers: []string{"AllowedIPs = 10.0.0.0/24"},
			up:    []string{start, setUp, "ip route add 10.0.0.0/24 dev wg0"},
			down:  []string{close},
		},
		{
			name:   "IPv4 default route: fwmark 51820 chosen",
			peers:  []string{"AllowedIPs = 10.0.0.0/24, 0.0.0.0/0"},
			up:     append([]string{start, setUp, "ip route add 10.0.0.0/24 dev wg0", "wg set wg0 fwmark 51820"}, append(defaultRoute4, "log: default route through the tunnel table=51820 fwmark=51820")...),
			down:   []string{close, "ip rule del not fwmark 0xca6c table 51820", "ip rule del table 254 suppress_prefixlength 0"},
			fwmark: 51820,
		},
		{
			name:   "Table = auto written is the same",
			iface:  "Table = auto",
			peers:  []string{"AllowedIPs = 0.0.0.0/0"},
			up:     append(append([]string{start, setUp, "wg set wg0 fwmark 51820"}, defaultRoute4...), "log: default route through the tunnel table=51820 fwmark=51820"),
			down:   []string{close, "ip rule del not fwmark 0xca6c table 51820", "ip rule del table 254 suppress_prefixlength 0"},
			fwmark: 51820,
		},
		{
			name:  "IPv6 default route: no sysctl",
			peers: []string{"AllowedIPs = ::/0"},
			up: []string{start, setUp, "wg set wg0 fwmark 51820", "ip route add ::/0 dev wg0 table 51820",
				"ip -6 rule add not fwmark 0xca6c table 51820", "ip -6 rule add table 254 suppress_prefixlength 0",
				"log: default route through the tunnel table=51820 fwmark=51820"},
			down:   []string{close, "ip -6 rule del not fwmark 0xca6c table 51820", "ip -6 rule del table 254 suppress_prefixlength 0"},
			fwmark: 51820,
		},
		{
			name:  "both default routes, from two peers; tables 51820 and 51821 busy",
			peers: []string{"AllowedIPs = 0.0.0.0/0", "AllowedIPs = ::/0"},
			host:  Host{BusyTables: []uint32{51820, 51821, 51823}},
			up: []string{start, setUp, "wg set wg0 fwmark 51822",
				"ip route add 0.0.0.0/0 dev wg0 table 51822", "ip rule add not fwmark 0xca6e table 51822", "ip rule add table 254 suppress_prefixlength 0",
				"sysctl -w net.ipv4.conf.all.src_valid_mark=1",
				"ip route add ::/0 dev wg0 table 51822", "ip -6 rule add not fwmark 0xca6e table 51822", "ip -6 rule add table 254 suppress_prefixlength 0",
				"log: default route through the tunnel table=51822 fwmark=51822"},
			down: []string{close, "ip rule del not fwmark 0xca6e table 51822", "ip rule del table 254 suppress_prefixlength 0",
				"ip -6 rule del not fwmark 0xca6e table 51822", "ip -6 rule del table 254 suppress_prefixlength 0"},
			fwmark: 51822,
		},
		{
			name:  "FwMark given: its table, no mark chosen, busy tables do not matter",
			iface: "FwMark = 0x1234",
			peers: []string{"AllowedIPs = 0.0.0.0/0"},
			host:  Host{BusyTables: []uint32{0x1234}},
			up: []string{start, setUp, "ip route add 0.0.0.0/0 dev wg0 table 4660", "ip rule add not fwmark 0x1234 table 4660",
				"ip rule add table 254 suppress_prefixlength 0", "sysctl -w net.ipv4.conf.all.src_valid_mark=1",
				"log: default route through the tunnel table=4660 fwmark=4660"},
			down: []string{close, "ip rule del not fwmark 0x1234 table 4660", "ip rule del table 254 suppress_prefixlength 0"},
		},
		{
			name:  "FwMark without a default route: nothing of it",
			iface: "FwMark = 7",
			peers: []string{"AllowedIPs = 10.0.0.0/8"},
			up:    []string{start, setUp, "ip route add 10.0.0.0/8 dev wg0"},
			down:  []string{close},
		},
		{
			name:  "tap: no routes, a note about AllowedIPs",
			iface: "Mode = tap\nAddress = 10.0.0.1/24",
			peers: []string{"", "AllowedIPs = 0.0.0.0/0"},
			up: []string{"start the tap device wg0 (MTU automatic)", "ip address add 10.0.0.1/24 dev wg0", setUp,
				"log: AllowedIPs are not used in TAP mode (frames are switched by MAC address); no routes added peer=" + pubB},
			down: []string{close},
		},
		{
			name:  "tap without AllowedIPs: no note",
			iface: "Mode = tap\nMTU = 1500",
			peers: []string{""},
			up:    []string{"start the tap device wg0 (MTU 1500)", setUp},
			down:  []string{close},
		},
		{
			name:  "bridge created, addresses on it, taken off on down",
			iface: "Mode = tap\nBridge = br0\nAddress = 10.0.0.1/24, fd00::1/64",
			up: []string{"start the tap device wg0 (MTU automatic)", "ip link add br0 type bridge", "ip link set wg0 master br0", "ip link set br0 up",
				"ip address add 10.0.0.1/24 dev br0", "ip address add fd00::1/64 dev br0", setUp},
			down: []string{close, "ip address del 10.0.0.1/24 dev br0", "ip address del fd00::1/64 dev br0"},
			link: "br0",
		},
		{
			name:  "bridge that exists",
			iface: "Mode = tap\nBridge = br0",
			host:  Host{Links: []string{"eth0", "br0"}},
			up:    []string{"start the tap device wg0 (MTU automatic)", "ip link set wg0 master br0", "ip link set br0 up", setUp},
			down:  []string{close},
			link:  "br0",
		},
		{
			name: "hooks in order, %i replaced, around everything",
			iface: "PreUp = echo pre %i\nPreUp = echo pre2\nPostUp = echo post %i %i\nPreDown = echo predown %i\nPostDown = echo postdown %i\n" +
				"PostDown = logger done",
			peers: []string{"AllowedIPs = 0.0.0.0/0"},
			up: append(append([]string{"hook PreUp: echo pre wg0", "hook PreUp: echo pre2", start, setUp, "wg set wg0 fwmark 51820"}, defaultRoute4...),
				"log: default route through the tunnel table=51820 fwmark=51820", "hook PostUp: echo post wg0 wg0"),
			down: []string{"hook PreDown: echo predown wg0", close, "ip rule del not fwmark 0xca6c table 51820", "ip rule del table 254 suppress_prefixlength 0",
				"hook PostDown: echo postdown wg0", "hook PostDown: logger done"},
			fwmark: 51820,
		},
		{
			name:  "an empty hook is kept",
			iface: "PostUp =",
			up:    []string{start, setUp, "hook PostUp: "},
			down:  []string{close},
		},
		{
			name:  "SaveConfig after PreDown, before DNS and the device",
			iface: "SaveConfig = true\nPreDown = true\nDNS = 192.0.2.53",
			host:  Host{DNS: resolvconf},
			up:    []string{start, setUp, `/sbin/resolvconf -a wg0 -m 0 -x < "nameserver 192.0.2.53\n"`},
			down:  []string{"hook PreDown: true", "save the running configuration to the file", "/sbin/resolvconf -d wg0 -f", close},
		},
		{
			name:  "DNS with resolvconf: servers and search domains, the prefix of interface-order",
			iface: "DNS = 192.0.2.53, example.test, 2001:db8::53, corp.test\nPostUp = true",
			host:  Host{DNS: resolvconf, ResolvconfPrefix: "tun."},
			up: []string{start, setUp, `/sbin/resolvconf -a tun.wg0 -m 0 -x < "nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.test corp.test\n"`,
				"hook PostUp: true"},
			down: []string{"/sbin/resolvconf -d tun.wg0 -f", close},
		},
		{
			name:  "DNS with resolvectl",
			iface: "DNS = 192.0.2.53, example.test",
			host:  Host{DNS: DNSTool{Resolvectl, "/usr/bin/resolvectl"}},
			up:    []string{start, setUp, "/usr/bin/resolvectl dns wg0 192.0.2.53; /usr/bin/resolvectl domain wg0 example.test"},
			down:  []string{"/usr/bin/resolvectl revert wg0", close},
		},
		{
			name:  "DNS with resolvectl and a default route: ~. routes every name",
			iface: "DNS = 192.0.2.53\nTable = off",
			peers: []string{"AllowedIPs = ::/0"},
			host:  Host{DNS: DNSTool{Resolvectl, "/usr/bin/resolvectl"}},
			up:    []string{start, setUp, "/usr/bin/resolvectl dns wg0 192.0.2.53; /usr/bin/resolvectl domain wg0 ~."},
			down:  []string{"/usr/bin/resolvectl revert wg0", close},
		},
		{
			name:  "DNS with resolvectl, search domains only",
			iface: "DNS = example.test",
			host:  Host{DNS: DNSTool{Resolvectl, "/usr/bin/resolvectl"}},
			up:    []string{start, setUp, "/usr/bin/resolvectl domain wg0 example.test"},
			down:  []string{"/usr/bin/resolvectl revert wg0", close},
		},
		{
			name: "everything: bridge, DNS, hooks, SaveConfig",
			iface: "Mode = tap\nBridge = br0\nAddress = 10.0.0.1/24\nDNS = 10.0.0.53\nPreUp = a\nPostUp = b\nPreDown = c\nPostDown = d\n" +
				"SaveConfig = true\nMTU = 1400",
			peers: []string{"AllowedIPs = 10.0.0.0/24"},
			host:  Host{DNS: resolvconf},
			up: []string{"hook PreUp: a", "start the tap device wg0 (MTU 1400)", "ip link add br0 type bridge", "ip link set wg0 master br0", "ip link set br0 up",
				"ip address add 10.0.0.1/24 dev br0", setUp,
				"log: AllowedIPs are not used in TAP mode (frames are switched by MAC address); no routes added peer=" + pubA,
				`/sbin/resolvconf -a wg0 -m 0 -x < "nameserver 10.0.0.53\n"`, "hook PostUp: b"},
			down: []string{"hook PreDown: c", "save the running configuration to the file", "/sbin/resolvconf -d wg0 -f", close, "hook PostDown: d",
				"ip address del 10.0.0.1/24 dev br0"},
			link: "br0",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := parse(t, c.iface, c.peers...)
			p, err := NewPlan(cfg, "wg0", c.host)
			if err != nil {
				t.Fatal(err)
			}
			if got := strs(p.Up); !slices.Equal(got, c.up) {
				t.Errorf("up:\n got %q\nwant %q", got, c.up)
			}
			if got := strs(p.Down); !slices.Equal(got, c.down) {
				t.Errorf("down:\n got %q\nwant %q", got, c.down)
			}
			link := c.link
			if link == "" {
				link = "wg0"
			}
			if p.Name != "wg0" || p.AddrLink != link || p.FwMark != c.fwmark {
				t.Errorf("plan for %s: addresses on %s, fwmark %d; want %s, %d", p.Name, p.AddrLink, p.FwMark, link, c.fwmark)
			}
			want := "up wg0:\n\t" + strings.Join(c.up, "\n\t") + "\ndown wg0:\n\t" + strings.Join(c.down, "\n\t") + "\n"
			if s := p.String(); s != want {
				t.Errorf("Plan.String:\n%s\nwant:\n%s", s, want)
			}
		})
	}
}

// TestNewPlanDNSWithoutTool: a file with DNS on a host without a tool is
// refused at its DNS line, as CheckDNS refuses it.
func TestNewPlanDNSWithoutTool(t *testing.T) {
	t.Parallel()
	cfg := parse(t, "Address = 10.0.0.1/24\nDNS = 192.0.2.53")
	p, err := NewPlan(cfg, "wg0", Host{})
	var e *config.Error
	if !errors.As(err, &e) || p != nil {
		t.Fatalf("NewPlan: %v, %v; want a *config.Error", p, err)
	}
	if want := "/etc/wireguard/wg0.conf:4: DNS: neither resolvconf nor resolvectl"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if _, err := NewPlan(parse(t, "Address = 10.0.0.1/24"), "wg0", Host{}); err != nil {
		t.Errorf("without DNS no tool is needed: %v", err)
	}
}

func TestResolvconfPrefix(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"":                                "",
		"lo.inet6\nlo.inet\ntun*\ntap*\n": "tun.",
		"# comment\n  wg* \n":             "wg.",
		"lo*\ntun*\n":                     "lo.",
		"eth0\nppp*x\n*\n":                "",
	} {
		if got := ResolvconfPrefix([]byte(text)); got != want {
			t.Errorf("ResolvconfPrefix(%q) = %q, want %q", text, got, want)
		}
	}
}

// FuzzNewPlan: for every file Parse takes, the plan starts the device once
// and closes it once, runs every hook once, and takes back every rule and
// every DNS setting it adds.
func FuzzNewPlan(f *testing.F) {
	for _, s := range []string{
		"Address = 10.0.0.1/24\nPostUp = echo %i\n[Peer]\nPublicKey = " + pubA + "\nAllowedIPs = 0.0.0.0/0, ::/0, 10.0.0.0/8\n",
		"Mode = tap\nBridge = br0\nAddress = 10.0.0.1/24\nDNS = 10.0.0.53, x.test\nSaveConfig = true\n",
		"Table = 1234\nFwMark = 7\nPreDown = a\nPostDown = b\n[Peer]\nPublicKey = " + pubA + "\nAllowedIPs = ::/0\n",
	} {
		f.Add(s, uint32(51820))
	}
	f.Fuzz(func(t *testing.T, iface string, busy uint32) {
		cfg, err := config.Options{TableNames: func(string) (uint32, bool, error) { return 100, true, nil }}.Parse("fuzz.conf",
			strings.NewReader("[Interface]\nPrivateKey = "+priv+"\n"+iface))
		if err != nil {
			return
		}
		p, err := NewPlan(cfg, "wg0", Host{BusyTables: []uint32{busy, FirstAutoTable}, DNS: resolvconf})
		if err != nil {
			t.Fatal(err)
		}
		count := func(steps []Step, match func(Step) bool) int {
			n := 0
			for _, s := range steps {
				if match(s) {
					n++
				}
			}
			return n
		}
		is := func(kind string) func(Step) bool {
			return func(s Step) bool { return fmt.Sprintf("%T", s) == "wgquick."+kind }
		}
		if count(p.Up, is("StartDevice")) != 1 || count(p.Down, is("CloseDevice")) != 1 {
			t.Errorf("the device is not started and closed once:\n%s", p)
		}
		in := cfg.Interface
		if count(p.Up, is("RunHook")) != len(in.PreUp)+len(in.PostUp) || count(p.Down, is("RunHook")) != len(in.PreDown)+len(in.PostDown) {
			t.Errorf("hooks lost or added:\n%s", p)
		}
		if count(p.Up, is("AddRule")) != count(p.Down, is("DelRule")) || count(p.Up, is("SetDNS")) != count(p.Down, is("UnsetDNS")) {
			t.Errorf("down does not take back what up adds:\n%s", p)
		}
		if p.FwMark == busy || p.FwMark == FirstAutoTable {
			t.Errorf("fwmark %d is a busy table's", p.FwMark)
		}
	})
}
