package netconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
)

const goos = "windows"

// sysHandle is what a Handle holds on Windows: nothing, as the IP Helper
// API (through winipcfg) needs no socket.
type sysHandle struct{}

// Close does nothing.
func (*sysHandle) Close() {}

// Open returns a Handle on the host's network stack. ns must be "":
// Windows has no network namespaces, and another value is an error
// matching [ErrNotSupported]. Configuring links needs an elevated
// (Administrator) process.
func Open(ns string) (*Handle, error) {
	if ns != "" {
		return nil, fmt.Errorf("netconf: open %s: %w", where(ns), notSupported(goos, "network namespaces are Linux's"))
	}
	return &Handle{sys: &sysHandle{}, ns: ns}, nil
}

// winLink is a link looked up: Go's view of it and its LUID.
type winLink struct {
	*net.Interface
	luid winipcfg.LUID
}

// link looks a link up by name (its alias, the name a Wintun adapter is
// created with), mapping "not found" to ErrLinkNotFound.
func link(name string) (winLink, error) {
	if name == "" {
		return winLink{}, errors.New("empty link name")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		all, lerr := net.Interfaces()
		if lerr == nil && !slices.ContainsFunc(all, func(i net.Interface) bool { return i.Name == name }) {
			return winLink{}, ErrLinkNotFound
		}
		return winLink{}, err
	}
	luid, err := winipcfg.LUIDFromIndex(uint32(ifi.Index))
	if err != nil {
		return winLink{}, fmt.Errorf("LUID of interface %d: %w", ifi.Index, err)
	}
	return winLink{ifi, luid}, nil
}

// onLink looks up the link name and runs fn on it with the handle locked,
// wrapping any error as "netconf: <what> in current netns: ...".
func (h *Handle) onLink(what, name string, fn func(winLink) error) error {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l winLink
		if l, err = link(name); err == nil {
			err = fn(l)
		}
	}
	if err != nil {
		return h.errorf(err, "%s", what)
	}
	return nil
}

// notFound reports whether err is the IP Helper API's "no such object".
func notFound(err error) bool {
	return errors.Is(err, windows.ERROR_NOT_FOUND) || errors.Is(err, windows.ERROR_FILE_NOT_FOUND)
}

// exists reports whether err is the IP Helper API's "already there".
func exists(err error) bool {
	return errors.Is(err, windows.ERROR_OBJECT_ALREADY_EXISTS) || errors.Is(err, windows.ERROR_ALREADY_EXISTS)
}

// LinkIndex returns the interface index of the link name.
func (h *Handle) LinkIndex(name string) (int, error) {
	var idx int
	err := h.onLink("look up link "+name, name, func(l winLink) error {
		idx = l.Index
		return nil
	})
	return idx, err
}

// SetUp checks that the link exists, and does nothing else: Windows has no
// administrative up and down of an adapter through the IP Helper API, and a
// Wintun adapter is up while its session is open.
func (h *Handle) SetUp(link string) error {
	return h.onLink("set up "+link, link, func(winLink) error { return nil })
}

// SetDown fails with an error matching [ErrNotSupported] (a Wintun
// adapter goes down when its session ends).
func (h *Handle) SetDown(link string) error {
	return h.onLink("set down "+link, link, func(winLink) error {
		return notSupported(goos, "setting a link down")
	})
}

// SetMTU sets the link's IPv4 and IPv6 MTU (the IP interfaces' NlMtu, as
// netsh interface ipv4|ipv6 set subinterface mtu= does). A family that is
// not bound to the link is skipped, and one that already has the MTU is
// left alone. Below 1280, IPv6's minimum, which Windows refuses for an IPv6
// interface, only the IPv4 MTU is set.
func (h *Handle) SetMTU(link string, mtu int) error {
	what := fmt.Sprintf("set MTU %d on %s", mtu, link)
	if mtu <= 0 {
		return h.errorf(errors.New("MTU must be positive"), "%s", what)
	}
	return h.onLink(what, link, func(l winLink) error {
		for _, fam := range []winipcfg.AddressFamily{windows.AF_INET, windows.AF_INET6} {
			if fam == windows.AF_INET6 && mtu < 1280 {
				continue
			}
			row, err := l.luid.IPInterface(fam)
			if notFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if row.NLMTU == uint32(mtu) {
				continue
			}
			row.NLMTU = uint32(mtu)
			if err := row.Set(); err != nil {
				return fmt.Errorf("%s: %w", famName(fam), err)
			}
		}
		return nil
	})
}

