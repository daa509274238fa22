package responder

import (
	"encoding/binary"
	"net/netip"

	"github.com/tapwire/tapwire/packet"
)

var be = binary.BigEndian

// echo4 answers an ICMP echo request in the IPv4 packet p (which may be
// followed by link-layer padding). On success it returns the length of the
// reply, which starts at p[0].
func (r *Responder) echo4(p []byte) (int, verdict) {
	const hl = packet.IPv4HeaderLen
	if len(p) < hl || p[0]>>4 != 4 {
		return 0, malformed
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(be.Uint16(p[2:4]))
	if ihl < hl || ihl > total || total > len(p) {
		return 0, malformed
	}
	if packet.Checksum(p[:ihl], 0) != 0 {
		return 0, malformed
	}
	p = p[:total]
	if p[9] != packet.ProtoICMP {
		return 0, ignored
	}
	if be.Uint16(p[6:8])&0x3fff != 0 {
		// A fragment (more fragments set, or a non-zero offset).
		return 0, ignored
	}
	icmp := p[ihl:]
	if len(icmp) < packet.ICMPHeaderLen {
		return 0, malformed
	}
	if icmp[0] != packet.ICMPEchoRequest || icmp[1] != 0 {
		return 0, ignored
	}
	src := netip.AddrFrom4([4]byte(p[12:16]))
	dst := netip.AddrFrom4([4]byte(p[16:20]))
	if !r.answers(dst) || !unicastSource(src) {
		return 0, ignored
	}
	if packet.Checksum(icmp, 0) != 0 {
		return 0, malformed
	}

	// Everything is checked; build the reply. Options are dropped: move
	// the ICMP message up behind a 20-byte header.
	if ihl > hl {
		copy(p[hl:], icmp)
		icmp = p[hl : hl+len(icmp)]
		total = hl + len(icmp)
		p = p[:total]
		p[0] = 0x45
		be.PutUint16(p[2:4], uint16(total))
	}
	// Keep TOS, identification and the don't-fragment flag.
	p[6] &= 0x40
	p[7] = 0
	p[8] = packet.DefaultTTL
	s, d := [4]byte(p[12:16]), [4]byte(p[16:20])
	copy(p[12:16], d[:])
	copy(p[16:20], s[:])
	p[10], p[11] = 0, 0
	be.PutUint16(p[10:12], packet.Checksum(p[:hl], 0))

	icmp[0] = packet.ICMPEchoReply
	icmp[2], icmp[3] = 0, 0
	be.PutUint16(icmp[2:4], packet.Checksum(icmp, 0))
	return total, echoReply
}

// unicastSource reports whether a is a plausible source of a request we may
// answer.
func unicastSource(a netip.Addr) bool {
	if a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	if a.Is4() && a.As4() == [4]byte{255, 255, 255, 255} {
		return false
	}
	return true
}

// parse6 checks the IPv6 header of p (which may be followed by link-layer
// padding) and returns the packet, trimmed to its payload length, and its
// ICMPv6 message. The verdict is valid if the packet is ICMPv6 without
// extension headers and its message has at least a type, code and checksum;
// the checksum itself is not verified.
func parse6(p []byte) (pkt, icmp []byte, v verdict) {
	const hl = packet.IPv6HeaderLen
	if len(p) < hl || p[0]>>4 != 6 {
		return nil, nil, malformed
	}
	total := hl + int(be.Uint16(p[4:6]))
	if total > len(p) {
		return nil, nil, malformed
	}
	p = p[:total]
	if p[6] != packet.ProtoICMPv6 {
		// Another protocol, or an extension header (including the
		// hop-by-hop header of a jumbogram).
		return nil, nil, ignored
	}
	icmp = p[hl:]
	if len(icmp) < 4 {
		return nil, nil, malformed
	}
	return p, icmp, valid
}

// icmp6Checksum returns the ICMPv6 checksum of the message icmp in the IPv6
// packet p: 0 if the message's checksum field is correct.
func icmp6Checksum(p, icmp []byte) uint16 {
	return packet.Checksum(icmp, packet.PseudoHeaderSum(packet.ProtoICMPv6, p[8:24], p[24:40], len(icmp)))
}

// echo6 answers the ICMPv6 echo request icmp in the IPv6 packet p, as
// returned by parse6. On success it returns the length of the reply, which
// starts at p[0].
func (r *Responder) echo6(p, icmp []byte) (int, verdict) {
	if len(icmp) < packet.ICMPHeaderLen {
		return 0, malformed
	}
	if icmp[1] != 0 {
		return 0, ignored
	}
	src := netip.AddrFrom16([16]byte(p[8:24]))
	dst := netip.AddrFrom16([16]byte(p[24:40]))
	if !r.answers(dst) || !unicastSource(src) {
		return 0, ignored
	}
	if icmp6Checksum(p, icmp) != 0 {
		return 0, malformed
	}

	p[7] = packet.DefaultTTL
	s, d := src.As16(), dst.As16()
	copy(p[8:24], d[:])
	copy(p[24:40], s[:])
	icmp[0] = packet.ICMPv6EchoReply
	icmp[2], icmp[3] = 0, 0
	be.PutUint16(icmp[2:4], icmp6Checksum(p, icmp))
	return len(p), echoReply
}
