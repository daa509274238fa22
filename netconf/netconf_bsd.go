//go:build darwin || freebsd

package netconf

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"unsafe"

	"golang.org/x/net/route"
	"golang.org/x/sys/unix"
)

// sysHandle is what a Handle holds on macOS and FreeBSD: the datagram
// sockets the interface ioctls go through (fd6 is -1 where IPv6 is off).
// Routes go through a routing socket of their own per call.
type sysHandle struct {
	fd4, fd6 int
}

// Close closes the sockets.
func (s *sysHandle) Close() {
	unix.Close(s.fd4)
	if s.fd6 >= 0 {
		unix.Close(s.fd6)
	}
}

// Open returns a Handle on the host's network stack. ns must be "": macOS
// and FreeBSD have no network namespaces (FreeBSD's VNET jails are not
// entered), and another value is an error matching [ErrNotSupported].
func Open(ns string) (*Handle, error) {
	if ns != "" {
		return nil, fmt.Errorf("netconf: open %s: %w", where(ns), notSupported(goos, "network namespaces are Linux's"))
	}
	fd4, err := socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return nil, fmt.Errorf("netconf: open an IPv4 socket: %w", err)
	}
	fd6, err := socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		fd6 = -1 // IPv6 addresses fail when asked for
	}
	return &Handle{sys: &sysHandle{fd4: fd4, fd6: fd6}, ns: ns}, nil
}

// ioctl issues the request req on fd with the structure b.
func ioctl(fd int, req uint, b []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&b[0])))
	if e != 0 {
		return e
	}
	return nil
}

// link looks a link up by name, mapping "not found" to ErrLinkNotFound.
func link(name string) (*net.Interface, error) {
	if name == "" {
		return nil, errors.New("empty link name")
	}
	ifi, err := net.InterfaceByName(name)
	if err == nil {
		return ifi, nil
	}
	all, lerr := net.Interfaces()
	if lerr == nil && !slices.ContainsFunc(all, func(i net.Interface) bool { return i.Name == name }) {
		return nil, ErrLinkNotFound
	}
	return nil, err
}

// onLink looks up the link name and runs fn on it with the handle locked,
// wrapping any error as "netconf: <what> in current netns: ...".
func (h *Handle) onLink(what, name string, fn func(*sysHandle, *net.Interface) error) error {
	s, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var ifi *net.Interface
		if ifi, err = link(name); err == nil {
			err = fn(s, ifi)
		}
	}
	if err != nil {
		return h.errorf(err, "%s", what)
	}
	return nil
}

// LinkIndex returns the interface index of the link name.
func (h *Handle) LinkIndex(name string) (int, error) {
	var idx int
	err := h.onLink("look up link "+name, name, func(_ *sysHandle, ifi *net.Interface) error {
		idx = ifi.Index
		return nil
	})
	return idx, err
}

// SetUp sets the link administratively up (ifconfig LINK up).
func (h *Handle) SetUp(link string) error {
	return h.onLink("set up "+link, link, func(s *sysHandle, ifi *net.Interface) error {
		return setFlag(s.fd4, ifi.Name, unix.IFF_UP, true)
	})
}

// SetDown sets the link administratively down (ifconfig LINK down).
func (h *Handle) SetDown(link string) error {
	return h.onLink("set down "+link, link, func(s *sysHandle, ifi *net.Interface) error {
		return setFlag(s.fd4, ifi.Name, unix.IFF_UP, false)
	})
}