func famName(fam winipcfg.AddressFamily) string {
	if fam == windows.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// SetHardwareAddr fails with an error matching [ErrNotSupported].
func (h *Handle) SetHardwareAddr(link string, mac net.HardwareAddr) error {
	return h.onLink(fmt.Sprintf("set hardware address %s on %s", mac, link), link, func(winLink) error {
		return notSupported(goos, "setting a hardware address")
	})
}

// DelLink succeeds when the link does not exist, and otherwise fails with
// an error matching [ErrNotSupported]: a Wintun adapter goes when it is
// closed.
func (h *Handle) DelLink(name string) error {
	err := h.onLink("delete link "+name, name, func(winLink) error {
		return notSupported(goos, "deleting a link")
	})
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	return err
}

// AddAddr assigns the address p (the address and the prefix length of the
// attached subnet) to link, with infinite lifetimes, as netsh interface ip
// add address does. Options have no effect (no duplicate address
// detection is asked for). An address that is already present with the
// same prefix length is success; one present with another prefix length,
// or on another interface (Windows refuses an address two interfaces
// share), is an error matching fs.ErrExist.
func (h *Handle) AddAddr(link string, p netip.Prefix, opts ...AddrOption) error {
	return h.onLink(fmt.Sprintf("add address %s to %s", p, link), link, func(l winLink) error {
		if err := checkPrefix(p); err != nil {
			return err
		}
		if row, err := l.luid.IPAddress(p.Addr()); err == nil {
			if int(row.OnLinkPrefixLength) == p.Bits() {
				return nil
			}
			q := netip.PrefixFrom(p.Addr(), int(row.OnLinkPrefixLength))
			return fmt.Errorf("%s is already assigned: %w", q, fs.ErrExist)
		}
		err := l.luid.AddIPAddress(p)
		if !exists(err) {
			return err
		}
		// Windows refuses an address that another interface holds, often
		// a disconnected adapter of an earlier run, with the same error as
		// one made on this link meanwhile: tell them apart.
		if _, gerr := l.luid.IPAddress(p.Addr()); gerr == nil {
			return nil
		}
		return fmt.Errorf("%s is assigned to another interface (remove it there, e.g. from a disconnected adapter): %w", p.Addr(), fs.ErrExist)
	})
}

// DelAddr removes the address p from link. An address that is not there is
// success.
func (h *Handle) DelAddr(link string, p netip.Prefix) error {
	return h.onLink(fmt.Sprintf("delete address %s from %s", p, link), link, func(l winLink) error {
		if err := checkPrefix(p); err != nil {
			return err
		}
		if err := l.luid.DeleteIPAddress(p); err != nil && !notFound(err) {
			return err
		}
		return nil
	})
}

// Addrs returns the IPv4 and IPv6 addresses of link, each with its prefix
// length, IPv4 first. IPv6 link-local addresses (fe80::/10) are left out.
func (h *Handle) Addrs(link string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := h.onLink("list addresses of "+link, link, func(l winLink) error {
		addrs, err := l.Interface.Addrs()
		if err != nil {
			return err
		}
		out = ipNets(addrs, false)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddRoute adds the route r (CreateIpForwardEntry2), like route add. r.Link
// is required: Windows routes belong to an interface. r.Metric is the
// route's metric, which Windows adds to the interface's. A route that is
// already there (the same destination, gateway and link) is success, with
// its metric left as it is. r.Table must be 0 (or 254, main): another is an
// error matching [ErrNotSupported].
func (h *Handle) AddRoute(r Route) error {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = checkWinRoute(r, true)
	}
	if err == nil {
		var l winLink
		if l, err = link(r.Link); err == nil {
			err = l.luid.AddRoute(r.Dst, nextHop(r), uint32(r.Metric))
			if exists(err) {
				err = nil
			}
		}
	}
	if err != nil {
		return h.errorf(err, "add route %s", r)
	}
	return nil
}

// nextHop is r's gateway, or the unspecified address of its family for an
// on-link route, as Windows writes those.
func nextHop(r Route) netip.Addr {
	if r.Via.IsValid() {
		return r.Via
	}
	if r.Dst.Addr().Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// checkWinRoute checks r, and that it asks only for what Windows has.
func checkWinRoute(r Route, add bool) error {
	if err := r.check(add); err != nil {
		return err
	}
	if r.Table != 0 && r.Table != mainTable {
		return notSupported(goos, fmt.Sprintf("routing table %d (only the main table)", r.Table))
	}
	if add && r.Link == "" {
		return errors.New("route needs a link on windows")
	}
	return nil
}

// DelRoute deletes the route r, like route delete; a route that is not
// there is success. As on Linux, the fields left zero match anything: with
// no Via a route through any gateway, with no Link any link, with Metric 0
// any metric. One route is deleted per call.
func (h *Handle) DelRoute(r Route) error {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = checkWinRoute(r, false)
	}
	if err == nil {
		err = delRoute(r)
	}
	if err != nil {
		return h.errorf(err, "delete route %s", r)
	}
	return nil
}

func delRoute(r Route) error {
	var luid winipcfg.LUID
	if r.Link != "" {
		l, err := link(r.Link)
		if errors.Is(err, ErrLinkNotFound) {
			return nil // its routes went with it
		}
		if err != nil {
			return err
		}
		luid = l.luid
	}
	rows, err := winipcfg.GetIPForwardTable2(family(r.Dst.Addr().Is6()))
	if err != nil {
		return err
	}
	for i := range rows {
		row := &rows[i]
		if row.DestinationPrefix.Prefix() != r.Dst ||
			(luid != 0 && row.InterfaceLUID != luid) ||
			(r.Via.IsValid() && row.NextHop.Addr() != r.Via) ||
			(r.Metric != 0 && row.Metric != uint32(r.Metric)) {
			continue
		}
		if err := row.Delete(); err != nil && !notFound(err) {
			return err
		}
		return nil
	}
	return nil
}

func family(v6 bool) winipcfg.AddressFamily {
	if v6 {
		return windows.AF_INET6
	}
	return windows.AF_INET
}

// TableEmpty reports whether the routing table has no routes of the
// family. Only the main table (0 or 254) exists on Windows: another is an
// error matching [ErrNotSupported].
func (h *Handle) TableEmpty(table int, v6 bool) (bool, error) {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil && table != 0 && table != mainTable {
		err = notSupported(goos, fmt.Sprintf("routing table %d (only the main table)", table))
	}
	var rows []winipcfg.MibIPforwardRow2
	if err == nil {
		rows, err = winipcfg.GetIPForwardTable2(family(v6))
	}
	if err != nil {
		return false, h.errorf(err, "list table %d", table)
	}
	return len(rows) == 0, nil
}

// DefaultGateway returns the gateway and the link of the default route
// (0.0.0.0/0, or ::/0 with v6) that Windows prefers: the lowest metric,
// the route's plus its interface's. An on-link default route gives the
// zero Addr and the link. A host without a default route is an error
// matching fs.ErrNotExist.
func (h *Handle) DefaultGateway(v6 bool) (netip.Addr, string, error) {
	_, err := h.lock()
	defer h.mu.Unlock()
	var rows []winipcfg.MibIPforwardRow2
	if err == nil {
		rows, err = winipcfg.GetIPForwardTable2(family(v6))
	}
	if err != nil {
		return netip.Addr{}, "", h.errorf(err, "look up the default route")
	}
	var cands []gwRoute
	for i := range rows {
		row := &rows[i]
		if row.DestinationPrefix.Prefix().Bits() != 0 || row.Loopback {
			continue
		}
		c := gwRoute{Link: int(row.InterfaceIndex), Metric: int(row.Metric)}
		if ipif, err := row.InterfaceLUID.IPInterface(family(v6)); err == nil {
			if !ipif.Connected {
				continue
			}
			c.Metric += int(ipif.Metric)
		}
		if gw := row.NextHop.Addr(); gw.IsValid() && !gw.IsUnspecified() {
			c.Via = gw
		}
		cands = append(cands, c)
	}
	best, ok := pickDefault(cands)
	if !ok {
		return netip.Addr{}, "", h.errorf(errNoDefault(v6), "look up the default route")
	}
	ifi, err := net.InterfaceByIndex(best.Link)
	if err != nil {
		return netip.Addr{}, "", h.errorf(err, "look up the default route's link #%d", best.Link)
	}
	return best.Via, ifi.Name, nil
}
