package responder

import (
	"bytes"
	"net/netip"

	"github.com/tapwire/tapwire/packet"
)

// arp answers an ARP request in the Ethernet frame f.
func (r *Responder) arp(f []byte) (int, verdict) {
	const eh = packet.EthernetHeaderLen
	if len(f) < eh+packet.ARPIPv4Len {
		return 0, malformed
	}
	a := f[eh : eh+packet.ARPIPv4Len]
	if be.Uint16(a[0:2]) != packet.ARPHardwareEther || be.Uint16(a[2:4]) != packet.EtherTypeIPv4 ||
		a[4] != packet.MACLen || a[5] != packet.IPv4AddrLen {
		return 0, ignored
	}
	if be.Uint16(a[6:8]) != packet.ARPOpRequest {
		return 0, ignored
	}
	// Requests are broadcast, or unicast to us when refreshing a cache
	// entry.
	if !isBroadcastMAC(f[0:6]) && !bytes.Equal(f[0:6], r.MAC) {
		return 0, ignored
	}
	sha := [6]byte(a[8:14])
	spa := [4]byte(a[14:18])
	tpa := [4]byte(a[24:28])
	if isGroupMAC(sha[:]) || spa == tpa {
		// A bogus sender, or a gratuitous ARP announcement.
		return 0, ignored
	}
	if !r.answers(netip.AddrFrom4(tpa)) {
		return 0, ignored
	}

	// A probe (RFC 5227: sender address 0.0.0.0) is answered too, which
	// tells the prober that the address is in use.
	copy(f[0:6], sha[:])
	copy(f[6:12], r.MAC)
	be.PutUint16(a[6:8], packet.ARPOpReply)
	copy(a[8:14], r.MAC)
	copy(a[14:18], tpa[:])
	copy(a[18:24], sha[:])
	copy(a[24:28], spa[:])
	return eh + packet.ARPIPv4Len, arpReply
}

func isBroadcastMAC(m []byte) bool {
	return m[0]&m[1]&m[2]&m[3]&m[4]&m[5] == 0xff
}

// naLen is the length of the neighbour advertisement frame we send: Ethernet
// and IPv6 headers, the 24-byte message and an 8-byte target link-layer
// address option.
const naLen = packet.EthernetHeaderLen + packet.IPv6HeaderLen + 24 + 8

// neighborSolicitation answers the neighbour solicitation icmp in the IPv6
// packet p carried by the Ethernet frame f = buf[:n].
func (r *Responder) neighborSolicitation(buf, f, p, icmp []byte) (int, verdict) {
	// Validity checks of RFC 4861 section 7.1.1.
	if p[7] != packet.NDHopLimit || icmp[1] != 0 || len(icmp) < 24 {
		return 0, malformed
	}
	target := netip.AddrFrom16([16]byte(icmp[8:24]))
	if target.IsMulticast() {
		return 0, malformed
	}
	if icmp6Checksum(p, icmp) != 0 {
		return 0, malformed
	}
	dstMAC := [6]byte(f[6:12])
	for opts := icmp[24:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return 0, malformed
		}
		l := int(opts[1]) * 8
		if opts[0] == packet.NDOptSourceLinkAddr && l == 8 {
			dstMAC = [6]byte(opts[2:8])
		}
		opts = opts[l:]
	}
	src := netip.AddrFrom16([16]byte(p[8:24]))
	dst := netip.AddrFrom16([16]byte(p[24:40]))
	if src.IsUnspecified() {
		// Duplicate address detection: let the kernel have the address.
		return 0, ignored
	}
	if src.IsMulticast() || isGroupMAC(dstMAC[:]) {
		return 0, ignored
	}
	if dst != target && dst != solicitedNode(target) {
		return 0, ignored
	}
	if !isGroupMAC(f[0:6]) && !bytes.Equal(f[0:6], r.MAC) {
		return 0, ignored
	}
	if !r.answers(target) {
		return 0, ignored
	}
	if cap(buf) < naLen {
		return 0, ignored
	}

	out := buf[:naLen]
	copy(out[0:6], dstMAC[:])
	copy(out[6:12], r.MAC)
	be.PutUint16(out[12:14], packet.EtherTypeIPv6)

	ip := out[packet.EthernetHeaderLen:]
	s, t := src.As16(), target.As16()
	ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0
	be.PutUint16(ip[4:6], 32)
	ip[6] = packet.ProtoICMPv6
	ip[7] = packet.NDHopLimit
	copy(ip[8:24], t[:])
	copy(ip[24:40], s[:])

	na := ip[packet.IPv6HeaderLen:]
	na[0] = packet.ICMPv6NeighborAdvertisement
	na[1] = 0
	na[2], na[3] = 0, 0
	na[4], na[5], na[6], na[7] = 0x60, 0, 0, 0 // solicited, override
	copy(na[8:24], t[:])
	na[24] = packet.NDOptTargetLinkAddr
	na[25] = 1
	copy(na[26:32], r.MAC)
	be.PutUint16(na[2:4], icmp6Checksum(ip, na))
	return naLen, naReply
}

// solicitedNode returns the solicited-node multicast address of a
// (RFC 4291 section 2.7.1): ff02::1:ff00:0/104 followed by its low 24 bits.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}
