// Package netconf configures network links, addresses, routes and bridges
// through rtnetlink, in the current or in another network namespace.
//
// # Namespaces
//
// A [Handle] is bound to one network namespace when it is opened: [Open]
// creates a netlink socket inside that namespace and every request goes
// through that socket. The calling goroutine never enters the namespace, so a
// program can configure any number of namespaces from one goroutine while its
// own threads stay where they are. The namespace is named as for
// internal/inns: "" is the namespace of the calling thread, a reference
// containing "/" is a path (for example /proc/1234/ns/net), and anything else
// is a name made by `ip netns add`, under /var/run/netns.
//
// # Idempotence
//
// Every method describes a desired state and succeeds when that state already
// holds, so calling it twice is the same as calling it once:
//
//   - Set* methods and [Handle.AddBridge] leave a link that already has the
//     wanted setting alone.
//   - Add* methods succeed when exactly the wanted object is already present,
//     and fail with an error wrapping EEXIST (errors.Is(err, fs.ErrExist))
//     when a different object occupies its place: an IPv6 address with
//     another prefix length, or a route to the same destination, table and
//     metric with another gateway or link. They never replace what is there.
//     AddBridge fails with [ErrNotBridge] when the name belongs to another
//     kind of link.
//   - Del* and [Handle.DetachFromBridge] succeed when the object is already
//     absent.
//
// Idempotence is about the kernel state, not about atomicity: a Handle
// serializes its own calls, but another process may change the same
// namespace between the check and the change that some methods make.
//
// # Errors
//
// Errors name the operation, the link and the namespace, and wrap the
// underlying cause. A link that does not exist gives an error matching
// [ErrLinkNotFound] with errors.Is, except in [Handle.DelLink], for which an
// absent link is success. Kernel errors wrap the syscall.Errno the kernel
// returned.
package netconf

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// ErrLinkNotFound is matched (with errors.Is) by errors about a link that
// does not exist in the handle's namespace.
var ErrLinkNotFound = errors.New("link not found")

// ErrNotBridge is matched (with errors.Is) by errors about a link that exists
// but is not a Linux bridge where a bridge is required: [Handle.AddBridge] on
// a name taken by another kind of link, or [Handle.AttachToBridge] to a link
// that is not a bridge.
var ErrNotBridge = errors.New("not a bridge")

// ErrClosed is matched (with errors.Is) by errors from a Handle after Close.
var ErrClosed = errors.New("handle is closed")

// dumpRetries bounds how often a netlink dump interrupted by a concurrent
// change (NLM_F_DUMP_INTR) is repeated before the error is returned.
const dumpRetries = 5

// Handle configures links in one network namespace, without moving the
// calling goroutine into it. It is safe for concurrent use; its calls are
// serialized. Close it when done.
type Handle struct {
	mu sync.Mutex
	nl *netlink.Handle // nil once closed
	ns string          // as given to Open, for error messages
}

// Open returns a Handle on the network namespace ns: "" is the calling
// thread's namespace, a reference containing "/" is a path to a namespace
// file, anything else is a name under /var/run/netns (see inns.Path).
//
// The netlink socket is created by a helper goroutine on a locked thread that
// enters the namespace and leaves it again (see inns.DoHandle); the calling
// goroutine does not move, and a thread that could not return is destroyed
// rather than reused.
func Open(ns string) (*Handle, error) {
	var (
		nh  *netlink.Handle
		err error
	)
	if ns == "" {
		// netns.None() makes the socket in the current thread's namespace
		// without any setns.
		nh, err = netlink.NewHandleAt(netns.None(), unix.NETLINK_ROUTE)
	} else {
		var target netns.NsHandle
		target, err = inns.Open(ns)
		if err != nil {
			return nil, fmt.Errorf("netconf: open %s: %w", where(ns), err)
		}
		defer target.Close()
		err = inns.DoHandle(target, func() error {
			var err error
			nh, err = netlink.NewHandleAt(netns.None(), unix.NETLINK_ROUTE)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("netconf: open netlink socket in %s: %w", where(ns), err)
	}
	return &Handle{nl: nh, ns: ns}, nil
}

// Close releases the handle's netlink socket. Later calls on the handle fail
// with [ErrClosed]. Close may be called more than once.
func (h *Handle) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
}

// where describes a namespace reference for error messages.
func where(ns string) string {
	if ns == "" {
		return "current netns"
	}
	return "netns " + ns
}

// errorf wraps err with "netconf: <what> in <namespace>: ".
func (h *Handle) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("netconf: %s in %s: %w", fmt.Sprintf(format, args...), where(h.ns), err)
}

