package responder

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/tapwire/tapwire/packet"
)

// Stats counts what a Responder did. Every call to ReplyIP or ReplyEthernet
// increments exactly one counter.
type Stats struct {
	// EchoReplies counts ICMP and ICMPv6 echo replies produced.
	EchoReplies uint64
	// ARPReplies counts ARP replies produced.
	ARPReplies uint64
	// NAReplies counts IPv6 neighbour advertisements produced.
	NAReplies uint64
	// Ignored counts well-formed packets that were not answered: other
	// protocols, other addresses, the device's own address, duplicate
	// address detection probes, VLAN-tagged frames, fragments, packets
	// with IPv6 extension headers, and replies that would not fit in the
	// buffer.
	Ignored uint64
	// Malformed counts packets that were truncated, had inconsistent
	// header fields, failed a checksum, or (for neighbour solicitations)
	// failed the validity checks of RFC 4861 section 7.1.1.
	Malformed uint64
}

// Responder answers echo requests, ARP requests and neighbour solicitations
// for the addresses of its prefixes other than the device's own.
//
// A Responder is not safe for concurrent use, since its counters are plain
// fields: give each reading goroutine its own, or synchronise the calls.
type Responder struct {
	// Prefixes are the device's own addresses with their prefix lengths,
	// such as 192.0.2.1/24 and 2001:db8::1/64. Every other address inside
	// one of them is answered, except the network address and, for IPv4,
	// the broadcast address. Invalid prefixes are skipped.
	Prefixes []netip.Prefix

	// MAC is the hardware address the responder answers with on a TAP
	// device. It must differ from the TAP device's own address. It must be
	// 6 bytes long for ReplyEthernet to answer anything.
	MAC net.HardwareAddr

	// Stats counts the outcome of every call.
	Stats
}

// verdict is the outcome of handling one packet.
type verdict uint8

const (
	ignored verdict = iota
	malformed
	echoReply
	arpReply
	naReply
	// valid is an intermediate verdict: the packet parsed, go on.
	valid
)

func (r *Responder) count(v verdict) {
	switch v {
	case ignored:
		r.Ignored++
	case malformed:
		r.Malformed++
	case echoReply:
		r.EchoReplies++
	case arpReply:
		r.ARPReplies++
	case naReply:
		r.NAReplies++
	}
}

// ReplyIP treats buf[:n] as an IP packet (IPv4 or IPv6, as read from a TUN
// device without packet information). If it is an ICMP or ICMPv6 echo request
// to an answered address, ReplyIP rewrites buf into the echo reply and
// returns its length and true; the reply is never longer than the request.
// Otherwise it returns 0 and false and leaves buf unchanged.
//
// The reply swaps the source and destination addresses, sets the TTL or hop
// limit to 64, and carries the request's identifier, sequence number and data
// unchanged. IPv4 options of the request are not echoed: the reply has a
// plain 20-byte header. IPv6 requests with extension headers, and fragmented
// IPv4 requests, are ignored. Requests are answered only if their checksums
// are correct.
func (r *Responder) ReplyIP(buf []byte, n int) (int, bool) {
	if n < 0 || n > len(buf) {
		r.count(malformed)
		return 0, false
	}
	p := buf[:n]
	var m int
	var v verdict
	switch packet.IPVersion(p) {
	case 4:
		m, v = r.echo4(p)
	case 6:
		var icmp []byte
		p, icmp, v = parse6(p)
		if v == valid {
			if icmp[0] == packet.ICMPv6EchoRequest {
				m, v = r.echo6(p, icmp)
			} else {
				v = ignored
			}
		}
	default:
		v = malformed
	}
	r.count(v)
	if v == ignored || v == malformed {
		return 0, false
	}
	return m, true
}

