package responder

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Test addresses: the device owns own4 and own6; the responder plays peer4
// and peer6. tapMAC is the TAP device's own hardware address, respMAC the
// responder's.
var (
	own4    = net.ParseIP("192.0.2.1").To4()
	peer4   = net.ParseIP("192.0.2.2").To4()
	other4  = net.ParseIP("198.51.100.2").To4()
	own6    = net.ParseIP("2001:db8::1")
	peer6   = net.ParseIP("2001:db8::42")
	other6  = net.ParseIP("2001:db8:1::42")
	tapMAC  = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0xaa}
	respMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}
	bcast   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func newResponder() *Responder {
	return &Responder{
		Prefixes: []netip.Prefix{
			netip.MustParsePrefix("192.0.2.1/24"),
			netip.MustParsePrefix("2001:db8::1/64"),
		},
		MAC: respMAC,
	}
}

var serializeOpts = gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeOpts, ls...); err != nil {
		tb.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	return p
}

// echo4Layers builds an ICMP echo request from src to dst.
func echo4Layers(src, dst net.IP, payload []byte, opts ...layers.IPv4Option) []gopacket.SerializableLayer {
	ip := &layers.IPv4{
		Version: 4, TTL: 17, Id: 0x4242, Flags: layers.IPv4DontFragment, TOS: 0x10,
		Protocol: layers.IPProtocolICMPv4, SrcIP: src, DstIP: dst, Options: opts,
	}
	icmp := &layers.ICMPv4{
		TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0),
		Id:       0x1234, Seq: 7,
	}
	return []gopacket.SerializableLayer{ip, icmp, gopacket.Payload(payload)}
}

func echo4(tb testing.TB, src, dst net.IP, payload []byte, opts ...layers.IPv4Option) []byte {
	return serialize(tb, echo4Layers(src, dst, payload, opts...)...)
}

func echo6Layers(src, dst net.IP, payload []byte) []gopacket.SerializableLayer {
	ip := &layers.IPv6{
		Version: 6, HopLimit: 9, TrafficClass: 0x20, FlowLabel: 0x12345,
		NextHeader: layers.IPProtocolICMPv6, SrcIP: src, DstIP: dst,
	}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	echo := &layers.ICMPv6Echo{Identifier: 0x1234, SeqNumber: 7}
	return []gopacket.SerializableLayer{ip, icmp, echo, gopacket.Payload(payload)}
}

func echo6(tb testing.TB, src, dst net.IP, payload []byte) []byte {
	return serialize(tb, echo6Layers(src, dst, payload)...)
}

func ether(dst net.HardwareAddr, typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: tapMAC, DstMAC: dst, EthernetType: typ}
}

func withEther(dst net.HardwareAddr, typ layers.EthernetType, ls []gopacket.SerializableLayer) []gopacket.SerializableLayer {
	return append([]gopacket.SerializableLayer{ether(dst, typ)}, ls...)
}

func arpLayer(op uint16, spa, tpa net.IP) *layers.ARP {
	return &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: tapMAC, SourceProtAddress: spa,
		DstHwAddress: make([]byte, 6), DstProtAddress: tpa,
	}
}

// arpRequest builds a 42-byte ARP request (without the padding to 60 bytes
// that gopacket adds).
func arpRequest(tb testing.TB, dst net.HardwareAddr, spa, tpa net.IP) []byte {
	return serialize(tb, ether(dst, layers.EthernetTypeARP), arpLayer(layers.ARPRequest, spa, tpa))[:42]
}

func solicitedNodeIP(target net.IP) net.IP {
	t := target.To16()
	return net.IP{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15]}
}

func solicitedNodeMAC(target net.IP) net.HardwareAddr {
	t := target.To16()
	return net.HardwareAddr{0x33, 0x33, 0xff, t[13], t[14], t[15]}
}

type nsOpts struct {
	src, dst  net.IP
	ethDst    net.HardwareAddr
	hopLimit  uint8
	noSLLAO   bool
	extraOpts layers.ICMPv6Options
}