// lock locks h and returns its netlink handle, or ErrClosed. The caller
// unlocks h.mu. Using a closed netlink.Handle is dangerous: with its sockets
// gone it silently falls back to a socket in the calling thread's namespace.
func (h *Handle) lock() (*netlink.Handle, error) {
	h.mu.Lock()
	if h.nl == nil {
		return nil, ErrClosed
	}
	return h.nl, nil
}

// retryDump repeats f while it reports an interrupted dump.
func retryDump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range dumpRetries {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return v, err
}

// link looks a link up by name, mapping "not found" to ErrLinkNotFound.
func link(nl *netlink.Handle, name string) (netlink.Link, error) {
	if name == "" {
		return nil, errors.New("empty link name")
	}
	l, err := retryDump(func() (netlink.Link, error) { return nl.LinkByName(name) })
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, ErrLinkNotFound
		}
		return nil, err
	}
	return l, nil
}

// LinkIndex returns the interface index of the link name.
func (h *Handle) LinkIndex(name string) (int, error) {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l netlink.Link
		if l, err = link(nl, name); err == nil {
			return l.Attrs().Index, nil
		}
	}
	return 0, h.errorf(err, "look up link %s", name)
}

// SetUp sets the link administratively up (ip link set LINK up).
func (h *Handle) SetUp(link string) error {
	return h.onLink("set up "+link, link, func(nl *netlink.Handle, l netlink.Link) error {
		return nl.LinkSetUp(l)
	})
}

// SetDown sets the link administratively down (ip link set LINK down).
func (h *Handle) SetDown(link string) error {
	return h.onLink("set down "+link, link, func(nl *netlink.Handle, l netlink.Link) error {
		return nl.LinkSetDown(l)
	})
}

// SetMTU sets the link's MTU. A link that already has it is left alone.
func (h *Handle) SetMTU(link string, mtu int) error {
	what := fmt.Sprintf("set MTU %d on %s", mtu, link)
	if mtu <= 0 {
		return h.errorf(errors.New("MTU must be positive"), "%s", what)
	}
	return h.onLink(what, link, func(nl *netlink.Handle, l netlink.Link) error {
		if l.Attrs().MTU == mtu {
			return nil
		}
		return nl.LinkSetMTU(l, mtu)
	})
}

// SetHardwareAddr sets the link's hardware (MAC) address. A link that already
// has it is left alone, so this also succeeds on links that cannot change
// their address while up, provided the address is unchanged.
func (h *Handle) SetHardwareAddr(link string, mac net.HardwareAddr) error {
	what := fmt.Sprintf("set hardware address %s on %s", mac, link)
	if len(mac) == 0 {
		return h.errorf(errors.New("empty hardware address"), "%s", what)
	}
	return h.onLink(what, link, func(nl *netlink.Handle, l netlink.Link) error {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) {
			return nil
		}
		return nl.LinkSetHardwareAddr(l, mac)
	})
}

// onLink looks up the link name and runs fn on it with the handle locked,
// wrapping any error as "netconf: <what> in <namespace>: ...".
func (h *Handle) onLink(what, name string, fn func(*netlink.Handle, netlink.Link) error) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l netlink.Link
		if l, err = link(nl, name); err == nil {
			err = fn(nl, l)
		}
	}
	if err != nil {
		return h.errorf(err, "%s", what)
	}
	return nil
}

