package packet

import "encoding/binary"

// ICMP errors that tell a sender its packet was too big for the path.
const (
	ICMPDestUnreachable uint8 = 3 // ICMPv4 type
	ICMPFragNeeded      uint8 = 4 // its code: fragmentation needed and DF set (RFC 1191)
	ICMPv6PacketTooBig  uint8 = 2 // ICMPv6 type (RFC 4443 section 3.2)

	// IPv6MinMTU is the smallest MTU an IPv6 link may have (RFC 8200); a
	// Packet Too Big message never asks for less.
	IPv6MinMTU = 1280

	// icmpv4Quote is how much of the offending packet an ICMPv4 error
	// quotes: a 576-byte datagram's worth, as Linux does.
	icmpv4Quote = 576 - IPv4HeaderLen - ICMPHeaderLen
	// icmpv6Quote is as much as fits in the minimum MTU (RFC 4443 2.4 c).
	icmpv6Quote = IPv6MinMTU - IPv6HeaderLen - ICMPHeaderLen
)

// DontFragment reports whether pkt is an IPv4 packet with the Don't Fragment
// flag set. It returns false for IPv6 (which routers never fragment) and for
// anything too short to be an IPv4 header.
func DontFragment(pkt []byte) bool {
	return len(pkt) >= IPv4HeaderLen && pkt[0]>>4 == 4 && pkt[6]&0x40 != 0
}

// TooBigMaxLen is the largest message TooBig writes.
const TooBigMaxLen = IPv6MinMTU

// TooBig writes into dst the ICMP error that tells the sender of pkt that
// it was too big for the next hop, whose MTU is mtu: for IPv4, Destination
// Unreachable, Fragmentation Needed (RFC 1191, the MTU in the second word);
// for IPv6, Packet Too Big (RFC 4443, mtu raised to IPv6MinMTU if below it).
// The message comes from pkt's destination and goes to pkt's source, so a
// host that routes that destination through the interface the message is
// written to accepts it (its reverse path checks pass), and it quotes as
// much of pkt as an ICMP error may (576 bytes in all for IPv4, 1280 for
// IPv6). dst should hold TooBigMaxLen bytes.
//
// It returns the message's length, or 0 when pkt must not be answered: too
// short or malformed, an IPv4 fragment other than the first, an ICMP error
// itself (never answer an error with an error), or from an unspecified,
// multicast, broadcast or loopback source. It does not allocate.
func TooBig(dst, pkt []byte, mtu int) int {
	switch IPVersion(pkt) {
	case 4:
		return tooBig4(dst, pkt, mtu)
	case 6:
		return tooBig6(dst, pkt, mtu)
	}
	return 0
}

func tooBig4(dst, pkt []byte, mtu int) int {
	if len(pkt) < IPv4HeaderLen {
		return 0
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < IPv4HeaderLen || ihl > len(pkt) {
		return 0
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
		return 0 // not the first fragment
	}
	src := pkt[12:16]
	if src[0] == 0 || src[0] == 127 || src[0] >= 224 || [4]byte(src) == [4]byte{255, 255, 255, 255} {
		return 0
	}
	if pkt[9] == ProtoICMP {
		if len(pkt) < ihl+1 || !icmpv4Informational(pkt[ihl]) {
			return 0
		}
	}
	quote := min(len(pkt), icmpv4Quote, int(binary.BigEndian.Uint16(pkt[2:4])))
	if quote < ihl {
		return 0
	}
	n := IPv4HeaderLen + ICMPHeaderLen + quote
	if len(dst) < n {
		return 0
	}
	ip := dst[:IPv4HeaderLen]
	ip[0], ip[1] = 0x45, 0xc0 // precedence "internetwork control", as Linux sends ICMP errors
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	binary.BigEndian.PutUint32(ip[4:], 0) // id 0, no flags: a small datagram
	ip[8], ip[9] = DefaultTTL, ProtoICMP
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], pkt[16:20]) // from the packet's destination
	copy(ip[16:20], src)        // to its source
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip, 0))
	icmp := dst[IPv4HeaderLen:n]
	icmp[0], icmp[1] = ICMPDestUnreachable, ICMPFragNeeded
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[4:], 0)
	binary.BigEndian.PutUint16(icmp[6:], uint16(min(mtu, 0xffff)))
	copy(icmp[ICMPHeaderLen:], pkt[:quote])
	binary.BigEndian.PutUint16(icmp[2:], Checksum(icmp, 0))
	return n
}

