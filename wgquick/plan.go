// Package wgquick is what wg-quick(8) does around a WireGuard interface,
// for `tapwire up` and `tapwire down`: hooks, the addresses, the routes to
// the peers' allowed IPs (in the table the file's Table names, or wg-quick's
// way with a default route: a table of its own, the tunnel's packets marked
// with a fwmark and policy rules that keep them out of it), DNS, and for a
// tap device the Linux bridge it joins.
//
// It works in two halves. NewPlan is pure: from a *config.Config and facts
// about the host (a Host, plain values that ReadHost gathers) it computes a
// Plan, the Steps that bring the interface up and those that take it down,
// in order, so that what tapwire does is table-tested without root. A
// Runner carries a plan out on the host through netconf (rtnetlink), runs
// the hooks and the DNS tool, and, when a step fails, undoes what it did.
// The tunnel device itself is the caller's: a plan says when it starts
// (StartDevice) and when it goes (CloseDevice).
//
// Where tapwire differs from wg-quick: PreUp runs before the device exists,
// and the facts a plan is computed from (does the bridge exist, which tables
// from 51820 hold routes) are read before PreUp runs; DNS is set after the
// routes, the device closes before the policy rules
// go; routes are added in the file's order (wg-quick sorts them, longest
// prefix first); a file without MTU gets the device's default (1420, 1500
// for tap) rather than the route's MTU less 80; an address goes on the
// bridge (Bridge = br0) rather than on the tap; a tap device gets no routes
// (frames are switched by MAC address); and tapwire sets no firewall rules
// against spoofed packets to the tunnel's addresses (wg-quick's nftables or
// iptables raw rules).
//
// On macOS, FreeBSD and Windows (Host.OS) a plan does what wg-quick does on
// the BSDs: routes in the main table, a default route as its two halves,
// host routes to the peers' endpoints through the host's gateway, hooks
// with bash (cmd /c on Windows); no fwmark, policy rules or bridge; DNS
// through resolvconf (FreeBSD), networksetup for every network service
// (macOS) or netsh on the tunnel's interface (Windows).
package wgquick

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/netconf"
)

// rtTableMain is the main routing table (RT_TABLE_MAIN).
const rtTableMain = 254

// FirstAutoTable is where wg-quick starts looking for a table for a default
// route (and the fwmark that keeps the tunnel's packets out of it), when the
// file gives no FwMark: the first table from there that has no routes.
const FirstAutoTable = 51820

// Host is what a plan needs to know about the host, as plain values.
type Host struct {
	// Links are the names of the links that exist. Only the file's Bridge
	// is looked for: a bridge that does not exist is created.
	Links []string
	// BusyTables are routing tables that have routes (IPv4 or IPv6). Only
	// tables from FirstAutoTable up matter, when a fwmark is chosen.
	BusyTables []uint32
	// DNS is the tool that applies DNS settings; the zero DNSTool: none.
	DNS DNSTool
	// ResolvconfPrefix is what resolvconf knows tunnels by (see
	// ResolvconfPrefix); "" for none.
	ResolvconfPrefix string
	// OS is the operating system, as runtime.GOOS names it; "" is linux.
	// Elsewhere there are no policy rules, fwmarks or bridges: a default
	// route is split in two halves in the main table (see NewPlan).
	OS string
	// DNSServices are macOS's network services with the DNS settings they
	// have now, which a plan with DNS sets and gives back (networksetup).
	DNSServices []DNSService
	// Gateway4 and Gateway6 are the host's default routes, outside Linux,
	// where the peers' endpoints are routed through them while the
	// tunnel has the default route; the zero Gateway: none.
	Gateway4, Gateway6 Gateway
}

// Gateway is a default route: its gateway (the zero Addr for a route
// through a link alone) and its link.
type Gateway struct {
	Via  netip.Addr
	Link string
}

// linux reports whether the host is Linux.
func (h Host) linux() bool { return h.OS == "" || h.OS == "linux" }

// Plan is what bringing one interface up does to the host, and what taking
// it down does.
type Plan struct {
	Name string // the interface
	// AddrLink is the link the addresses go on: the interface, or the
	// bridge it joins.
	AddrLink string
	// FwMark is the fwmark the plan chose for a default route (Table auto
	// and no FwMark in the file), which SaveConfig leaves out so that the
	// next up chooses again; 0: none chosen.
	FwMark uint32
	// Up brings the interface up, in order. When a step fails, the Runner
	// undoes those before it.
	Up []Step
	// Down takes it down, in order; a step that fails does not stop the
	// ones after it, but a failing hook skips the later hooks of its stage.
	Down []Step
}

