package netconf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// table returns the table number the kernel uses for r.
func (r Route) table() int {
	if r.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return r.Table
}

// nlRoute converts r to netlink's form, looking up r.Link. del selects the
// scope ip route uses for deletion.
func (r Route) nlRoute(nl *netlink.Handle, del bool) (*netlink.Route, error) {
	nr := &netlink.Route{
		Dst:      ipNet(r.Dst),
		Table:    r.Table,
		Priority: r.Metric,
	}
	if r.Link != "" {
		l, err := link(nl, r.Link)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	// Scopes as ip route chooses them. netlink copies Route.Scope into the
	// request even for deletion, where its zero value (universe) would make
	// the kernel match only universe-scope IPv4 routes.
	switch {
	case del:
		nr.Scope = netlink.SCOPE_NOWHERE
	case r.Dst.Addr().Is4() && !r.Via.IsValid():
		nr.Scope = netlink.SCOPE_LINK
	default:
		nr.Scope = netlink.SCOPE_UNIVERSE
	}
	return nr, nil
}

// AddRoute adds the route r, like ip route add. A route that is already there
// (same table, destination and metric, and the same gateway and, if r.Link is
// set, the same link) is success. A different route with the same table,
// destination and metric is not replaced; AddRoute then fails with an error
// wrapping EEXIST that describes it. Routes without a gateway get link scope
// for IPv4, as with ip route.
func (h *Handle) AddRoute(r Route) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = r.check(true)
	}
	if err == nil {
		err = addRoute(nl, r)
	}
	if err != nil {
		return h.errorf(err, "add route %s", r)
	}
	return nil
}

func addRoute(nl *netlink.Handle, r Route) error {
	nr, err := r.nlRoute(nl, false)
	if err != nil {
		return err
	}
	err = nl.RouteAdd(nr)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	// Something with the same key is there; find out whether it is r.
	family := netlink.FAMILY_V6
	metric := r.Metric
	if r.Dst.Addr().Is4() {
		family = netlink.FAMILY_V4
	} else if metric == 0 {
		metric = 1024 // IP6_RT_PRIO_USER
	}
	filter := &netlink.Route{Table: r.table(), Dst: nr.Dst}
	routes, lerr := retryDump(func() ([]netlink.Route, error) {
		return nl.RouteListFiltered(family, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	})
	if lerr != nil {
		return err
	}
	for _, have := range routes {
		if routeDst(have, family) != r.Dst || have.Priority != metric || have.Tos != 0 {
			continue
		}
		sameGw := (have.Gw == nil && !r.Via.IsValid()) || (have.Gw != nil && r.Via.IsValid() && have.Gw.Equal(nr.Gw))
		sameLink := nr.LinkIndex == 0 || have.LinkIndex == nr.LinkIndex
		if have.Type == unix.RTN_UNICAST && len(have.MultiPath) == 0 && sameGw && sameLink {
			return nil
		}
		return fmt.Errorf("a different route exists (%s): %w", describe(nl, have), err)
	}
	return err
}

// routeDst returns a listed route's destination as a prefix.
func routeDst(r netlink.Route, family int) netip.Prefix {
	if r.Dst == nil {
		if family == netlink.FAMILY_V4 {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	ip, _ := netip.AddrFromSlice(r.Dst.IP)
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

// describe formats a listed route for an error message.
func describe(nl *netlink.Handle, r netlink.Route) string {
	var s string
	if r.Type != unix.RTN_UNICAST {
		s = fmt.Sprintf("type %d ", r.Type)
	}
	s += routeDst(r, r.Family).String()
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	if r.LinkIndex != 0 {
		if l, err := nl.LinkByIndex(r.LinkIndex); err == nil {
			s += " dev " + l.Attrs().Name
		} else {
			s += fmt.Sprintf(" dev #%d", r.LinkIndex)
		}
	}
	if len(r.MultiPath) > 0 {
		s += fmt.Sprintf(" with %d nexthops", len(r.MultiPath))
	}
	return s + fmt.Sprintf(" metric %d", r.Priority)
}

// DelRoute deletes the route r, like ip route del; a route that is not there
// is success. As with ip route del, the fields left zero match anything: with
// no Via a route through any gateway, with no Link any link, with Metric 0
// any metric, so DelRoute(Route{Dst: d}) deletes a route to d from the main
// table. One route is deleted per call.
func (h *Handle) DelRoute(r Route) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = r.check(false)
	}
	if err == nil {
		var nr *netlink.Route
		if nr, err = r.nlRoute(nl, true); err == nil {
			err = nl.RouteDel(nr)
			if errors.Is(err, unix.ESRCH) {
				err = nil
			}
		}
	}
	if err != nil {
		return h.errorf(err, "delete route %s", r)
	}
	return nil
}

// TableEmpty reports whether a routing table has no routes of the family.
func (h *Handle) TableEmpty(table int, v6 bool) (bool, error) {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err != nil {
		return false, h.errorf(err, "list table %d", table)
	}
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	routes, err := nl.RouteListFiltered(family, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, h.errorf(err, "list table %d", table)
	}
	return len(routes) == 0, nil
}

// DefaultGateway returns the gateway and the link of the main table's
// default route for IPv4, or for IPv6 with v6: the one with the lowest
// metric, the first nexthop of a multipath route. A route through a link
// without a gateway gives the zero Addr and the link. A host without a
// default route is an error matching fs.ErrNotExist.
func (h *Handle) DefaultGateway(v6 bool) (netip.Addr, string, error) {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err != nil {
		return netip.Addr{}, "", h.errorf(err, "look up the default route")
	}
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return nl.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return netip.Addr{}, "", h.errorf(err, "look up the default route")
	}
	var cands []gwRoute
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST || routeDst(r, family).Bits() != 0 {
			continue
		}
		c := gwRoute{Link: r.LinkIndex, Metric: r.Priority}
		gw := r.Gw
		if len(r.MultiPath) > 0 {
			c.Link, gw = r.MultiPath[0].LinkIndex, r.MultiPath[0].Gw
		}
		if a, ok := netip.AddrFromSlice(gw); ok {
			c.Via = a.Unmap()
		}
		cands = append(cands, c)
	}
	best, ok := pickDefault(cands)
	if !ok {
		return netip.Addr{}, "", h.errorf(errNoDefault(v6), "look up the default route")
	}
	var name string
	if best.Link != 0 {
		l, err := nl.LinkByIndex(best.Link)
		if err != nil {
			return netip.Addr{}, "", h.errorf(err, "look up the default route's link #%d", best.Link)
		}
		name = l.Attrs().Name
	}
	return best.Via, name, nil
}
