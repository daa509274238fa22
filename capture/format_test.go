//go:build linux

package capture

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestCaptureDescribe(t *testing.T) {
	ll6 := net.ParseIP("fe80::1")
	snm := net.ParseIP("ff02::1:ff00:2")

	// An ICMP port unreachable quotes the IP header and 8 bytes of the
	// datagram that could not be delivered.
	udp := udp4(t, ip1, ip2, 40000, 53)
	unreach := build(t, ipv4(layers.IPProtocolICMPv4, ip2, ip1),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)},
		gopacket.Payload(udp[:28]))
	fragNeeded := build(t, ipv4(layers.IPProtocolICMPv4, ip2, ip1),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: 1400},
		gopacket.Payload(udp[:28]))
	udp6 := udp6(t, ip61, ip62, 40000, 53)
	unreach6 := build(t, ipv6(layers.IPProtocolICMPv6, ip62, ip61),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, layers.ICMPv6CodePortUnreachable)},
		gopacket.Payload(append(make([]byte, 4), udp6[:48]...)))

	synAck := build(t, ipv4(layers.IPProtocolTCP, ip2, ip1),
		&layers.TCP{SrcPort: 80, DstPort: 40000, Seq: 5000, Ack: 1001, SYN: true, ACK: true, Window: 65535})
	pshAck := build(t, ipv4(layers.IPProtocolTCP, ip1, ip2),
		&layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1001, Ack: 5001, PSH: true, ACK: true, Window: 502}, payload(5))
	pureAck := build(t, ipv4(layers.IPProtocolTCP, ip1, ip2),
		&layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1006, Ack: 5001, ACK: true, Window: 502})
	tcp6 := build(t, ipv6(layers.IPProtocolTCP, ip61, ip62),
		&layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 7, FIN: true, ACK: true, Ack: 9, Window: 100})

	ns := build(t, eth(layers.EthernetTypeIPv6, mac1, net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 2}),
		ipv6(layers.IPProtocolICMPv6, ll6, snm),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)},
		&layers.ICMPv6NeighborSolicitation{TargetAddress: ip62, Options: layers.ICMPv6Options{
			{Type: layers.ICMPv6OptSourceAddress, Data: mac1}}})
	na := build(t, ipv6(layers.IPProtocolICMPv6, ip62, ll6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)},
		&layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: ip62, Options: layers.ICMPv6Options{
			{Type: layers.ICMPv6OptTargetAddress, Data: mac2}}})
	rs := build(t, ipv6(layers.IPProtocolICMPv6, ll6, net.ParseIP("ff02::2")),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeRouterSolicitation, 0)},
		&layers.ICMPv6RouterSolicitation{})

	arpReply := build(t, eth(layers.EthernetTypeARP, mac2, mac1),
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: mac2, SourceProtAddress: ip2, DstHwAddress: mac1, DstProtAddress: ip1})
	vlanARP := build(t, eth(layers.EthernetTypeDot1Q, mac1, layers.EthernetBroadcast),
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: mac1, SourceProtAddress: ip1, DstHwAddress: make([]byte, 6), DstProtAddress: ip2})
	unknownType := build(t, eth(0x88b5, mac1, layers.EthernetBroadcast), payload(46))
	lldp := build(t, eth(layers.EthernetTypeLinkLayerDiscovery, mac1, net.HardwareAddr{0x01, 0x80, 0xc2, 0, 0, 0x0e}), payload(46))
	ipInEth := build(t, eth(layers.EthernetTypeIPv4, mac1, mac2), ipv4(layers.IPProtocolICMPv4, ip1, ip2),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}, payload(56))

	frag := ipv4(layers.IPProtocolUDP, ip1, ip2)
	frag.Flags, frag.FragOffset = layers.IPv4MoreFragments, 185
	fragment := build(t, frag, payload(1480))
	other := build(t, ipv4(253, ip1, ip2), payload(4))
	gre := build(t, ipv4(layers.IPProtocolGRE, ip1, ip2), &layers.GRE{Protocol: layers.EthernetTypeIPv4},
		ipv4(layers.IPProtocolICMPv4, ip1, ip2), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0)})
	timeExceeded := build(t, ipv4(layers.IPProtocolICMPv4, ip2, ip1),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeTimeExceeded, 0)}, gopacket.Payload(udp[:28]))
	echo := echo4(t, ip1, ip2, false, 7, 1)

	for _, tc := range []struct {
		name string
		pkt  gopacket.Packet
		want string
	}{
		{"echo request", rawPacket(echo), "IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 64"},
		{"echo reply", rawPacket(echo4(t, ip2, ip1, true, 7, 1)), "IP 192.0.2.2 > 192.0.2.1: ICMP echo reply, id 7, seq 1, length 64"},
		{"echo in ethernet", ethPacket(ipInEth), "IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 64"},
		{"port unreachable", rawPacket(unreach), "IP 192.0.2.2 > 192.0.2.1: ICMP 192.0.2.2 udp port 53 unreachable, length 36"},
		{"need to frag", rawPacket(fragNeeded), "IP 192.0.2.2 > 192.0.2.1: ICMP 192.0.2.2 unreachable - need to frag (mtu 1400), length 36"},
		{"time exceeded", rawPacket(timeExceeded), "IP 192.0.2.2 > 192.0.2.1: ICMP time exceeded in-transit, length 36"},
		{"tcp syn", rawPacket(tcp4(t, ip1, ip2, 40000, 80, 0)), "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [S], seq 1000, win 64240, length 0"},
		{"tcp syn-ack", rawPacket(synAck), "IP 192.0.2.2.80 > 192.0.2.1.40000: Flags [S.], seq 5000, ack 1001, win 65535, length 0"},
		{"tcp data", rawPacket(pshAck), "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [P.], seq 1001:1006, ack 5001, win 502, length 5"},
		{"tcp ack", rawPacket(pureAck), "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [.], ack 5001, win 502, length 0"},
		{"tcp6 fin", rawPacket(tcp6), "IP6 2001:db8::1.40000 > 2001:db8::2.443: Flags [F.], seq 7, ack 9, win 100, length 0"},
		{"udp", rawPacket(udp), "IP 192.0.2.1.40000 > 192.0.2.2.53: UDP, length 12"},
		{"udp6", rawPacket(udp6), "IP6 2001:db8::1.40000 > 2001:db8::2.53: UDP, length 12"},
		{"echo6", rawPacket(echo6(t, ip61, ip62)), "IP6 2001:db8::1 > 2001:db8::2: ICMP6, echo request, id 7, seq 1, length 64"},
		{"unreachable6", rawPacket(unreach6), "IP6 2001:db8::2 > 2001:db8::1: ICMP6, destination unreachable, unreachable port, 2001:db8::2 udp port 53, length 56"},
		{"neighbor solicitation", ethPacket(ns), "IP6 fe80::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has 2001:db8::2, length 32"},
		{"neighbor advertisement", rawPacket(na), "IP6 2001:db8::2 > fe80::1: ICMP6, neighbor advertisement, tgt is 2001:db8::2, length 32"},
		{"router solicitation", rawPacket(rs), "IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 8"},
		// ARP's length, as tcpdump's, includes the padding to the 60-byte
		// minimum frame: 46 bytes after the Ethernet header.
		{"arp request", ethPacket(arpRequest(t)), "ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 46"},
		{"arp unpadded", ethPacket(arpRequest(t)[:42]), "ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28"},
		{"arp reply", ethPacket(arpReply), "ARP, Reply 192.0.2.2 is-at 02:00:5e:00:53:02, length 46"},
		{"vlan", ethPacket(vlanARP), "vlan 10, ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 42"},
		{"malformed tcp", rawPacket(tcp4(t, ip1, ip2, 40000, 80, 0)[:30]), "IP 192.0.2.1 > 192.0.2.2: TCP, length 10 [malformed]"},
		{"unknown ethertype", ethPacket(unknownType), "02:00:5e:00:53:01 > ff:ff:ff:ff:ff:ff, ethertype 0x88b5, length 60"},
		{"known ethertype", ethPacket(lldp), "02:00:5e:00:53:01 > 01:80:c2:00:00:0e, ethertype LinkLayerDiscovery (0x88cc), length 60"},
		{"fragment", rawPacket(fragment), "IP 192.0.2.1 > 192.0.2.2: fragment of UDP (id 4660, offset 1480, more), length 1480"},
		{"other protocol", rawPacket(other), "IP 192.0.2.1 > 192.0.2.2: ip-proto-253, length 4"},
		{"gre", rawPacket(gre), "IP 192.0.2.1 > 192.0.2.2: GRE, length 32"},
		{"not ip", rawPacket([]byte{0x50, 1, 2, 3}), "unknown packet (IP version 5), length 4 [malformed]"},
		{"truncated", rawPacket(echo[:30]), "IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 10 [truncated]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Describe(tc.pkt); got != tc.want {
				t.Errorf("Describe:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCaptureLine(t *testing.T) {
	ts := time.Date(2025, 1, 2, 14, 3, 7, 123456789, time.Local)
	p := Packet{Timestamp: ts, Data: echo4(t, ip1, ip2, false, 7, 1), Length: 84, Direction: DirOut}
	want := "14:03:07.123456 Out IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 64"
	if got := Line(p, Decode(p, layers.LinkTypeRaw)); got != want {
		t.Errorf("Line:\n got %s\nwant %s", got, want)
	}
	p = Packet{Timestamp: ts, Data: arpRequest(t)[:42], Length: 42}
	want = "14:03:07.123456 ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28"
	if got := Line(p, Decode(p, layers.LinkTypeEthernet)); got != want {
		t.Errorf("Line without direction:\n got %s\nwant %s", got, want)
	}
	// A packet longer than what was captured is marked.
	p = Packet{Timestamp: ts, Data: p.Data, Length: 1000, Direction: DirIn}
	want = "14:03:07.123456 In ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28 [truncated]"
	if got := Line(p, Decode(p, layers.LinkTypeEthernet)); got != want {
		t.Errorf("Line of a truncated capture:\n got %s\nwant %s", got, want)
	}
}

// FuzzDescribe: any bytes, of any link type, give a line and no panic.
func FuzzDescribe(f *testing.F) {
	f.Add(uint8(0), echo4(f, ip1, ip2, false, 7, 1))
	f.Add(uint8(1), arpRequest(f))
	f.Add(uint8(0), echo6(f, ip61, ip62))
	f.Add(uint8(2), []byte{0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 8, 0, 0x45})
	lts := []layers.LinkType{layers.LinkTypeRaw, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL}
	f.Fuzz(func(t *testing.T, lt uint8, data []byte) {
		p := Packet{Data: data, Length: len(data)}
		pkt := Decode(p, lts[int(lt)%len(lts)])
		if Line(p, pkt) == "" {
			t.Error("empty line")
		}
		Filter{Protos: []string{"tcp", "arp"}, Ports: []uint16{53}}.Match(pkt)
	})
}