// String lists the steps, one a line.
func (p *Plan) String() string {
	var b strings.Builder
	for _, half := range []struct {
		name  string
		steps []Step
	}{{"up", p.Up}, {"down", p.Down}} {
		fmt.Fprintf(&b, "%s %s:\n", half.name, p.Name)
		for _, s := range half.steps {
			fmt.Fprintf(&b, "\t%s\n", s)
		}
	}
	return b.String()
}

// NewPlan returns the plan for bringing up cfg as the interface name on a
// host with the given facts. The errors are *config.Error values naming
// the key: a file with DNS on a host without a tool to apply it (as
// CheckDNS returns), and outside Linux what only Linux has (see
// checkOS).
//
// Outside Linux (Host.OS) routes go to the interface in the main table,
// as wg-quick does on macOS and FreeBSD: a default route (0.0.0.0/0, ::/0)
// becomes its two halves (0.0.0.0/1 and 128.0.0.0/1, ::/1 and 8000::/1),
// which win over the host's default route without replacing it, and each
// peer endpoint given as an IP address gets a host route through the
// host's default gateway (Host.Gateway4, Gateway6), so that the tunnel's
// own packets do not enter it. Those routes outlive the device: Down
// deletes them.
func NewPlan(cfg *config.Config, name string, host Host) (*Plan, error) {
	in := &cfg.Interface
	if err := checkOS(cfg, host); err != nil {
		return nil, err
	}
	if len(in.DNS) > 0 && host.DNS.Kind == "" {
		return nil, dnsError(cfg, noDNSTool)
	}
	p := &Plan{Name: name, AddrLink: name}
	// outlive: what outlives the device (a bridge's addresses, endpoint
	// routes), taken back at the end of Down.
	var up, down, outlive []Step

	for _, c := range in.PreUp {
		up = append(up, hook("PreUp", c, name))
	}
	up = append(up, StartDevice{Name: name, TAP: in.Mode.TAP(), MTU: in.MTU})
	// The addresses go on the interface, or on the bridge it joins: a
	// bridge port's own addresses are never reached.
	if in.Bridge != "" {
		p.AddrLink = in.Bridge
		if !slices.Contains(host.Links, in.Bridge) {
			up = append(up, AddBridge{in.Bridge})
		}
		up = append(up, AttachBridge{Link: name, Bridge: in.Bridge}, SetUp{in.Bridge})
	}
	for _, a := range in.Addresses {
		up = append(up, AddAddr{Link: p.AddrLink, Addr: a})
		if p.AddrLink != name { // the bridge stays: its addresses go
			outlive = append(outlive, DelAddr{Link: p.AddrLink, Addr: a})
		}
	}
	up = append(up, SetUp{name})

	var rules []netconf.Rule
	if in.Mode.TAP() {
		// Frames go by MAC address: allowed IPs route nothing.
		for _, peer := range cfg.Peers {
			if len(peer.AllowedIPs) > 0 {
				up = append(up, Log{"AllowedIPs are not used in TAP mode (frames are switched by MAC address); no routes added",
					[]any{"peer", peer.PublicKey.String()}})
				break
			}
		}
	} else if host.linux() {
		var routes []Step
		routes, rules, p.FwMark = routeSteps(cfg, name, host)
		up = append(up, routes...)
	} else {
		routes, endpoints := splitRouteSteps(cfg, name, host)
		up = append(up, routes...)
		for _, r := range endpoints {
			up = append(up, AddRoute{r})
			outlive = append(outlive, DelRoute{r})
		}
	}

	if len(in.DNS) > 0 {
		set, unset := dnsSteps(host.DNS, host.ResolvconfPrefix, name, in.DNS, routesAll(cfg), host.DNSServices)
		if _, search := splitDNS(in.DNS); host.DNS.Kind == Netsh && len(search) > 0 {
			up = append(up, Log{"DNS search domains are not set on Windows: only the servers are", []any{"domains", search}})
		}
		if host.DNS.Kind == Networksetup && len(host.DNSServices) == 0 {
			up = append(up, Log{"no enabled network service: DNS is not set", nil})
		}
		up = append(up, set)
		down = append(down, unset)
	}
	for _, c := range in.PostUp {
		up = append(up, hook("PostUp", c, name))
	}

	// Down: PreDown, SaveConfig (as wg-quick does, before anything is taken
	// down), DNS back before the link goes (resolvectl needs it), the
	// device, the rules, PostDown, and the bridge's addresses.
	var pre []Step
	for _, c := range in.PreDown {
		pre = append(pre, hook("PreDown", c, name))
	}
	if in.SaveConfig {
		pre = append(pre, SaveConfig{})
	}
	down = append(pre, append(down, CloseDevice{name})...)
	for _, r := range rules {
		down = append(down, DelRule{r})
	}
	for _, c := range in.PostDown {
		down = append(down, hook("PostDown", c, name))
	}
	p.Up, p.Down = up, append(down, outlive...)
	return p, nil
}

