package packet

import (
	"encoding/binary"
	"errors"
)

// This file holds the virtio-net header that TUN/TAP devices opened with
// IFF_VNET_HDR put in front of every packet, and the errors of the offload
// helpers (SplitGSO, Coalescer) that produce and consume it.
//
// With IFF_VNET_HDR and TUNSETOFFLOAD (TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 and
// optionally TUN_F_USO4, TUN_F_USO6), the kernel hands user space
// "super-packets" of up to 64 KiB whose transport checksum may be left
// incomplete, and accepts the same on write, segmenting them itself. The
// header says what was offloaded:
//
//	Flags&VirtioNetHdrFNeedsCsum  the checksum at CsumStart+CsumOffset holds
//	                              only the folded pseudo-header sum
//	                              (CHECKSUM_PARTIAL); the sum of bytes
//	                              [CsumStart:] must still be added in.
//	GSOType != GSONone            the packet is a super-packet to be cut
//	                              into payloads of GSOSize bytes, every
//	                              segment carrying copies of the first
//	                              HdrLen bytes of headers.

// VirtioNetHdr mirrors the kernel's struct virtio_net_hdr
// (include/uapi/linux/virtio_net.h), the 10-byte header without the
// num_buffers field of the mergeable-buffers variant.
//
// Offsets (CsumStart, HdrLen) count from the first byte after the header,
// that is from the link header of a TAP frame or the IP header of a TUN
// packet.
type VirtioNetHdr struct {
	// Flags is a set of VirtioNetHdrFNeedsCsum and VirtioNetHdrFDataValid.
	Flags uint8
	// GSOType is GSONone, GSOTCPv4, GSOUDP (legacy UFO), GSOTCPv6 or
	// GSOUDPL4, possibly with the GSOECN bit.
	GSOType uint8
	// HdrLen is the length of the headers (link, IP, transport) that
	// every segment repeats. It is untrusted on read: the kernel may set it
	// to the length of the whole first packet on forwarded traffic, so
	// SplitGSO ignores it and parses the headers instead.
	HdrLen uint16
	// GSOSize is the payload size of each segment but the last (the MSS
	// for TCP).
	GSOSize uint16
	// CsumStart is the offset at which the checksummed region starts (the
	// transport header).
	CsumStart uint16
	// CsumOffset is the offset of the checksum field from CsumStart: 16
	// for TCP, 6 for UDP.
	CsumOffset uint16
}

// VirtioNetHdrLen is the encoded length of a VirtioNetHdr, which is
// sizeof(struct virtio_net_hdr).
const VirtioNetHdrLen = 10

// VirtioNetHdr flags and GSO types, as in include/uapi/linux/virtio_net.h.
const (
	// VirtioNetHdrFNeedsCsum (VIRTIO_NET_HDR_F_NEEDS_CSUM) says that the
	// transport checksum is partial: the field holds the folded
	// pseudo-header sum, to be completed over [CsumStart:].
	VirtioNetHdrFNeedsCsum = 1
	// VirtioNetHdrFDataValid (VIRTIO_NET_HDR_F_DATA_VALID) says that the
	// checksum has been verified (read only).
	VirtioNetHdrFDataValid = 2

	// GSONone (VIRTIO_NET_HDR_GSO_NONE): not a super-packet.
	GSONone = 0
	// GSOTCPv4 (VIRTIO_NET_HDR_GSO_TCPV4): TCP over IPv4 segmentation.
	GSOTCPv4 = 1
	// GSOUDP (VIRTIO_NET_HDR_GSO_UDP): legacy UDP fragmentation offload
	// (UFO). SplitGSO does not support it.
	GSOUDP = 3
	// GSOTCPv6 (VIRTIO_NET_HDR_GSO_TCPV6): TCP over IPv6 segmentation.
	GSOTCPv6 = 4
	// GSOUDPL4 (VIRTIO_NET_HDR_GSO_UDP_L4): UDP segmentation (USO), over
	// IPv4 or IPv6; every segment is a complete datagram.
	GSOUDPL4 = 5
	// GSOECN (VIRTIO_NET_HDR_GSO_ECN) is or-ed into a TCP GSO type when
	// the first segment carries CWR (the sender is ECN-capable).
	GSOECN = 0x80
)

// Decode reads a virtio-net header from the first VirtioNetHdrLen bytes of
// b. Fields are in host byte order, which is what the kernel's TUN/TAP
// driver uses unless TUNSETVNETLE/TUNSETVNETBE says otherwise (little-endian
// on x86 and arm64). It returns an error wrapping ErrTruncated if b is
// shorter than VirtioNetHdrLen.
func (h *VirtioNetHdr) Decode(b []byte) error {
	if len(b) < VirtioNetHdrLen {
		return errVnetHdrShort
	}
	h.Flags = b[0]
	h.GSOType = b[1]
	h.HdrLen = binary.NativeEndian.Uint16(b[2:4])
	h.GSOSize = binary.NativeEndian.Uint16(b[4:6])
	h.CsumStart = binary.NativeEndian.Uint16(b[6:8])
	h.CsumOffset = binary.NativeEndian.Uint16(b[8:10])
	return nil
}

