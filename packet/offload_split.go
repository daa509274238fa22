package packet

import "encoding/binary"

// TCP header flags (byte 13 of the TCP header).
const (
	tcpFlagFIN uint8 = 0x01
	tcpFlagSYN uint8 = 0x02
	tcpFlagRST uint8 = 0x04
	tcpFlagPSH uint8 = 0x08
	tcpFlagACK uint8 = 0x10
	tcpFlagURG uint8 = 0x20
	tcpFlagECE uint8 = 0x40
	tcpFlagCWR uint8 = 0x80
)

// Offsets of header fields used by the offload helpers.
const (
	ipv4FlagsOffset    = 6 // flags and fragment offset, 16 bits
	ipv4ProtoOffset    = 9
	ipv4CsumOffset     = 10
	ipv4SrcOffset      = 12
	ipv6NextHdrOffset  = 6
	ipv6HopLimitOffset = 7
	ipv6SrcOffset      = 8
	tcpFlagsOffset     = 13
	tcpCsumOffset      = 16
	udpLenOffset       = 4
	udpCsumOffset      = 6

	ipv4FlagMF      = 0x2000 // more fragments, in the 16-bit flags field
	ipv4FragOffMask = 0x1fff
)

// ethernetL3Offset returns the offset of the payload of the Ethernet frame
// pkt and its EtherType, skipping up to two VLAN tags (802.1Q, 802.1ad and
// the pre-standard 0x9100).
func ethernetL3Offset(pkt []byte) (int, uint16, error) {
	if len(pkt) < EthernetHeaderLen {
		return 0, 0, errEthShort
	}
	at := 12 // position of the EtherType or tag protocol identifier
	et := binary.BigEndian.Uint16(pkt[at:])
	for tags := 0; et == EtherTypeVLAN || et == EtherTypeQinQ || et == EtherTypeQinQ2; tags++ {
		if tags == 2 {
			return 0, 0, errVLANDepth
		}
		at += 4 // tag protocol identifier and tag control information
		if len(pkt) < at+2 {
			return 0, 0, errEthShort
		}
		et = binary.BigEndian.Uint16(pkt[at:])
	}
	return at + 2, et, nil
}

// isIPv6ExtHdr reports whether an IPv6 next header value is an extension
// header (RFC 8200 section 4 and the IANA list), including ESP, which also
// hides the transport header.
func isIPv6ExtHdr(nh uint8) bool {
	switch nh {
	case 0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254:
		return true
	}
	return false
}

