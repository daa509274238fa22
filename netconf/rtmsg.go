package netconf

import (
	"encoding/binary"
	"net/netip"
)

// sizeofSockaddrDl is the length given to the link-level sockaddr (struct
// sockaddr_dl) that names an interface in a route message: the gateway of
// an interface route, or RTA_IFP. It is macOS's sizeof(struct sockaddr_dl).
// FreeBSD 13 refuses a gateway shorter than its struct sockaddr_dl_short,
// 16 bytes ("gw sdl_len too small", net/rtsock.c), and golang.org/x/net/route's
// LinkAddr writes 8; route(8) sends the interface's whole sockaddr_dl.
const sizeofSockaddrDl = 20

// afLink is AF_LINK, the same on macOS and FreeBSD.
const afLink = 18

// linkSockaddr is a struct sockaddr_dl naming the interface of index idx
// and nothing else: sdl_len, sdl_family, sdl_index (in the machine's order,
// little-endian on amd64 and arm64), then zeros (no type, name or address).
func linkSockaddr(idx int) []byte {
	b := make([]byte, sizeofSockaddrDl)
	b[0], b[1] = sizeofSockaddrDl, afLink
	binary.LittleEndian.PutUint16(b[2:4], uint16(idx))
	return b
}

// embedScope returns the 16 bytes of the IPv6 address a as the macOS and
// FreeBSD kernels take a link-local one in a route message: with the index
// of its link, scope, in bytes 2 and 3, big-endian (KAME's embedded scope,
// as route(8) writes fe80::1%em0). Other addresses, and scope 0, are left
// as they are.
func embedScope(a netip.Addr, scope int) [16]byte {
	b := a.As16()
	if scope > 0 && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()) {
		binary.BigEndian.PutUint16(b[2:4], uint16(scope))
	}
	return b
}

// rtReq is a route as a BSD routing socket takes it (RTM_ADD, RTM_DELETE),
// in plain values, so that building it is tested on every system; the
// macOS and FreeBSD code turns it into golang.org/x/net/route's message.
type rtReq struct {
	Dst  netip.Addr
	Mask netip.Addr // invalid for a host route (RTF_HOST, no netmask)
	// Gateway is the next hop (RTF_GATEWAY); invalid for a route through
	// a link, whose gateway is the link (a sockaddr_dl of index Link).
	Gateway netip.Addr
	// Link is the interface index: the gateway of an interface route, or
	// with a Gateway the interface to use (RTA_IFP); 0: none.
	Link int
}

// Host reports whether q is a host route (RTF_HOST).
func (q rtReq) Host() bool { return !q.Mask.IsValid() }

// newRtReq builds the request for r, a checked route, with link the index
// of r.Link (0 when r has none).
func newRtReq(r Route, link int) rtReq {
	q := rtReq{Dst: r.Dst.Addr(), Gateway: r.Via, Link: link}
	if r.Dst.Bits() < r.Dst.Addr().BitLen() {
		q.Mask = maskAddr(r.Dst.Bits(), r.Dst.Addr())
	}
	return q
}

// rtEntry is a route a BSD routing table lists.
type rtEntry struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: a route through a link
	Link    int        // the output interface's index
	Flags   int
}

// entryDst returns a listed route's destination: dst with the netmask mask
// (nil when the message has none), or a host route's full length.
func entryDst(dst netip.Addr, mask []byte, host bool) (netip.Prefix, bool) {
	if host {
		return netip.PrefixFrom(dst, dst.BitLen()), true
	}
	if mask == nil {
		// No netmask: a network route with an all-zero mask, the
		// default route (0.0.0.0 or ::), is listed so by the kernels.
		if dst.IsUnspecified() {
			return netip.PrefixFrom(dst, 0), true
		}
		return netip.PrefixFrom(dst, dst.BitLen()), true
	}
	bits, ok := maskBits(mask)
	if !ok || bits > dst.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(dst, bits).Masked(), true
}

// sameRoute reports whether a listed route is the route q asks for: the
// same destination, and the same gateway, or the same link for an
// interface route (and for a route with both, the same link too).
func sameRoute(e rtEntry, q rtReq) bool {
	bits := q.Dst.BitLen()
	if !q.Host() {
		bits, _ = maskBits(q.Mask.AsSlice())
	}
	if e.Dst != netip.PrefixFrom(q.Dst, bits) {
		return false
	}
	if q.Gateway.IsValid() {
		return e.Gateway == q.Gateway && (q.Link == 0 || e.Link == q.Link)
	}
	return !e.Gateway.IsValid() && e.Link == q.Link
}

// defaultRoutes returns the default routes among a table's entries, as
// pickDefault takes them; skip leaves out those with any of its flags
// (macOS's interface-scoped defaults, RTF_IFSCOPE).
func defaultRoutes(es []rtEntry, v6 bool, skip int) []gwRoute {
	var out []gwRoute
	for _, e := range es {
		if e.Dst.Bits() != 0 || e.Dst.Addr().Is6() != v6 || e.Flags&skip != 0 {
			continue
		}
		out = append(out, gwRoute{Via: e.Gateway, Link: e.Link})
	}
	return out
}