// ReplyEthernet treats buf[:n] as an Ethernet frame read from a TAP device
// and answers:
//
//   - an ARP request for an answered IPv4 address with an ARP reply from
//     MAC (42 bytes);
//   - an IPv6 neighbour solicitation for an answered address, arriving with
//     hop limit 255, with a neighbour advertisement to the solicitation's
//     source, with the solicited and override flags and a target link-layer
//     address option holding MAC (86 bytes). Solicitations from the
//     unspecified address (duplicate address detection) are ignored.
//   - an ICMP or ICMPv6 echo request sent to MAC and to an answered address
//     with an echo reply, as ReplyIP does, in a frame whose source and
//     destination addresses are swapped.
//
// If it answers, it rewrites buf and returns the reply's length and true;
// otherwise it returns 0 and false and leaves buf unchanged. The neighbour
// advertisement may be longer than the solicitation: the reply may use
// buf[n:cap(buf)], so write buf[:m] back to the device (which is valid
// even if m > len(buf)). If the reply does not fit in cap(buf) the request is
// ignored.
//
// VLAN-tagged frames are ignored, as is everything if MAC is not a 6-byte
// address.
func (r *Responder) ReplyEthernet(buf []byte, n int) (int, bool) {
	m, v := r.ethernet(buf, n)
	r.count(v)
	if v == ignored || v == malformed {
		return 0, false
	}
	return m, true
}

func (r *Responder) ethernet(buf []byte, n int) (int, verdict) {
	const eh = packet.EthernetHeaderLen
	if n < 0 || n > len(buf) || n < eh {
		return 0, malformed
	}
	if len(r.MAC) != packet.MACLen {
		return 0, ignored
	}
	f := buf[:n]
	switch packet.EtherType(f) {
	case packet.EtherTypeARP:
		return r.arp(f)
	case packet.EtherTypeIPv4:
		if !bytes.Equal(f[0:6], r.MAC) || isGroupMAC(f[6:12]) {
			return 0, ignored
		}
		m, v := r.echo4(f[eh:])
		if v != echoReply {
			return 0, v
		}
		swapMACs(f, r.MAC)
		return eh + m, echoReply
	case packet.EtherTypeIPv6:
		p, icmp, v := parse6(f[eh:])
		if v != valid {
			return 0, v
		}
		switch icmp[0] {
		case packet.ICMPv6EchoRequest:
			if !bytes.Equal(f[0:6], r.MAC) || isGroupMAC(f[6:12]) {
				return 0, ignored
			}
			m, v := r.echo6(p, icmp)
			if v != echoReply {
				return 0, v
			}
			swapMACs(f, r.MAC)
			return eh + m, echoReply
		case packet.ICMPv6NeighborSolicitation:
			return r.neighborSolicitation(buf, f, p, icmp)
		}
		return 0, ignored
	}
	// VLAN tags and every other EtherType.
	return 0, ignored
}

// answers reports whether a is an address the responder plays: inside one of
// the prefixes, not one of the device's own addresses, not a network address
// and not an IPv4 broadcast address.
func (r *Responder) answers(a netip.Addr) bool {
	for _, p := range r.Prefixes {
		if p.Addr().WithZone("") == a {
			return false
		}
	}
	for _, p := range r.Prefixes {
		if !p.IsValid() || !p.Contains(a) {
			continue
		}
		hostBits := a.BitLen() - p.Bits()
		if hostBits < 2 {
			// /31, /127: point-to-point, no network or broadcast
			// address. /32, /128: only the device's own address.
			return hostBits == 1
		}
		zero, ones := hostPart(a, hostBits)
		if zero || (a.Is4() && ones) {
			return false
		}
		return true
	}
	return false
}

// hostPart reports whether the last hostBits bits of a are all zero or all
// one.
func hostPart(a netip.Addr, hostBits int) (zero, ones bool) {
	b := a.As16()
	zero, ones = true, true
	for i := 15; i >= 0 && hostBits > 0; i-- {
		mask := byte(0xff)
		if hostBits < 8 {
			mask = byte(1)<<hostBits - 1
		}
		if b[i]&mask != 0 {
			zero = false
		}
		if b[i]&mask != mask {
			ones = false
		}
		hostBits -= 8
	}
	return zero, ones
}

func isGroupMAC(m []byte) bool { return m[0]&1 != 0 }

// swapMACs makes the frame's destination its old source and its source mac.
func swapMACs(f []byte, mac net.HardwareAddr) {
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac)
}