// SplitGSO turns one packet read from a device with a virtio-net header into
// plain packets.
//
// pkt is the packet after the virtio-net header hdr. It starts with a link
// header: l2Len is 0 for TUN devices (pkt starts with the IP header) or
// EthernetHeaderLen (14) for TAP devices, in which case the frame may carry
// up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, 0x9100), which
// SplitGSO skips itself and copies into every segment. Other values of
// l2Len are an error.
//
// Segment i is written to outs[i][offset:] and its length to sizes[i]; the
// segment must fit within len(outs[i]). SplitGSO returns the number of
// segments. pkt may alias outs[0][offset:offset+len(pkt)] (the usual case:
// the device was read into outs[0]): SplitGSO produces segments 1..n-1 first
// and fixes up segment 0 in place last. No other output buffer may overlap
// pkt.
//
// For GSONone, SplitGSO copies pkt to outs[0] (unless it is already there)
// and returns 1. If hdr has VirtioNetHdrFNeedsCsum, it first completes the
// checksum the way the kernel does for CHECKSUM_PARTIAL: the field at
// CsumStart+CsumOffset holds the folded pseudo-header sum; SplitGSO adds the
// sum of bytes [CsumStart:len(pkt)] to it and stores the complement (0xffff
// in place of 0, as the kernel's skb_checksum_help does).
//
// For GSOTCPv4, GSOTCPv6 (either possibly with GSOECN) and GSOUDPL4, the
// payload after the headers is cut into pieces of hdr.GSOSize bytes (the
// last may be shorter) and every piece gets a copy of the headers, adjusted
// as the kernel's software segmentation does:
//
//   - IPv4: total length; identification = first ID + i (modulo 2^16);
//     header checksum. IPv4 options are copied.
//   - IPv6: payload length.
//   - TCP: sequence number = first + i*GSOSize; FIN and PSH stay only on the
//     last segment, CWR only on the first; the full checksum.
//   - UDP: length; the full checksum (0xffff in place of 0). A UDP-over-IPv4
//     super-packet whose checksum field is 0 and whose header lacks
//     VirtioNetHdrFNeedsCsum is taken to carry no checksum, and its segments
//     keep 0.
//
// hdr.HdrLen and hdr.CsumStart are not trusted: the header lengths come from
// the headers themselves (IHL, TCP data offset) and everything is checked
// against len(pkt); the IP and UDP length fields of the super-packet are
// ignored (recomputed from len(pkt)), and so is the transport checksum,
// which is computed from scratch whatever VirtioNetHdrFNeedsCsum says.
// VirtioNetHdrFDataValid is ignored.
//
// Errors wrap ErrTruncated, ErrMalformed or ErrUnsupported for packets
// SplitGSO cannot split (GSOSize 0, unknown GSO types, legacy GSOUDP, IPv6
// extension headers before the transport header, IPv4 fragments, an IP
// version or protocol that does not match the GSO type, a super-packet
// without payload), ErrTooManySegments if len(outs) or len(sizes) is smaller
// than the number of segments, and ErrShortBuffer if a segment does not fit
// its buffer. All checks happen before anything is written, so on error
// outs and sizes are untouched, and an aliased pkt keeps its contents.
//
// SplitGSO does not allocate.
func SplitGSO(pkt []byte, hdr VirtioNetHdr, l2Len int, outs [][]byte, sizes []int, offset int) (int, error) {
	if offset < 0 {
		return 0, errOffset
	}
	if l2Len != 0 && l2Len != EthernetHeaderLen {
		return 0, errL2Len
	}
	if hdr.GSOType == GSONone {
		return splitNone(pkt, hdr, outs, sizes, offset)
	}

	var s gsoSplitter
	wantVersion := 0 // 0: either
	switch hdr.GSOType &^ GSOECN {
	case GSOTCPv4:
		s.proto, wantVersion = ProtoTCP, 4
	case GSOTCPv6:
		s.proto, wantVersion = ProtoTCP, 6
	case GSOUDPL4:
		if hdr.GSOType&GSOECN != 0 {
			return 0, errGSOType
		}
		s.proto = ProtoUDP
	case GSOUDP:
		if hdr.GSOType&GSOECN != 0 {
			return 0, errGSOType
		}
		return 0, errGSOLegacyUDP
	default:
		return 0, errGSOType
	}
	if hdr.GSOSize == 0 {
		return 0, errGSOSizeZero
	}

	// Link header.
	var etherType uint16
	if l2Len != 0 {
		var err error
		s.l3, etherType, err = ethernetL3Offset(pkt)
		if err != nil {
			return 0, err
		}
	}

	// IP header.
	if len(pkt) <= s.l3 {
		return 0, errNotIP
	}
	var iphLen int
	switch pkt[s.l3] >> 4 {
	case 4:
		if wantVersion == 6 {
			return 0, errGSOVersion
		}
		if l2Len != 0 && etherType != EtherTypeIPv4 {
			return 0, errEtherTypeIP
		}
		if len(pkt)-s.l3 < IPv4HeaderLen {
			return 0, errIPv4Short
		}
		iphLen = int(pkt[s.l3]&0x0f) * 4
		if iphLen < IPv4HeaderLen {
			return 0, errIPv4IHL
		}
		if len(pkt)-s.l3 < iphLen {
			return 0, errIPv4Short
		}
		if binary.BigEndian.Uint16(pkt[s.l3+ipv4FlagsOffset:])&(ipv4FlagMF|ipv4FragOffMask) != 0 {
			return 0, errIPv4Frag
		}
		if pkt[s.l3+ipv4ProtoOffset] != s.proto {
			return 0, errProto
		}
	case 6:
		if wantVersion == 4 {
			return 0, errGSOVersion
		}
		if l2Len != 0 && etherType != EtherTypeIPv6 {
			return 0, errEtherTypeIP
		}
		if len(pkt)-s.l3 < IPv6HeaderLen {
			return 0, errIPv6Short
		}
		iphLen = IPv6HeaderLen
		s.v6 = true
		if nh := pkt[s.l3+ipv6NextHdrOffset]; nh != s.proto {
			if isIPv6ExtHdr(nh) {
				return 0, errIPv6ExtHdr
			}
			return 0, errProto
		}
	default:
		return 0, errNotIP
	}
	s.l4 = s.l3 + iphLen

	// Transport header.
	if s.proto == ProtoTCP {
		if len(pkt)-s.l4 < TCPHeaderLen {
			return 0, errTCPShort
		}
		thLen := int(pkt[s.l4+12]>>4) * 4
		if thLen < TCPHeaderLen {
			return 0, errTCPDataOff
		}
		if len(pkt)-s.l4 < thLen {
			return 0, errTCPShort
		}
		s.hdrEnd = s.l4 + thLen
	} else {
		if len(pkt)-s.l4 < UDPHeaderLen {
			return 0, errUDPShort
		}
		s.hdrEnd = s.l4 + UDPHeaderLen
	}

	// Segment count and sizes.
	payload := len(pkt) - s.hdrEnd
	if payload == 0 {
		return 0, errNoPayload
	}
	s.gsoSize = int(hdr.GSOSize)
	first := min(s.gsoSize, payload)
	// The largest segment must fit the 16-bit IPv4 total length, IPv6
	// payload length and UDP length fields.
	if lenField := s.hdrEnd + first - s.l4; !s.v6 && lenField+iphLen > 0xffff || lenField > 0xffff {
		return 0, errSegmentTooBig
	}
	n := (payload + s.gsoSize - 1) / s.gsoSize
	if n > len(outs) || n > len(sizes) {
		return 0, errNoOutputs
	}
	for i := range n {
		segLen := s.hdrEnd + min(s.gsoSize, payload-i*s.gsoSize)
		if len(outs[i]) < offset || len(outs[i])-offset < segLen {
			return 0, errOutputTooShort
		}
	}

	// Fields read from the super-packet before segment 0 overwrites them.
	s.pkt = pkt
	s.n = n
	if !s.v6 {
		s.id0 = binary.BigEndian.Uint16(pkt[s.l3+4:])
	}
	if s.proto == ProtoTCP {
		s.seq0 = binary.BigEndian.Uint32(pkt[s.l4+4:])
		s.flags0 = pkt[s.l4+tcpFlagsOffset]
	} else {
		s.udpNoCsum = !s.v6 && hdr.Flags&VirtioNetHdrFNeedsCsum == 0 &&
			pkt[s.l4+udpCsumOffset] == 0 && pkt[s.l4+udpCsumOffset+1] == 0
	}

	for i := n - 1; i >= 1; i-- {
		start := s.hdrEnd + i*s.gsoSize
		end := min(start+s.gsoSize, len(pkt))
		out := outs[i][offset : offset+s.hdrEnd+end-start]
		copy(out, pkt[:s.hdrEnd])
		copy(out[s.hdrEnd:], pkt[start:end])
		s.fix(out, i)
		sizes[i] = len(out)
	}
	// Segment 0 is a prefix of pkt: a single (overlap-safe) copy, a no-op
	// when pkt is outs[0][offset:].
	out := outs[0][offset : offset+s.hdrEnd+first]
	copy(out, pkt[:len(out)])
	s.fix(out, 0)
	sizes[0] = len(out)
	return n, nil
}