// Encode writes h into the first VirtioNetHdrLen bytes of b, in host byte
// order (see Decode). It panics if b is shorter than VirtioNetHdrLen.
func (h *VirtioNetHdr) Encode(b []byte) {
	_ = b[VirtioNetHdrLen-1] // one bounds check
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:4], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:6], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:8], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:10], h.CsumOffset)
}

// Errors returned by VirtioNetHdr.Decode and SplitGSO. Every error they
// return wraps exactly one of these (test with errors.Is); the message says
// what exactly was wrong. None of the errors allocates.
var (
	// ErrTruncated: a header extends past the end of the packet.
	ErrTruncated = errors.New("packet: truncated")
	// ErrMalformed: header fields are invalid or inconsistent with each
	// other or with the virtio-net header.
	ErrMalformed = errors.New("packet: malformed")
	// ErrUnsupported: a valid packet that SplitGSO cannot handle, such as
	// legacy UDP fragmentation offload or IPv6 extension headers.
	ErrUnsupported = errors.New("packet: unsupported")
	// ErrTooManySegments: the super-packet has more segments than there
	// are output buffers (len(outs) or len(sizes)).
	ErrTooManySegments = errors.New("packet: too many segments for the output buffers")
	// ErrShortBuffer: an output buffer is too short for its segment.
	ErrShortBuffer = errors.New("packet: output buffer too short")
)

// offloadError is an error with a precise message that wraps one of the
// sentinel errors above. The offload helpers only return pointers to
// package-level values, so that failing costs no allocation.
type offloadError struct {
	kind error
	msg  string
}

func (e *offloadError) Error() string { return e.kind.Error() + ": " + e.msg }
func (e *offloadError) Unwrap() error { return e.kind }

func newOffloadError(kind error, msg string) error { return &offloadError{kind, msg} }

var (
	errVnetHdrShort = newOffloadError(ErrTruncated, "virtio-net header shorter than 10 bytes")

	errL2Len          = newOffloadError(ErrMalformed, "l2Len must be 0 (IP) or 14 (Ethernet)")
	errOffset         = newOffloadError(ErrMalformed, "negative output offset")
	errEthShort       = newOffloadError(ErrTruncated, "Ethernet header")
	errVLANDepth      = newOffloadError(ErrUnsupported, "more than two VLAN tags")
	errNotIP          = newOffloadError(ErrMalformed, "GSO packet is not IPv4 or IPv6")
	errEtherTypeIP    = newOffloadError(ErrMalformed, "EtherType does not match the IP version")
	errIPv4Short      = newOffloadError(ErrTruncated, "IPv4 header")
	errIPv4IHL        = newOffloadError(ErrMalformed, "IPv4 header length below 20 bytes")
	errIPv4Frag       = newOffloadError(ErrMalformed, "GSO packet is an IPv4 fragment")
	errIPv6Short      = newOffloadError(ErrTruncated, "IPv6 header")
	errIPv6ExtHdr     = newOffloadError(ErrUnsupported, "IPv6 extension header before the transport header")
	errProto          = newOffloadError(ErrMalformed, "IP protocol does not match the GSO type")
	errGSOVersion     = newOffloadError(ErrMalformed, "IP version does not match the GSO type")
	errTCPShort       = newOffloadError(ErrTruncated, "TCP header")
	errTCPDataOff     = newOffloadError(ErrMalformed, "TCP data offset below 20 bytes")
	errUDPShort       = newOffloadError(ErrTruncated, "UDP header")
	errGSOSizeZero    = newOffloadError(ErrMalformed, "GSO size is 0")
	errNoPayload      = newOffloadError(ErrMalformed, "GSO packet without payload")
	errSegmentTooBig  = newOffloadError(ErrMalformed, "segment length does not fit the 16-bit length fields")
	errGSOLegacyUDP   = newOffloadError(ErrUnsupported, "legacy UDP fragmentation offload (GSOUDP)")
	errGSOType        = newOffloadError(ErrUnsupported, "unknown GSO type")
	errCsumOutside    = newOffloadError(ErrMalformed, "checksum field outside the packet")
	errNoOutputs      = newOffloadError(ErrTooManySegments, "more segments than output buffers")
	errOutputTooShort = newOffloadError(ErrShortBuffer, "output buffer shorter than its segment")
)
