package packet

import (
	"encoding/binary"
	"math/bits"
)

// TCP option kinds (RFC 9293 section 3.2) used by the MSS clamp.
const (
	tcpOptEOL    = 0 // end of option list
	tcpOptNOP    = 1 // no-operation
	tcpOptMSS    = 2 // maximum segment size
	tcpOptMSSLen = 4 // length of the MSS option, kind and length included
)

// MSSFor returns the largest TCP maximum segment sizes that fit in a packet of
// mtu bytes: mss4 = mtu - 40 for IPv4 (a 20-byte IPv4 header and a 20-byte
// TCP header) and mss6 = mtu - 60 for IPv6 (a 40-byte IPv6 header and a
// 20-byte TCP header). These are the values that Linux's
// "TCPMSS --clamp-mss-to-pmtu" uses, and the usual arguments to ClampMSS for
// a tunnel whose inner MTU is mtu.
//
// If mtu is below 60 it returns 0, 0, which makes ClampMSS leave both
// families alone. Values above 65535 (the largest an MSS option can carry) are
// capped at 65535.
func MSSFor(mtu int) (mss4, mss6 uint16) {
	const v4 = IPv4HeaderLen + TCPHeaderLen
	const v6 = IPv6HeaderLen + TCPHeaderLen
	if mtu < v6 {
		return 0, 0
	}
	return capMSS(mtu - v4), capMSS(mtu - v6)
}

// capMSS converts a non-negative MSS to uint16, saturating at 65535.
func capMSS(n int) uint16 {
	if n > 0xffff {
		return 0xffff
	}
	return uint16(n)
}

// ClampMSS lowers the MSS option of a TCP segment with SYN set (a SYN or a
// SYN-ACK) carried in the Ethernet frame frame to at most mss4 when the
// segment is carried over IPv4 or mss6 when it is carried over IPv6, and fixes
// the TCP checksum incrementally (RFC 1624), so a segment with a correct
// checksum keeps a correct checksum and one with a wrong checksum stays
// equally wrong. It is meant for a tunnel's data path, in the manner of
// OpenVPN's mssfix or iptables' "TCPMSS --set-mss", and does not allocate.
//
// The frame may carry up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, or
// the pre-standard 0x9100). A limit of 0 leaves that address family alone.
// If the option list holds more than one MSS option (kind 2, length 4), each
// one is clamped. Only the MSS value and the TCP checksum are written; the IP
// header checksum does not cover them and is left as it is.
//
// ClampMSS reports whether it changed the frame. It leaves the frame
// untouched and returns false for anything else: a frame that is not IPv4 or
// IPv6 carrying TCP, a segment without SYN, a segment without an MSS option or
// whose MSS is already at or below the limit, an IPv4 fragment with a nonzero
// offset, an IPv6 packet with extension headers before TCP, and truncated or
// malformed headers or options (an IPv4 header length or total length, an
// IPv6 payload length or a TCP data offset that does not fit, or an option
// whose length is below 2 or runs past the data offset). Bytes past the IPv4
// total length or IPv6 payload length, such as Ethernet padding, are ignored.
// It never reads or writes outside frame.
func ClampMSS(frame []byte, mss4, mss6 uint16) bool {
	if mss4 == 0 && mss6 == 0 {
		return false
	}
	off, et, err := ethernetL3Offset(frame)
	if err != nil {
		return false
	}
	pkt := frame[off:]
	switch et {
	case EtherTypeIPv4:
		if IPVersion(pkt) != 4 {
			return false
		}
		return clampMSS4(pkt, mss4)
	case EtherTypeIPv6:
		if IPVersion(pkt) != 6 {
			return false
		}
		return clampMSS6(pkt, mss6)
	}
	return false
}

// ClampMSSIP is ClampMSS for a bare IPv4 or IPv6 packet without a link-layer
// header, such as the packets of a TUN device. It picks the family from the
// version field of pkt and otherwise behaves exactly like ClampMSS.
func ClampMSSIP(pkt []byte, mss4, mss6 uint16) bool {
	switch IPVersion(pkt) {
	case 4:
		return clampMSS4(pkt, mss4)
	case 6:
		return clampMSS6(pkt, mss6)
	}
	return false
}

