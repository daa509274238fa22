package netconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
)

// Route is a unicast route.
type Route struct {
	// Dst is the destination network, without host bits set
	// (198.51.100.0/24, not 198.51.100.1/24). 0.0.0.0/0 and ::/0 are the
	// default routes.
	Dst netip.Prefix
	// Via is the gateway, of the same family as Dst. The zero Addr means a
	// directly connected destination, reached through Link.
	Via netip.Addr
	// Link is the name of the output link. AddRoute needs Via, Link or both;
	// with Via alone the kernel picks the link that reaches the gateway.
	Link string
	// Table is the routing table; 0 means the main table (254). Outside
	// Linux only the main table exists: another is an error matching
	// [ErrNotSupported].
	Table int
	// Metric is the route's priority, lower preferred. On Linux 0 adds an
	// IPv4 route with metric 0 and an IPv6 route with the kernel's default,
	// 1024; on Windows 0 is the system's default metric; macOS and FreeBSD
	// have no route metrics, and another value than 0 is an error matching
	// [ErrNotSupported].
	Metric int
}

// String formats r roughly as ip route does.
func (r Route) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Link != "" {
		s += " dev " + r.Link
	}
	if r.Table != 0 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// check validates r; needNexthop says whether Via or Link is required.
func (r Route) check(needNexthop bool) error {
	if !r.Dst.IsValid() {
		return errors.New("invalid destination")
	}
	if err := checkAddr(r.Dst.Addr()); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if r.Dst.Masked() != r.Dst {
		return fmt.Errorf("destination has host bits set (did you mean %s?)", r.Dst.Masked())
	}
	if r.Via.IsValid() {
		if err := checkAddr(r.Via); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		if r.Via.Is4() != r.Dst.Addr().Is4() {
			return errors.New("gateway and destination are of different address families")
		}
	} else if needNexthop && r.Link == "" {
		return errors.New("route needs a gateway (Via) or a link")
	}
	if r.Table < 0 || r.Metric < 0 {
		return errors.New("negative table or metric")
	}
	return nil
}

// mainTable is the main routing table, which Route.Table 0 means.
const mainTable = 254

// errNoDefault is why DefaultGateway fails on a host without a default
// route; it matches fs.ErrNotExist.
func errNoDefault(v6 bool) error {
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	return fmt.Errorf("no %s default route: %w", fam, fs.ErrNotExist)
}

// gwRoute is a default route as a system lists it.
type gwRoute struct {
	Via    netip.Addr // the gateway; invalid for a route through a link alone
	Link   int        // the output interface's index; 0: unknown
	Metric int        // lower preferred
}

// pickDefault returns, of the default routes a system listed, the one it
// prefers: the lowest metric, the first listed of equals. ok is false when
// there is none.
func pickDefault(rs []gwRoute) (best gwRoute, ok bool) {
	for _, r := range rs {
		if !r.Via.IsValid() && r.Link == 0 {
			continue // nothing to go by
		}
		if !ok || r.Metric < best.Metric {
			best, ok = r, true
		}
	}
	return best, ok
}
