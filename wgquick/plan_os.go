package wgquick

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/netconf"
)

// checkOS refuses, outside Linux, what cfg asks for that only Linux has
// here: a Bridge, a Table other than auto, main and off, and a FwMark
// where sockets have no mark (macOS, Windows). Each is a *config.Error
// naming the key.
func checkOS(cfg *config.Config, host Host) error {
	if host.linux() {
		return nil
	}
	in := &cfg.Interface
	keyErr := func(key string, line int, msg string) error {
		return &config.Error{File: cfg.Path, Line: line, Key: key, Msg: msg}
	}
	if in.FwMark != 0 && host.OS != "freebsd" {
		return keyErr("FwMark", 0, fmt.Sprintf("sockets have no mark on %s (FwMark is Linux's SO_MARK and FreeBSD's SO_USER_COOKIE): remove it or set it off", host.OS))
	}
	if in.Bridge != "" {
		return keyErr("Bridge", 0, fmt.Sprintf("bridges are Linux-only (this host is %s)", host.OS))
	}
	if id, ok := in.Table.ID(); ok && id != 0 && id != rtTableMain {
		return keyErr("Table", 0, fmt.Sprintf("routing tables other than main are Linux-only (this host is %s): use auto, main or off", host.OS))
	}
	return nil
}

// splitDefaults reports whether cfg, outside Linux, sends the IPv4 or the
// IPv6 default route through the tunnel: a TUN device, routes (Table not
// off), and a peer that allows 0.0.0.0/0 or ::/0.
func splitDefaults(cfg *config.Config) (v4, v6 bool) {
	if cfg.Interface.Mode.TAP() || cfg.Interface.Table.Off() {
		return false, false
	}
	return peerDefaults(cfg)
}

// splitRouteSteps routes each peer's allowed IPs through the interface in
// the main table, outside Linux, as wg-quick does on macOS and FreeBSD
// (none with Table = off): a default route as its two halves. It returns
// the steps, and the host routes to the peers' endpoints through the
// host's default gateway when the tunnel has the default route of their
// family (they outlive the device).
func splitRouteSteps(cfg *config.Config, name string, host Host) (steps []Step, endpoints []netconf.Route) {
	if cfg.Interface.Table.Off() {
		return nil, nil
	}
	var seen []netip.Prefix
	add := func(p netip.Prefix) {
		if !slices.Contains(seen, p) {
			seen = append(seen, p)
			steps = append(steps, AddRoute{netconf.Route{Dst: p, Link: name}})
		}
	}
	for _, peer := range cfg.Peers {
		for _, a := range peer.AllowedIPs {
			if a.Bits() != 0 {
				add(a.Masked())
				continue
			}
			// The halves of the default route, more specific than the
			// host's own.
			halves := [2]string{"0.0.0.0/1", "128.0.0.0/1"}
			if a.Addr().Is6() {
				halves = [2]string{"::/1", "8000::/1"}
			}
			for _, h := range halves {
				add(netip.MustParsePrefix(h))
			}
		}
	}
	v4, v6 := splitDefaults(cfg)
	if !v4 && !v6 {
		return steps, nil
	}
	for _, peer := range cfg.Peers {
		if peer.Endpoint == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(peer.Endpoint)
		if err != nil {
			steps = append(steps, Log{"endpoint is a name: no route to it outside the tunnel, which may loop its packets through the tunnel",
				[]any{"peer", peer.PublicKey.String(), "endpoint", peer.Endpoint}})
			continue
		}
		ep := ap.Addr().Unmap()
		gw, on := host.Gateway4, v4
		if ep.Is6() {
			gw, on = host.Gateway6, v6
		}
		if !on {
			continue
		}
		if gw.Link == "" && !gw.Via.IsValid() {
			steps = append(steps, Log{"no default gateway: no route to the endpoint outside the tunnel",
				[]any{"peer", peer.PublicKey.String(), "endpoint", peer.Endpoint}})
			continue
		}
		r := netconf.Route{Dst: netip.PrefixFrom(ep, ep.BitLen()), Via: gw.Via, Link: gw.Link}
		if !slices.Contains(endpoints, r) {
			endpoints = append(endpoints, r)
		}
	}
	steps = append(steps, Log{"default route through the tunnel", []any{"routes", "split in halves"}})
	return steps, endpoints
}
