package packet

import "encoding/binary"

// EtherType values (IEEE 802.3), as found in bytes 12-13 of an Ethernet
// header.
const (
	EtherTypeIPv4  uint16 = 0x0800
	EtherTypeARP   uint16 = 0x0806
	EtherTypeVLAN  uint16 = 0x8100 // IEEE 802.1Q tag
	EtherTypeIPv6  uint16 = 0x86DD
	EtherTypeQinQ  uint16 = 0x88A8 // IEEE 802.1ad service tag
	EtherTypeQinQ2 uint16 = 0x9100 // pre-standard double tag
)

// IP protocol numbers (the IPv4 Protocol and IPv6 Next Header fields).
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Header lengths in bytes.
const (
	EthernetHeaderLen = 14 // destination, source, EtherType; no 802.1Q tag
	ARPIPv4Len        = 28 // an ARP packet for Ethernet and IPv4 (RFC 826)
	IPv4HeaderLen     = 20 // an IPv4 header without options
	IPv4MaxHeaderLen  = 60 // an IPv4 header with the largest IHL (15)
	IPv6HeaderLen     = 40 // the fixed IPv6 header
	ICMPHeaderLen     = 8  // ICMP and ICMPv6 echo: type, code, checksum, id, seq
	UDPHeaderLen      = 8
	TCPHeaderLen      = 20 // without options
)

// Address lengths in bytes.
const (
	MACLen      = 6
	IPv4AddrLen = 4
	IPv6AddrLen = 16
)

// ARP (RFC 826) field values for Ethernet.
const (
	ARPHardwareEther uint16 = 1
	ARPOpRequest     uint16 = 1
	ARPOpReply       uint16 = 2
)

// Hop limits.
const (
	// DefaultTTL is the IPv4 TTL and IPv6 hop limit of locally generated
	// packets (the Linux default).
	DefaultTTL = 64
	// NDHopLimit is the hop limit that neighbour discovery messages are
	// sent with and must arrive with (RFC 4861 section 7.1).
	NDHopLimit = 255
)

// ICMP (RFC 792) and ICMPv6 (RFC 4443, RFC 4861) message types used here.
const (
	ICMPEchoReply   uint8 = 0
	ICMPEchoRequest uint8 = 8

	ICMPv6EchoRequest           uint8 = 128
	ICMPv6EchoReply             uint8 = 129
	ICMPv6NeighborSolicitation  uint8 = 135
	ICMPv6NeighborAdvertisement uint8 = 136

	// Neighbour discovery option types (RFC 4861 section 4.6).
	NDOptSourceLinkAddr uint8 = 1
	NDOptTargetLinkAddr uint8 = 2
)

// IPVersion returns the IP version in the first nibble of b (4 or 6 for a
// valid packet), or 0 if b is empty.
func IPVersion(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(b[0] >> 4)
}

// EtherType returns the EtherType of the Ethernet frame b, or 0 if b is
// shorter than an Ethernet header. For a VLAN-tagged frame it returns the tag
// type (EtherTypeVLAN or EtherTypeQinQ), not the encapsulated type.
func EtherType(b []byte) uint16 {
	if len(b) < EthernetHeaderLen {
		return 0
	}
	return binary.BigEndian.Uint16(b[12:14])
}