// icmpv4Informational reports whether an ICMPv4 type is a query or reply
// (which may be answered with an error) rather than an error.
func icmpv4Informational(typ uint8) bool {
	switch typ {
	case ICMPEchoReply, ICMPEchoRequest, 9, 10, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

func tooBig6(dst, pkt []byte, mtu int) int {
	if len(pkt) < IPv6HeaderLen {
		return 0
	}
	src := pkt[8:24]
	if src[0] == 0xff || [16]byte(src) == [16]byte{} || [16]byte(src) == [16]byte{15: 1} {
		return 0
	}
	if pkt[6] == ProtoICMPv6 && (len(pkt) < IPv6HeaderLen+1 || pkt[IPv6HeaderLen] < 128) {
		return 0 // an ICMPv6 error (types below 128), or no type at all
	}
	quote := min(len(pkt), icmpv6Quote, IPv6HeaderLen+int(binary.BigEndian.Uint16(pkt[4:6])))
	n := IPv6HeaderLen + ICMPHeaderLen + quote
	if len(dst) < n {
		return 0
	}
	ip := dst[:IPv6HeaderLen]
	binary.BigEndian.PutUint32(ip[0:], 6<<28)
	binary.BigEndian.PutUint16(ip[4:], uint16(ICMPHeaderLen+quote))
	ip[6], ip[7] = ProtoICMPv6, DefaultTTL
	copy(ip[8:24], pkt[24:40]) // from the packet's destination
	copy(ip[24:40], src)       // to its source
	icmp := dst[IPv6HeaderLen:n]
	icmp[0], icmp[1] = ICMPv6PacketTooBig, 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint32(icmp[4:], uint32(max(mtu, IPv6MinMTU)))
	copy(icmp[ICMPHeaderLen:], pkt[:quote])
	sum := PseudoHeaderSum(ProtoICMPv6, ip[8:24], ip[24:40], len(icmp))
	binary.BigEndian.PutUint16(icmp[2:], Checksum(icmp, sum))
	return n
}

// FragmentIPv4 cuts the IPv4 packet pkt, whose Don't Fragment flag is clear,
// into fragments of at most mtu bytes, as a router does (RFC 791): it
// writes into dst the fragment that carries pkt's payload from byte off
// (start with 0) and returns its length and the offset of the next one (0
// after the last). Every fragment repeats pkt's header with its offset, the
// More Fragments flag and the length and checksum set; a pkt that is itself
// a fragment gives fragments of the same datagram.
//
// It returns 0, 0 when pkt cannot be fragmented: DF set, malformed, with IP
// options (which tapwire leaves whole), or an mtu that leaves fewer than 8
// bytes of payload. dst must hold mtu bytes. It does not allocate.
func FragmentIPv4(dst, pkt []byte, mtu, off int) (n, next int) {
	if len(pkt) < IPv4HeaderLen || pkt[0] != 0x45 || DontFragment(pkt) {
		return 0, 0
	}
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if total > len(pkt) || total <= IPv4HeaderLen {
		return 0, 0
	}
	payload := pkt[IPv4HeaderLen:total]
	chunk := (mtu - IPv4HeaderLen) &^ 7
	if chunk < 8 || off < 0 || off >= len(payload) || off%8 != 0 || len(dst) < min(mtu, total) {
		return 0, 0
	}
	flags := binary.BigEndian.Uint16(pkt[6:8])
	base := int(flags&0x1fff) * 8
	more := flags&0x2000 != 0
	size := min(chunk, len(payload)-off)
	if off+size < len(payload) {
		more, next = true, off+size
	}
	if (base+off)/8 > 0x1fff {
		return 0, 0
	}
	copy(dst[:IPv4HeaderLen], pkt[:IPv4HeaderLen])
	copy(dst[IPv4HeaderLen:], payload[off:off+size])
	n = IPv4HeaderLen + size
	binary.BigEndian.PutUint16(dst[2:], uint16(n))
	fo := uint16((base + off) / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(dst[6:], fo)
	dst[10], dst[11] = 0, 0
	binary.BigEndian.PutUint16(dst[10:], Checksum(dst[:IPv4HeaderLen], 0))
	return n, next
}