// AddrOption modifies how [Handle.AddAddr] adds an address.
type AddrOption func(*addrOptions)

type addrOptions struct {
	noDAD bool
}

// NoDAD adds an IPv6 address with IFA_F_NODAD, skipping duplicate address
// detection, so that the address is usable at once instead of "tentative"
// for about a second. It has no effect on IPv4 addresses.
func NoDAD() AddrOption {
	return func(o *addrOptions) { o.noDAD = true }
}

// AddAddr assigns the address p (for example 192.0.2.1/24; the address and
// the prefix length of the attached subnet) to link, like ip addr add.
//
// An address that is already present with the same prefix length is success;
// its flags and lifetimes are left as they are. An IPv6 address that is
// present with another prefix length is an error wrapping EEXIST (the kernel
// allows an IPv6 address only once per link; IPv4 allows the same address
// with different prefix lengths, and AddAddr then adds another entry). For
// IPv4 the broadcast address is set from the prefix, as netlink does.
func (h *Handle) AddAddr(link string, p netip.Prefix, opts ...AddrOption) error {
	var o addrOptions
	for _, opt := range opts {
		opt(&o)
	}
	return h.onLink(fmt.Sprintf("add address %s to %s", p, link), link, func(nl *netlink.Handle, l netlink.Link) error {
		addr, err := nlAddr(p)
		if err != nil {
			return err
		}
		if o.noDAD && p.Addr().Is6() {
			addr.Flags |= unix.IFA_F_NODAD
		}
		err = nl.AddrAdd(l, addr)
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
		// Present already: fine if with the same prefix length.
		have, lerr := addrsOf(nl, l, true)
		if lerr != nil {
			return err
		}
		for _, q := range have {
			if q == p {
				return nil
			}
		}
		for _, q := range have {
			if q.Addr() == p.Addr() {
				return fmt.Errorf("%s is already assigned: %w", q, err)
			}
		}
		return err
	})
}

// DelAddr removes the address p (address and prefix length, as given to
// AddAddr) from link, like ip addr del. An address that is not there is
// success. As with ip addr del, removing a primary IPv4 address also removes
// the secondary addresses of its subnet unless the namespace's
// net.ipv4.conf.*.promote_secondaries sysctl is set.
func (h *Handle) DelAddr(link string, p netip.Prefix) error {
	return h.onLink(fmt.Sprintf("delete address %s from %s", p, link), link, func(nl *netlink.Handle, l netlink.Link) error {
		addr, err := nlAddr(p)
		if err != nil {
			return err
		}
		err = nl.AddrDel(l, addr)
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil
		}
		return err
	})
}