// hook is a RunHook with %i replaced by the interface's name, as wg-quick
// does.
func hook(stage, cmd, name string) RunHook {
	return RunHook{Stage: stage, Cmd: strings.ReplaceAll(cmd, "%i", name)}
}

// routeSteps routes each peer's allowed IPs through the interface, as
// wg-quick does: in the main table or Table = N, none with Table = off. A
// default route (/0) with Table = auto goes the wg-quick way: into a table
// of its own, with the socket's packets marked and kept out of it by policy
// rules, so that the tunnel's own traffic still reaches the peers. It
// returns the steps, the rules they add (routes go with the interface), and
// the fwmark it chose (0: none).
func routeSteps(cfg *config.Config, name string, host Host) (steps []Step, rules []netconf.Rule, chosen uint32) {
	t := cfg.Interface.Table
	if t.Off() {
		return nil, nil, 0
	}
	id, _ := t.ID() // auto: 0, the main table
	var seen []netip.Prefix
	for _, peer := range cfg.Peers {
		for _, a := range peer.AllowedIPs {
			if t.Auto() && a.Bits() == 0 || slices.Contains(seen, a) {
				continue
			}
			seen = append(seen, a)
			steps = append(steps, AddRoute{netconf.Route{Dst: a.Masked(), Link: name, Table: int(id)}})
		}
	}
	v4, v6 := defaultRoutes(cfg)
	if !v4 && !v6 {
		return steps, nil, 0
	}
	mark := cfg.Interface.FwMark
	if mark == 0 {
		// wg-quick's choice: 51820, or the next table that is empty.
		for mark = FirstAutoTable; slices.Contains(host.BusyTables, mark); mark++ {
		}
		chosen = mark
		steps = append(steps, SetFwMark{Name: name, Mark: mark})
	}
	for _, f := range []struct {
		on  bool
		v6  bool
		dst netip.Prefix
	}{{v4, false, netip.MustParsePrefix("0.0.0.0/0")}, {v6, true, netip.MustParsePrefix("::/0")}} {
		if !f.on {
			continue
		}
		steps = append(steps, AddRoute{netconf.Route{Dst: f.dst, Link: name, Table: int(mark)}})
		for _, r := range []netconf.Rule{
			{V6: f.v6, Table: int(mark), Mark: mark, Invert: true, SuppressPrefixlen: -1},
			{V6: f.v6, Table: rtTableMain, SuppressPrefixlen: 0},
		} {
			steps = append(steps, AddRule{r})
			rules = append(rules, r)
		}
		if !f.v6 {
			// Let replies to the tunnel's marked packets pass reverse-path filtering.
			steps = append(steps, Sysctl{"net.ipv4.conf.all.src_valid_mark", "1"})
		}
	}
	steps = append(steps, Log{"default route through the tunnel", []any{"table", mark, "fwmark", mark}})
	return steps, rules, chosen
}

// defaultRoutes reports whether cfg sends the IPv4 or the IPv6 default
// route through a table of its own: a TUN device, Table auto, and a peer
// that allows 0.0.0.0/0 or ::/0.
func defaultRoutes(cfg *config.Config) (v4, v6 bool) {
	if cfg.Interface.Mode.TAP() || !cfg.Interface.Table.Auto() {
		return false, false
	}
	return peerDefaults(cfg)
}

// peerDefaults reports whether a peer of cfg allows 0.0.0.0/0 (v4) or ::/0
// (v6).
func peerDefaults(cfg *config.Config) (v4, v6 bool) {
	for _, peer := range cfg.Peers {
		for _, a := range peer.AllowedIPs {
			if a.Bits() == 0 {
				v4, v6 = v4 || a.Addr().Is4(), v6 || a.Addr().Is6()
			}
		}
	}
	return v4, v6
}

// routesAll reports whether a peer allows a default route (0.0.0.0/0 or
// ::/0), whatever the table: then resolvectl routes every name through the
// tunnel.
func routesAll(cfg *config.Config) bool {
	for _, peer := range cfg.Peers {
		for _, a := range peer.AllowedIPs {
			if a.Bits() == 0 {
				return true
			}
		}
	}
	return false
}
