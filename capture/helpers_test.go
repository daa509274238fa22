//go:build linux

package capture

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Addresses of the test packets: documentation prefixes.
var (
	mac1 = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}
	mac2 = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x02}
	ip1  = net.IP{192, 0, 2, 1}
	ip2  = net.IP{192, 0, 2, 2}
	ip61 = net.ParseIP("2001:db8::1")
	ip62 = net.ParseIP("2001:db8::2")
)

// build serialises layers with lengths and checksums filled in.
func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(networkOf(ls))
		case *layers.UDP:
			l.SetNetworkLayerForChecksum(networkOf(ls))
		case *layers.ICMPv6:
			l.SetNetworkLayerForChecksum(networkOf(ls))
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func networkOf(ls []gopacket.SerializableLayer) gopacket.NetworkLayer {
	for _, l := range ls {
		if n, ok := l.(gopacket.NetworkLayer); ok {
			return n
		}
	}
	return nil
}

func ipv4(proto layers.IPProtocol, src, dst net.IP) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: src, DstIP: dst}
}

func ipv6(next layers.IPProtocol, src, dst net.IP) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: src, DstIP: dst}
}

func eth(t layers.EthernetType, src, dst net.HardwareAddr) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: t}
}

// payload is n bytes of data.
func payload(n int) gopacket.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// echo4 is an IPv4 ICMP echo request (or reply) with 56 bytes of data, as
// ping sends.
func echo4(t testing.TB, src, dst net.IP, reply bool, id, seq uint16) []byte {
	typ := uint8(layers.ICMPv4TypeEchoRequest)
	if reply {
		typ = layers.ICMPv4TypeEchoReply
	}
	return build(t, ipv4(layers.IPProtocolICMPv4, src, dst),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: seq}, payload(56))
}

func arpRequest(t testing.TB) []byte {
	return build(t, eth(layers.EthernetTypeARP, mac1, layers.EthernetBroadcast),
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: mac1, SourceProtAddress: ip1, DstHwAddress: make([]byte, 6), DstProtAddress: ip2})
}

func tcp4(t testing.TB, src, dst net.IP, sport, dport uint16, data int) []byte {
	return build(t, ipv4(layers.IPProtocolTCP, src, dst),
		&layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, SYN: true, Window: 64240}, payload(data))
}

func udp4(t testing.TB, src, dst net.IP, sport, dport uint16) []byte {
	return build(t, ipv4(layers.IPProtocolUDP, src, dst),
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload(12))
}

func udp6(t testing.TB, src, dst net.IP, sport, dport uint16) []byte {
	return build(t, ipv6(layers.IPProtocolUDP, src, dst),
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload(12))
}

func echo6(t testing.TB, src, dst net.IP) []byte {
	return build(t, ipv6(layers.IPProtocolICMPv6, src, dst),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		&layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1}, payload(56))
}

// rawPacket decodes raw IP data.
func rawPacket(data []byte) gopacket.Packet {
	return Decode(Packet{Data: data, Length: len(data)}, layers.LinkTypeRaw)
}

// ethPacket decodes an Ethernet frame.
func ethPacket(data []byte) gopacket.Packet {
	return Decode(Packet{Data: data, Length: len(data)}, layers.LinkTypeEthernet)
}