// clampMSS4 clamps the MSS of the IPv4 packet pkt (version already checked).
func clampMSS4(pkt []byte, limit uint16) bool {
	if limit == 0 || len(pkt) < IPv4HeaderLen || pkt[ipv4ProtoOffset] != ProtoTCP {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < IPv4HeaderLen || total < ihl || total > len(pkt) {
		return false
	}
	if binary.BigEndian.Uint16(pkt[ipv4FlagsOffset:])&ipv4FragOffMask != 0 {
		return false // not the first fragment: no TCP header here
	}
	return clampTCP(pkt[ihl:total], limit)
}

// clampMSS6 clamps the MSS of the IPv6 packet pkt (version already checked).
func clampMSS6(pkt []byte, limit uint16) bool {
	if limit == 0 || len(pkt) < IPv6HeaderLen || pkt[ipv6NextHdrOffset] != ProtoTCP {
		return false
	}
	end := IPv6HeaderLen + int(binary.BigEndian.Uint16(pkt[4:6]))
	if end > len(pkt) {
		return false
	}
	return clampTCP(pkt[IPv6HeaderLen:end], limit)
}

// clampTCP clamps the MSS options of the TCP segment seg (header and
// payload, as bounded by the IP header) to limit, updating the checksum.
func clampTCP(seg []byte, limit uint16) bool {
	if len(seg) < TCPHeaderLen || seg[tcpFlagsOffset]&tcpFlagSYN == 0 {
		return false
	}
	doff := int(seg[12]>>4) * 4
	if doff < TCPHeaderLen || doff > len(seg) {
		return false
	}
	opts := seg[TCPHeaderLen:doff]

	// First pass: check that the whole option list is well formed and that
	// some MSS needs lowering, so that a bad list is never half-changed.
	need := false
	if !eachMSS(opts, func(at int) { need = need || binary.BigEndian.Uint16(opts[at:]) > limit }) || !need {
		return false
	}

	// Second pass: lower each MSS and fold the change into the checksum.
	// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), where m and m' are the old
	// and new values of the 16-bit words of the segment that changed.
	sum := uint32(^binary.BigEndian.Uint16(seg[tcpCsumOffset:]))
	eachMSS(opts, func(at int) {
		old := binary.BigEndian.Uint16(opts[at:])
		if old <= limit {
			return
		}
		binary.BigEndian.PutUint16(opts[at:], limit)
		m, m1 := old, limit
		// The checksum sums 16-bit words aligned on the start of the TCP
		// header (which is even in the pseudo-header sum). A value at an
		// odd offset straddles two such words: its first byte is the low
		// byte of one and its second byte the high byte of the next, so
		// it adds to the sum as the byte-swapped value. Carries between
		// the two words are harmless: the end-around carry makes the sum
		// modulo 0xffff, so a word's position does not matter.
		if (TCPHeaderLen+at)%2 == 1 {
			m, m1 = bits.ReverseBytes16(m), bits.ReverseBytes16(m1)
		}
		sum += uint32(^m) + uint32(m1)
	})
	binary.BigEndian.PutUint16(seg[tcpCsumOffset:], ^Fold(sum))
	return true
}

// eachMSS walks the TCP option list opts up to its end-of-list option or
// its end, calling fn with the offset in opts of each MSS option's value
// (kind 2, length 4). It reports whether the list is well formed: every
// option but NOP and EOL has a length of at least 2 that stays within opts.
func eachMSS(opts []byte, fn func(at int)) bool {
	for i := 0; i < len(opts); {
		kind := opts[i]
		if kind == tcpOptEOL {
			break
		}
		if kind == tcpOptNOP {
			i++
			continue
		}
		if i+1 >= len(opts) {
			return false // no room for the length byte
		}
		n := int(opts[i+1])
		if n < 2 || n > len(opts)-i {
			return false
		}
		if kind == tcpOptMSS && n == tcpOptMSSLen {
			fn(i + 2)
		}
		i += n
	}
	return true
}
