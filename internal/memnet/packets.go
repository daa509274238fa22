package memnet

import (
	"encoding/binary"
	"net/netip"

	"github.com/tapwire/tapwire/packet"
)

// UDP returns an IPv4 or IPv6 packet carrying a UDP datagram with payload
// from src to dst (both of one family), checksums filled in: what a host
// behind a TUN device sends.
func UDP(src, dst netip.AddrPort, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	s, d := src.Addr().AsSlice(), dst.Addr().AsSlice()
	sum := packet.Checksum(udp, packet.PseudoHeaderSum(17, s, d, len(udp)))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	if src.Addr().Is4() {
		ip := make([]byte, 20, 20+len(udp))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip[8], ip[9] = 64, 17
		copy(ip[12:16], s)
		copy(ip[16:20], d)
		binary.BigEndian.PutUint16(ip[10:], packet.Checksum(ip, 0))
		return append(ip, udp...)
	}
	ip := make([]byte, 40, 40+len(udp))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
	ip[6], ip[7] = 17, 64
	copy(ip[8:24], s)
	copy(ip[24:40], d)
	return append(ip, udp...)
}

// Payload returns the UDP payload of a packet UDP built (nil if pkt is not
// UDP over IPv4 or IPv6).
func Payload(pkt []byte) []byte {
	switch {
	case len(pkt) >= 28 && pkt[0]>>4 == 4 && pkt[9] == 17:
		return pkt[int(pkt[0]&15)*4+8:]
	case len(pkt) >= 48 && pkt[0]>>4 == 6 && pkt[6] == 17:
		return pkt[48:]
	}
	return nil
}

// Frame returns an Ethernet frame from src to dst of ethertype typ
// carrying payload: what a host bridged behind a TAP device sends.
func Frame(dst, src [6]byte, typ uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:], typ)
	return append(f, payload...)
}