// Addrs returns the IPv4 and IPv6 addresses of link, each with the prefix
// length it was added with, IPv4 first, in the kernel's order. IPv6
// link-local addresses (fe80::/10), which the kernel makes by itself, are
// left out; everything else is included, among them loopback addresses and
// addresses that are still tentative. A point-to-point address is reported as
// its local address with a full-length prefix.
func (h *Handle) Addrs(link string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := h.onLink("list addresses of "+link, link, func(nl *netlink.Handle, l netlink.Link) error {
		var err error
		out, err = addrsOf(nl, l, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// addrsOf lists the addresses of l, IPv6 link-local ones only if linkLocal.
func addrsOf(nl *netlink.Handle, l netlink.Link, linkLocal bool) ([]netip.Prefix, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return nl.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !linkLocal && ip.Is6() && ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// checkAddr rejects prefixes netlink would mangle.
func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("invalid address")
	case a.Is4In6():
		return errors.New("IPv4-mapped IPv6 addresses are not supported; use the IPv4 form")
	case a.Zone() != "":
		return errors.New("addresses with a zone are not supported; name the link instead")
	}
	return nil
}

// ipNet converts a valid prefix to a net.IPNet keeping the host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// nlAddr converts an interface address to netlink's form.
func nlAddr(p netip.Prefix) (*netlink.Addr, error) {
	if !p.IsValid() {
		return nil, errors.New("invalid prefix")
	}
	if err := checkAddr(p.Addr()); err != nil {
		return nil, err
	}
	return &netlink.Addr{IPNet: ipNet(p)}, nil
}

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
	// Table is the routing table; 0 means the main table (254).
	Table int
	// Metric is the route's priority, lower preferred. 0 adds an IPv4 route
	// with metric 0 and an IPv6 route with the kernel's default, 1024.
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

// table returns the table number the kernel uses for r.
func (r Route) table() int {
	if r.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return r.Table
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

// AddBridge creates the Linux bridge name if it does not exist and sets it
// up. A bridge of that name that exists already is set up and is otherwise
// left alone; a link of that name that is not a bridge is an error matching
// [ErrNotBridge].
func (h *Handle) AddBridge(name string) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = addBridge(nl, name)
	}
	if err != nil {
		return h.errorf(err, "add bridge %s", name)
	}
	return nil
}

func addBridge(nl *netlink.Handle, name string) error {
	l, err := link(nl, name)
	if errors.Is(err, ErrLinkNotFound) {
		attrs := netlink.NewLinkAttrs() // the zero LinkAttrs would ask for txqueuelen 0
		attrs.Name = name
		err = nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		// Made now, or by someone else meanwhile: look again.
		l, err = link(nl, name)
	}
	if err != nil {
		return err
	}
	if err := isBridge(l); err != nil {
		return err
	}
	return nl.LinkSetUp(l)
}

// isBridge reports an error matching ErrNotBridge unless l is a bridge.
func isBridge(l netlink.Link) error {
	if l.Type() != "bridge" {
		return fmt.Errorf("%s is a %s link: %w", l.Attrs().Name, l.Type(), ErrNotBridge)
	}
	return nil
}

// DelLink deletes the link name, like ip link del. A link that does not exist
// is success. Deleting one end of a veth pair deletes the other end too.
func (h *Handle) DelLink(name string) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l netlink.Link
		l, err = link(nl, name)
		switch {
		case errors.Is(err, ErrLinkNotFound):
			err = nil
		case err == nil:
			err = nl.LinkDel(l)
			if errors.Is(err, unix.ENODEV) {
				err = nil
			}
		}
	}
	if err != nil {
		return h.errorf(err, "delete link %s", name)
	}
	return nil
}

// AttachToBridge makes link a port of bridge (ip link set LINK master
// BRIDGE). A link already attached to that bridge is success; a link attached
// to another master is moved. A bridge that is not a bridge is an error
// matching [ErrNotBridge].
func (h *Handle) AttachToBridge(link, bridge string) error {
	return h.onLink(fmt.Sprintf("attach %s to bridge %s", link, bridge), link, func(nl *netlink.Handle, l netlink.Link) error {
		b, err := linkNamed(nl, bridge, "bridge")
		if err != nil {
			return err
		}
		if err := isBridge(b); err != nil {
			return err
		}
		if l.Attrs().MasterIndex == b.Attrs().Index {
			return nil
		}
		return nl.LinkSetMasterByIndex(l, b.Attrs().Index)
	})
}

// linkNamed is link with the role of the link in the error.
func linkNamed(nl *netlink.Handle, name, role string) (netlink.Link, error) {
	l, err := link(nl, name)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", role, name, err)
	}
	return l, nil
}

