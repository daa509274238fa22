package tun

import "encoding/binary"

// afHeaderLen is the length of the address-family header that macOS utun
// and FreeBSD tun (in TUNSIFHEAD mode) put in front of every packet read from
// or written to the device: the packet's address family as a 32-bit
// big-endian integer. The package strips it on read and adds it on write, so
// callers see plain IP packets as on Linux.
const afHeaderLen = 4

// afNumbers are a system's values of AF_INET and AF_INET6, which an
// address-family header carries. AF_INET is 2 everywhere; AF_INET6 is 30 on
// macOS and 28 on FreeBSD.
type afNumbers struct {
	inet, inet6 uint32
}

// putHeader writes into hdr[:afHeaderLen] the header for the IP packet pkt,
// chosen by pkt's version nibble. It reports false, writing nothing, when pkt
// is empty or neither IPv4 nor IPv6: such a packet cannot be written to a
// device with an address-family header. hdr and pkt may be adjacent parts of
// one buffer (the header in the packet's headroom).
func (a afNumbers) putHeader(hdr, pkt []byte) bool {
	if len(pkt) == 0 || len(hdr) < afHeaderLen {
		return false
	}
	var af uint32
	switch pkt[0] >> 4 {
	case 4:
		af = a.inet
	case 6:
		af = a.inet6
	default:
		return false
	}
	binary.BigEndian.PutUint32(hdr, af)
	return true
}

// version returns the IP version (4 or 6) an address-family header names,
// or 0 for another family or a header shorter than afHeaderLen.
func (a afNumbers) version(hdr []byte) int {
	if len(hdr) < afHeaderLen {
		return 0
	}
	switch binary.BigEndian.Uint32(hdr) {
	case a.inet:
		return 4
	case a.inet6:
		return 6
	}
	return 0
}