// setFlag sets or clears an interface flag, leaving the others as they are.
func setFlag(fd int, name string, flag uint16, on bool) error {
	b := make([]byte, sizeofIfreq)
	if err := putName(b, name); err != nil {
		return err
	}
	if err := ioctl(fd, unix.SIOCGIFFLAGS, b); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	flags := *(*uint16)(unsafe.Pointer(&b[16]))
	want := flags &^ flag
	if on {
		want |= flag
	}
	if want == flags {
		return nil
	}
	*(*uint16)(unsafe.Pointer(&b[16])) = want
	if err := ioctl(fd, unix.SIOCSIFFLAGS, b); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// SetMTU sets the link's MTU. A link that already has it is left alone.
func (h *Handle) SetMTU(link string, mtu int) error {
	what := fmt.Sprintf("set MTU %d on %s", mtu, link)
	if mtu <= 0 {
		return h.errorf(errors.New("MTU must be positive"), "%s", what)
	}
	return h.onLink(what, link, func(s *sysHandle, ifi *net.Interface) error {
		if ifi.MTU == mtu {
			return nil
		}
		b := make([]byte, sizeofIfreq)
		if err := putName(b, ifi.Name); err != nil {
			return err
		}
		*(*int32)(unsafe.Pointer(&b[16])) = int32(mtu)
		return ioctl(s.fd4, unix.SIOCSIFMTU, b)
	})
}

// SetHardwareAddr sets the link's hardware (MAC) address (SIOCSIFLLADDR,
// as ifconfig LINK ether does). A link that already has it is left alone.
// Links without one (utun, tun) refuse it.
func (h *Handle) SetHardwareAddr(link string, mac net.HardwareAddr) error {
	what := fmt.Sprintf("set hardware address %s on %s", mac, link)
	if len(mac) == 0 {
		return h.errorf(errors.New("empty hardware address"), "%s", what)
	}
	return h.onLink(what, link, func(s *sysHandle, ifi *net.Interface) error {
		if bytes.Equal(ifi.HardwareAddr, mac) {
			return nil
		}
		b, err := ifreqLLAddr(ifi.Name, mac, unix.AF_LINK)
		if err != nil {
			return err
		}
		return ioctl(s.fd4, unix.SIOCSIFLLADDR, b)
	})
}

// DelLink destroys the cloned interface name (SIOCIFDESTROY, ifconfig
// NAME destroy). A link that does not exist is success; a utun device goes
// when its descriptor is closed, not with DelLink.
func (h *Handle) DelLink(name string) error {
	s, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		_, err = link(name)
		switch {
		case errors.Is(err, ErrLinkNotFound):
			err = nil
		case err == nil:
			b := make([]byte, sizeofIfreq)
			if err = putName(b, name); err == nil {
				err = ioctl(s.fd4, unix.SIOCIFDESTROY, b)
				if errors.Is(err, unix.ENXIO) {
					err = nil
				}
			}
		}
	}
	if err != nil {
		return h.errorf(err, "delete link %s", name)
	}
	return nil
}

// AddAddr assigns the address p (the address and the prefix length of the
// attached subnet) to link, like ifconfig LINK inet|inet6 P alias.
//
// On a point-to-point link (utun, tun) an IPv4 address is its own
// destination, as wg-quick does on macOS (ifconfig utun3 inet P ADDR
// alias), and the prefix's subnet is routed through the link. An IPv6
// address gets infinite lifetimes. An address that is already present with
// the same prefix length is success; one present with another prefix
// length, of either family, is an error wrapping EEXIST (the BSD kernels
// keep an address once per link).
func (h *Handle) AddAddr(link string, p netip.Prefix, opts ...AddrOption) error {
	var o addrOptions
	for _, opt := range opts {
		opt(&o)
	}
	return h.onLink(fmt.Sprintf("add address %s to %s", p, link), link, func(s *sysHandle, ifi *net.Interface) error {
		if err := checkPrefix(p); err != nil {
			return err
		}
		have, err := addrsOf(ifi, true)
		if err != nil {
			return err
		}
		present := false
		for _, q := range have {
			if q.Addr() == p.Addr() {
				if q.Bits() != p.Bits() {
					return fmt.Errorf("%s is already assigned: %w", q, unix.EEXIST)
				}
				present = true
			}
		}
		p2p := ifi.Flags&net.FlagPointToPoint != 0
		if !present {
			if err := addAddr(s, ifi, p, p2p, o); err != nil {
				return err
			}
		}
		if p2p && p.Addr().Is4() && p.Bits() < 32 {
			// A point-to-point address routes only its destination.
			return addRoute(newRtReq(Route{Dst: p.Masked(), Link: ifi.Name}, ifi.Index))
		}
		return nil
	})
}