// ns builds a neighbour solicitation for target, by default from own6 to
// target's solicited-node address with hop limit 255 and a source link-layer
// address option.
func ns(tb testing.TB, target net.IP, o nsOpts) []byte {
	if o.src == nil {
		o.src = own6
	}
	if o.dst == nil {
		o.dst = solicitedNodeIP(target)
	}
	if o.ethDst == nil {
		o.ethDst = solicitedNodeMAC(target)
	}
	if o.hopLimit == 0 {
		o.hopLimit = 255
	}
	ip := &layers.IPv6{Version: 6, HopLimit: o.hopLimit, NextHeader: layers.IPProtocolICMPv6, SrcIP: o.src, DstIP: o.dst}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	msg := &layers.ICMPv6NeighborSolicitation{TargetAddress: target}
	if !o.noSLLAO {
		msg.Options = append(msg.Options, layers.ICMPv6Option{Type: layers.ICMPv6OptSourceAddress, Data: tapMAC})
	}
	msg.Options = append(msg.Options, o.extraOpts...)
	return serialize(tb, ether(o.ethDst, layers.EthernetTypeIPv6), ip, icmp, msg)
}

// refSum is an independent byte-at-a-time RFC 1071 sum, folded.
func refSum(b []byte) uint32 {
	var s uint64
	for i := 0; i < len(b); i++ {
		if i%2 == 0 {
			s += uint64(b[i]) << 8
		} else {
			s += uint64(b[i])
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint32(s)
}

// checkIPChecksums verifies, independently of the code under test, the
// IPv4 header checksum and the ICMP or ICMPv6 checksum of the IP packet p,
// which must be exactly one packet long.
func checkIPChecksums(tb testing.TB, p []byte) {
	tb.Helper()
	if len(p) == 0 {
		tb.Fatal("empty packet")
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			tb.Fatalf("short IPv4 packet: %d bytes", len(p))
		}
		ihl := int(p[0]&15) * 4
		if ihl < 20 || ihl > len(p) || int(binary.BigEndian.Uint16(p[2:])) != len(p) {
			tb.Fatalf("bad IPv4 lengths: ihl %d total %d len %d", ihl, binary.BigEndian.Uint16(p[2:]), len(p))
		}
		if s := refSum(p[:ihl]); s != 0xffff {
			tb.Fatalf("IPv4 header checksum does not verify (sum %#x)", s)
		}
		if p[9] == 1 {
			if s := refSum(p[ihl:]); s != 0xffff {
				tb.Fatalf("ICMP checksum does not verify (sum %#x)", s)
			}
		}
	case 6:
		if len(p) < 40 || 40+int(binary.BigEndian.Uint16(p[4:])) != len(p) {
			tb.Fatalf("bad IPv6 lengths: len %d", len(p))
		}
		if p[6] == 58 {
			var ph []byte
			ph = append(ph, p[8:40]...)
			ph = binary.BigEndian.AppendUint32(ph, uint32(len(p)-40))
			ph = append(ph, 0, 0, 0, 58)
			ph = append(ph, p[40:]...)
			if s := refSum(ph); s != 0xffff {
				tb.Fatalf("ICMPv6 checksum does not verify (sum %#x)", s)
			}
		}
	default:
		tb.Fatalf("bad IP version %d", p[0]>>4)
	}
}

// checkFrameChecksums checks the checksums of the IP packet in an Ethernet
// frame, if there is one.
func checkFrameChecksums(tb testing.TB, f []byte) {
	tb.Helper()
	if len(f) < 14 {
		tb.Fatalf("short frame: %d bytes", len(f))
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800, 0x86dd:
		checkIPChecksums(tb, f[14:])
	case 0x0806:
		if len(f) != 42 {
			tb.Fatalf("ARP reply of %d bytes", len(f))
		}
	default:
		tb.Fatalf("reply with EtherType %#x", binary.BigEndian.Uint16(f[12:]))
	}
}

// decode decodes b with gopacket, fails on decoding errors, and checks all
// checksums with gopacket too.
func decode(tb testing.TB, b []byte, first gopacket.LayerType) gopacket.Packet {
	tb.Helper()
	p := gopacket.NewPacket(b, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		tb.Fatalf("decoding reply: %v", el.Error())
	}
	if l, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		if err := l.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
			tb.Fatal(err)
		}
	}
	if err, mismatches := p.VerifyChecksums(); err != nil || len(mismatches) != 0 {
		tb.Fatalf("gopacket checksum verification: err %v, mismatches %v", err, mismatches)
	}
	return p
}