// DetachFromBridge removes link from the bridge it is a port of (ip link set
// LINK nomaster). A link that is not attached to a bridge is success; a link
// enslaved to a master of another kind (a bond, a VRF) is left alone.
func (h *Handle) DetachFromBridge(link string) error {
	return h.onLink("detach "+link+" from its bridge", link, func(nl *netlink.Handle, l netlink.Link) error {
		mi := l.Attrs().MasterIndex
		if mi == 0 {
			return nil
		}
		m, err := nl.LinkByIndex(mi)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil // the master went away meanwhile
			}
			return err
		}
		if m.Type() != "bridge" {
			return nil
		}
		return nl.LinkSetNoMaster(l)
	})
}

// AddVeth creates a veth pair: name in the handle's namespace and peer in
// the namespace peerNS ("" for the same one; a name or a path as for Open).
// Both ends stay down. A link called name that already exists is an error
// matching fs.ErrExist.
func (h *Handle) AddVeth(name, peer, peerNS string) error {
	var target netns.NsHandle = -1
	if peerNS != "" {
		t, err := inns.Open(peerNS)
		if err != nil {
			return h.errorf(err, "add veth %s", name)
		}
		defer t.Close()
		target = t
	}
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peer}
		if target >= 0 {
			veth.PeerNamespace = netlink.NsFd(int(target))
		}
		err = nl.LinkAdd(veth)
	}
	if err != nil {
		return h.errorf(err, "add veth %s (peer %s)", name, peer)
	}
	return nil
}

// Rule is a policy routing rule, the kind wg-quick adds to send everything
// through a tunnel except the tunnel's own packets.
type Rule struct {
	V6                bool   // an IPv6 rule (else IPv4)
	Priority          int    // 0: the kernel picks
	Table             int    // look up this table
	Mark              uint32 // match packets carrying this fwmark (0: any)
	Invert            bool   // "not": match packets that do not match
	SuppressPrefixlen int    // with a value > -1, ignore routes this short or shorter (-1: off)
}

func (r Rule) String() string {
	s := fmt.Sprintf("table %d", r.Table)
	if r.Mark != 0 {
		s = fmt.Sprintf("fwmark %#x %s", r.Mark, s)
		if r.Invert {
			s = "not " + s
		}
	}
	if r.SuppressPrefixlen >= 0 {
		s += fmt.Sprintf(" suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	if r.V6 {
		return "-6 " + s
	}
	return s
}

func (r Rule) nl() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.V6 {
		nr.Family = unix.AF_INET6
	}
	if r.Priority > 0 {
		nr.Priority = r.Priority
	}
	nr.Table = r.Table
	nr.Mark = r.Mark
	nr.Invert = r.Invert
	nr.SuppressPrefixlen = r.SuppressPrefixlen
	return nr
}

// findRule reports whether a rule with r's selector and action exists.
func findRule(nl *netlink.Handle, r Rule) (bool, error) {
	want := r.nl()
	rules, err := nl.RuleList(want.Family)
	if err != nil {
		return false, err
	}
	for _, x := range rules {
		if x.Table == want.Table && x.Mark == want.Mark && x.Invert == want.Invert &&
			x.SuppressPrefixlen == want.SuppressPrefixlen && (r.Priority == 0 || x.Priority == r.Priority) {
			return true, nil
		}
	}
	return false, nil
}

// AddRule adds a policy routing rule (ip rule add). A rule that is already
// there is success.
func (h *Handle) AddRule(r Rule) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	var found bool
	if err == nil {
		found, err = findRule(nl, r)
	}
	if err == nil && !found {
		err = nl.RuleAdd(r.nl())
	}
	if err != nil {
		return h.errorf(err, "add rule %s", r)
	}
	return nil
}

// DelRule deletes a policy routing rule (ip rule del). A rule that is not
// there is success.
func (h *Handle) DelRule(r Rule) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	for err == nil {
		var found bool
		if found, err = findRule(nl, r); err != nil || !found {
			break
		}
		err = nl.RuleDel(r.nl())
	}
	if err != nil {
		return h.errorf(err, "delete rule %s", r)
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