func addAddr(s *sysHandle, ifi *net.Interface, p netip.Prefix, p2p bool, o addrOptions) error {
	l := layout()
	mask := maskAddr(p.Bits(), p.Addr())
	if p.Addr().Is4() {
		var dst netip.Addr // the broadcast address, or the destination
		switch {
		case p2p:
			dst = p.Addr()
		case p.Bits() < 31:
			dst = broadcast(p)
		}
		b, err := l.aliasReq4(ifi.Name, p.Addr(), dst, mask)
		if err != nil {
			return err
		}
		if err := ioctl(s.fd4, l.siocAIFADDR, b); err != nil {
			return fmt.Errorf("SIOCAIFADDR: %w", err)
		}
		return nil
	}
	if s.fd6 < 0 {
		return errors.New("no IPv6 socket: is IPv6 off?")
	}
	var flags uint32
	if o.noDAD {
		flags |= in6IffNodad
	}
	b, err := l.aliasReq6(ifi.Name, p.Addr(), mask, flags)
	if err != nil {
		return err
	}
	if err := ioctl(s.fd6, l.siocAIFADDR6, b); err != nil {
		return fmt.Errorf("SIOCAIFADDR_IN6: %w", err)
	}
	return nil
}

// DelAddr removes the address p from link, like ifconfig LINK inet|inet6
// ADDR -alias; with it goes the subnet route AddAddr added on a
// point-to-point link. An address that is not there is success.
func (h *Handle) DelAddr(link string, p netip.Prefix) error {
	return h.onLink(fmt.Sprintf("delete address %s from %s", p, link), link, func(s *sysHandle, ifi *net.Interface) error {
		if err := checkPrefix(p); err != nil {
			return err
		}
		if ifi.Flags&net.FlagPointToPoint != 0 && p.Addr().Is4() && p.Bits() < 32 {
			q := newRtReq(Route{Dst: p.Masked(), Link: ifi.Name}, ifi.Index)
			if err := routeMsg(unix.RTM_DELETE, q); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
		have, err := addrsOf(ifi, true)
		if err != nil {
			return err
		}
		if !slices.Contains(have, p) {
			return nil
		}
		fd, req, name := s.fd4, uint(unix.SIOCDIFADDR), "SIOCDIFADDR"
		if p.Addr().Is6() {
			fd, req, name = s.fd6, siocDIFADDR6, "SIOCDIFADDR_IN6"
		}
		b, err := layout().ifreqAddr(ifi.Name, p.Addr())
		if err != nil {
			return err
		}
		if err := ioctl(fd, req, b); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Addrs returns the IPv4 and IPv6 addresses of link, each with the prefix
// length it was added with, IPv4 first. IPv6 link-local addresses
// (fe80::/10), which the kernel makes by itself, are left out.
func (h *Handle) Addrs(link string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := h.onLink("list addresses of "+link, link, func(_ *sysHandle, ifi *net.Interface) error {
		var err error
		out, err = addrsOf(ifi, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// addrsOf lists the addresses of ifi, IPv6 link-local ones only if
// linkLocal, IPv4 first.
func addrsOf(ifi *net.Interface, linkLocal bool) ([]netip.Prefix, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	return ipNets(addrs, linkLocal), nil
}

// AddRoute adds the route r to the main table through the routing socket,
// like route add. A route that is already there (the same destination and
// gateway, or the same link) is success; a different one to the same
// destination is not replaced, and AddRoute fails with an error wrapping
// EEXIST that describes it. r.Table must be 0 (or 254, main) and r.Metric
// 0: anything else matches [ErrNotSupported]. An IPv6 link-local gateway
// (fe80::/10) needs r.Link, whose index is its scope.
func (h *Handle) AddRoute(r Route) error {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = checkBSDRoute(r, true)
	}
	if err == nil {
		var q rtReq
		if q, err = bsdRtReq(r); err == nil {
			err = addRoute(q)
		}
	}
	if err != nil {
		return h.errorf(err, "add route %s", r)
	}
	return nil
}

// addRoute adds q, and succeeds when the same route is there.
func addRoute(q rtReq) error {
	err := routeMsg(unix.RTM_ADD, q)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	es, lerr := dumpRoutes(q.Dst.Is6())
	if lerr != nil {
		return err
	}
	for _, e := range es {
		if sameRoute(e, q) {
			return nil
		}
	}
	for _, e := range es {
		if e.Dst.Addr() == q.Dst && (q.Host() || e.Dst.Bits() != e.Dst.Addr().BitLen()) {
			return fmt.Errorf("a different route exists (%s): %w", describeEntry(e), err)
		}
	}
	return err
}

// describeEntry formats a listed route for an error message.
func describeEntry(e rtEntry) string {
	s := e.Dst.String()
	if e.Gateway.IsValid() {
		s += " via " + e.Gateway.String()
	}
	if ifi, err := net.InterfaceByIndex(e.Link); err == nil {
		s += " dev " + ifi.Name
	} else if e.Link != 0 {
		s += fmt.Sprintf(" dev #%d", e.Link)
	}
	return s
}

// DelRoute deletes the route r from the main table, like route delete; a
// route that is not there is success. Via and Link, when given, must match.
func (h *Handle) DelRoute(r Route) error {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = checkBSDRoute(r, false)
	}
	if err == nil {
		var q rtReq
		if q, err = bsdRtReq(r); err == nil {
			err = routeMsg(unix.RTM_DELETE, q)
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

// checkBSDRoute checks r, and that it asks only for what the BSD routing
// table has.
func checkBSDRoute(r Route, needNexthop bool) error {
	if err := r.check(needNexthop); err != nil {
		return err
	}
	if r.Table != 0 && r.Table != mainTable {
		return notSupported(goos, fmt.Sprintf("routing table %d (only the main table)", r.Table))
	}
	if r.Metric != 0 {
		return notSupported(goos, "route metrics")
	}
	if r.Via.Is6() && r.Via.IsLinkLocalUnicast() && r.Link == "" {
		return fmt.Errorf("the link-local gateway %s needs a link", r.Via)
	}
	return nil
}

// bsdRtReq builds the routing socket's request for r, looking its link up.
func bsdRtReq(r Route) (rtReq, error) {
	var idx int
	if r.Link != "" {
		ifi, err := link(r.Link)
		if err != nil {
			return rtReq{}, err
		}
		idx = ifi.Index
	}
	return newRtReq(r, idx), nil
}

// sockaddr converts an address for golang.org/x/net/route; an IPv6
// link-local one gets the link scope in its bytes (embedScope).
func sockaddr(a netip.Addr, scope int) route.Addr {
	if a.Is4() {
		return &route.Inet4Addr{IP: a.As4()}
	}
	return &route.Inet6Addr{IP: embedScope(a, scope)}
}

// linkAddr is the sockaddr_dl naming the interface of index idx. It is
// written as raw bytes (a DefaultAddr is marshalled as it is) because
// route.LinkAddr makes one too short for FreeBSD 13 (linkSockaddr).
func linkAddr(idx int) route.Addr {
	return &route.DefaultAddr{Raw: linkSockaddr(idx)}
}

// routeMsg writes one request (RTM_ADD, RTM_DELETE) for q to a routing
// socket of its own; the kernel's answer to it is the write's error.
func routeMsg(typ int, q rtReq) error {
	b, err := routeMessage(typ, q)
	if err != nil {
		return err
	}
	fd, err := socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("routing socket: %w", err)
	}
	defer unix.Close(fd)
	// Nothing is read from the socket: not even the echo of the request.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_USELOOPBACK, 0); err != nil {
		return fmt.Errorf("routing socket: %w", err)
	}
	if _, err := unix.Write(fd, b); err != nil {
		return err
	}
	return nil
}

// routeMessage builds the routing socket message (struct rt_msghdr and the
// sockaddrs rtm_addrs names) of type typ for q.
func routeMessage(typ int, q rtReq) ([]byte, error) {
	flags := unix.RTF_UP | unix.RTF_STATIC
	addrs := make([]route.Addr, unix.RTAX_NETMASK+1, unix.RTAX_IFP+1)
	addrs[unix.RTAX_DST] = sockaddr(q.Dst, 0)
	switch {
	case q.Gateway.IsValid():
		flags |= unix.RTF_GATEWAY
		addrs[unix.RTAX_GATEWAY] = sockaddr(q.Gateway, q.Link)
		if q.Link != 0 {
			addrs = addrs[:unix.RTAX_IFP+1]
			addrs[unix.RTAX_IFP] = linkAddr(q.Link)
		}
	case q.Link != 0:
		addrs[unix.RTAX_GATEWAY] = linkAddr(q.Link)
	}
	if q.Host() {
		flags |= unix.RTF_HOST
	} else {
		addrs[unix.RTAX_NETMASK] = sockaddr(q.Mask, 0)
	}
	m := route.RouteMessage{
		Version: unix.RTM_VERSION,
		Type:    typ,
		Flags:   flags,
		ID:      uintptr(os.Getpid()),
		Seq:     1,
		Addrs:   addrs,
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("routing message: %w", err)
	}
	return b, nil
}

// dumpRoutes lists the IPv4 or IPv6 routing table.
func dumpRoutes(v6 bool) ([]rtEntry, error) {
	af := unix.AF_INET
	if v6 {
		af = unix.AF_INET6
	}
	b, err := route.FetchRIB(af, route.RIBTypeRoute, 0)
	if err != nil {
		return nil, err
	}
	msgs, err := route.ParseRIB(route.RIBTypeRoute, b)
	if err != nil {
		return nil, fmt.Errorf("parse the routing table: %w", err)
	}
	var out []rtEntry
	for _, m := range msgs {
		rm, ok := m.(*route.RouteMessage)
		if !ok || len(rm.Addrs) <= unix.RTAX_DST {
			continue
		}
		dst, ok := inetAddr(rm.Addrs[unix.RTAX_DST])
		if !ok {
			continue
		}
		var mask []byte
		if len(rm.Addrs) > unix.RTAX_NETMASK && rm.Addrs[unix.RTAX_NETMASK] != nil {
			mask = maskBytes(rm.Addrs[unix.RTAX_NETMASK], dst.BitLen()/8)
		}
		p, ok := entryDst(dst, mask, rm.Flags&unix.RTF_HOST != 0)
		if !ok {
			continue
		}
		e := rtEntry{Dst: p, Link: rm.Index, Flags: rm.Flags}
		if len(rm.Addrs) > unix.RTAX_GATEWAY && rm.Flags&unix.RTF_GATEWAY != 0 {
			if gw, ok := inetAddr(rm.Addrs[unix.RTAX_GATEWAY]); ok {
				e.Gateway = gw
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// inetAddr converts an IPv4 or IPv6 address of a routing message.
func inetAddr(a route.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *route.Inet4Addr:
		return netip.AddrFrom4(a.IP), true
	case *route.Inet6Addr:
		return netip.AddrFrom16(a.IP), true
	}
	return netip.Addr{}, false
}

// maskBytes returns a netmask of a routing message as n bytes.
func maskBytes(a route.Addr, n int) []byte {
	switch a := a.(type) {
	case *route.Inet4Addr:
		return a.IP[:]
	case *route.Inet6Addr:
		return a.IP[:]
	case *route.DefaultAddr:
		// A netmask the kernel cut short: the missing bytes are zero.
		b := make([]byte, n)
		if len(a.Raw) > 2 {
			copy(b, a.Raw[2:])
		}
		return b
	}
	return make([]byte, n)
}

// TableEmpty reports whether a routing table has no routes of the family.
// Only the main table (0 or 254) exists on macOS and FreeBSD: another is an
// error matching [ErrNotSupported].
func (h *Handle) TableEmpty(table int, v6 bool) (bool, error) {
	_, err := h.lock()
	defer h.mu.Unlock()
	if err == nil && table != 0 && table != mainTable {
		err = notSupported(goos, fmt.Sprintf("routing table %d (only the main table)", table))
	}
	var es []rtEntry
	if err == nil {
		es, err = dumpRoutes(v6)
	}
	if err != nil {
		return false, h.errorf(err, "list table %d", table)
	}
	return len(es) == 0, nil
}

// DefaultGateway returns the gateway and the link of the default route for
// IPv4, or for IPv6 with v6, from the routing table (macOS's routes scoped
// to one interface left out). A default route through a link without a
// gateway gives the zero Addr and the link. A host without a default route
// is an error matching fs.ErrNotExist.
func (h *Handle) DefaultGateway(v6 bool) (netip.Addr, string, error) {
	_, err := h.lock()
	defer h.mu.Unlock()
	var es []rtEntry
	if err == nil {
		es, err = dumpRoutes(v6)
	}
	if err != nil {
		return netip.Addr{}, "", h.errorf(err, "look up the default route")
	}
	best, ok := pickDefault(defaultRoutes(es, v6, rtfIfscope))
	if !ok {
		return netip.Addr{}, "", h.errorf(errNoDefault(v6), "look up the default route")
	}
	var name string
	if best.Link != 0 {
		ifi, err := net.InterfaceByIndex(best.Link)
		if err != nil {
			return netip.Addr{}, "", h.errorf(err, "look up the default route's link #%d", best.Link)
		}
		name = ifi.Name
	}
	return best.Via, name, nil
}