// gsoSplitter holds what SplitGSO learnt about a super-packet.
type gsoSplitter struct {
	pkt       []byte
	n         int    // number of segments
	l3        int    // offset of the IP header
	l4        int    // offset of the transport header
	hdrEnd    int    // offset of the payload
	gsoSize   int    // payload bytes per segment
	proto     uint8  // ProtoTCP or ProtoUDP
	v6        bool   // IPv6 rather than IPv4
	udpNoCsum bool   // UDP over IPv4 without checksum: keep 0
	id0       uint16 // IPv4 identification of the first segment
	seq0      uint32 // TCP sequence number of the first segment
	flags0    uint8  // TCP flags of the super-packet
}

// fix adjusts the headers of segment i, whose bytes (headers copied from the
// super-packet, then its payload) are out.
func (s *gsoSplitter) fix(out []byte, i int) {
	ip := out[s.l3:]
	var src, dst []byte
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-IPv6HeaderLen))
		src = ip[ipv6SrcOffset : ipv6SrcOffset+IPv6AddrLen]
		dst = ip[ipv6SrcOffset+IPv6AddrLen : ipv6SrcOffset+2*IPv6AddrLen]
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		binary.BigEndian.PutUint16(ip[4:], s.id0+uint16(i))
		ip[ipv4CsumOffset], ip[ipv4CsumOffset+1] = 0, 0
		binary.BigEndian.PutUint16(ip[ipv4CsumOffset:], Checksum(ip[:s.l4-s.l3], 0))
		src = ip[ipv4SrcOffset : ipv4SrcOffset+IPv4AddrLen]
		dst = ip[ipv4SrcOffset+IPv4AddrLen : ipv4SrcOffset+2*IPv4AddrLen]
	}
	l4 := out[s.l4:]
	if s.proto == ProtoTCP {
		binary.BigEndian.PutUint32(l4[4:], s.seq0+uint32(i)*uint32(s.gsoSize))
		flags := s.flags0
		if i != s.n-1 {
			flags &^= tcpFlagFIN | tcpFlagPSH
		}
		if i != 0 {
			flags &^= tcpFlagCWR
		}
		l4[tcpFlagsOffset] = flags
		l4[tcpCsumOffset], l4[tcpCsumOffset+1] = 0, 0
		csum := Checksum(l4, PseudoHeaderSum(ProtoTCP, src, dst, len(l4)))
		binary.BigEndian.PutUint16(l4[tcpCsumOffset:], csum)
		return
	}
	binary.BigEndian.PutUint16(l4[udpLenOffset:], uint16(len(l4)))
	l4[udpCsumOffset], l4[udpCsumOffset+1] = 0, 0
	if s.udpNoCsum {
		return
	}
	csum := Checksum(l4, PseudoHeaderSum(ProtoUDP, src, dst, len(l4)))
	if csum == 0 {
		csum = 0xffff
	}
	binary.BigEndian.PutUint16(l4[udpCsumOffset:], csum)
}

// splitNone handles a packet that is not a super-packet: it completes a
// partial checksum and copies the packet into outs[0].
func splitNone(pkt []byte, hdr VirtioNetHdr, outs [][]byte, sizes []int, offset int) (int, error) {
	if len(outs) == 0 || len(sizes) == 0 {
		return 0, errNoOutputs
	}
	if len(outs[0]) < offset || len(outs[0])-offset < len(pkt) {
		return 0, errOutputTooShort
	}
	start := int(hdr.CsumStart)
	at := start + int(hdr.CsumOffset)
	needsCsum := hdr.Flags&VirtioNetHdrFNeedsCsum != 0
	if needsCsum && at+2 > len(pkt) {
		return 0, errCsumOutside
	}
	out := outs[0][offset : offset+len(pkt)]
	copy(out, pkt)
	if needsCsum {
		partial := binary.BigEndian.Uint16(out[at:])
		out[at], out[at+1] = 0, 0
		csum := Checksum(out[start:], uint32(partial))
		if csum == 0 {
			csum = 0xffff
		}
		binary.BigEndian.PutUint16(out[at:], csum)
	}
	sizes[0] = len(pkt)
	return 1, nil
}
