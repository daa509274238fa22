package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// pktSpec describes a TCP or UDP packet for buildPacket.
type pktSpec struct {
	l2   int  // 0 (TUN) or EthernetHeaderLen (TAP)
	vlan bool // 802.1Q tag (with l2 == EthernetHeaderLen)
	v6   bool
	udp  bool

	src, dst     net.IP // defaults: 192.0.2.1 -> 198.51.100.2, 2001:db8::1 -> 2001:db8::2
	sport, dport uint16 // defaults 40000 -> 443

	tos       uint8  // IPv4 TOS or IPv6 traffic class
	flowLabel uint32 // IPv6
	ttl       uint8  // default 64
	id        uint16 // IPv4
	df        bool   // IPv4
	ipOpts    bool   // IPv4 with a router alert option
	hbh       bool   // IPv6 with a hop-by-hop options header

	seq, ack uint32
	flags    uint8  // TCP flags (tcpFlag*)
	window   uint16 // default 65000
	urgent   uint16
	ts       []uint32 // tsval, tsecr: a timestamp option (after two NOPs)

	payload []byte
}

var (
	testMAC1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	testMAC2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// buildPacket serializes s with gopacket, lengths and checksums computed.
func buildPacket(tb testing.TB, s pktSpec) []byte {
	tb.Helper()
	b, err := buildPacketErr(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func buildPacketErr(s pktSpec) ([]byte, error) {
	var ls []gopacket.SerializableLayer
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	if s.l2 == EthernetHeaderLen {
		et := layers.EthernetTypeIPv4
		if s.v6 {
			et = layers.EthernetTypeIPv6
		}
		eth := &layers.Ethernet{SrcMAC: testMAC1, DstMAC: testMAC2, EthernetType: et}
		ls = append(ls, eth)
		if s.vlan {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, &layers.Dot1Q{Priority: 3, VLANIdentifier: 42, Type: et})
		}
	}
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	var nl gopacket.NetworkLayer
	if s.v6 {
		src, dst := s.src, s.dst
		if src == nil {
			src = net.ParseIP("2001:db8::1")
		}
		if dst == nil {
			dst = net.ParseIP("2001:db8::2")
		}
		ip := &layers.IPv6{Version: 6, TrafficClass: s.tos, FlowLabel: s.flowLabel, HopLimit: ttl,
			NextHeader: proto, SrcIP: src, DstIP: dst}
		nl = ip
		ls = append(ls, ip)
	} else {
		src, dst := s.src, s.dst
		if src == nil {
			src = net.IPv4(192, 0, 2, 1)
		}
		if dst == nil {
			dst = net.IPv4(198, 51, 100, 2)
		}
		ip := &layers.IPv4{Version: 4, TOS: s.tos, Id: s.id, TTL: ttl, Protocol: proto,
			SrcIP: src.To4(), DstIP: dst.To4()}
		if s.df {
			ip.Flags = layers.IPv4DontFragment
		}
		if s.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		nl = ip
		ls = append(ls, ip)
	}
	sport, dport := s.sport, s.dport
	if sport == 0 {
		sport = 40000
	}
	if dport == 0 {
		dport = 443
	}
	if s.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			return nil, err
		}
		ls = append(ls, u)
	} else {
		window := s.window
		if window == 0 {
			window = 65000
		}
		t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport),
			Seq: s.seq, Ack: s.ack, Window: window, Urgent: s.urgent,
			FIN: s.flags&tcpFlagFIN != 0, SYN: s.flags&tcpFlagSYN != 0, RST: s.flags&tcpFlagRST != 0,
			PSH: s.flags&tcpFlagPSH != 0, ACK: s.flags&tcpFlagACK != 0, URG: s.flags&tcpFlagURG != 0,
			ECE: s.flags&tcpFlagECE != 0, CWR: s.flags&tcpFlagCWR != 0}
		if s.ts != nil {
			data := make([]byte, 8)
			binary.BigEndian.PutUint32(data, s.ts[0])
			binary.BigEndian.PutUint32(data[4:], s.ts[1])
			t.Options = []layers.TCPOption{
				{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: data},
			}
		}
		if err := t.SetNetworkLayerForChecksum(nl); err != nil {
			return nil, err
		}
		ls = append(ls, t)
	}
	ls = append(ls, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, err
	}
	b := append([]byte(nil), buf.Bytes()...)
	if s.hbh {
		// Insert an 8-byte hop-by-hop header (a PadN option) after the
		// IPv6 header. The transport checksum does not change: its
		// pseudo-header carries the upper-layer length.
		l3 := s.l2
		if s.vlan {
			l3 += 4
		}
		ext := []byte{b[l3+6], 0, 1, 4, 0, 0, 0, 0}
		b = append(b[:l3+IPv6HeaderLen], append(ext, b[l3+IPv6HeaderLen:]...)...)
		b[l3+6] = 0
		binary.BigEndian.PutUint16(b[l3+4:], binary.BigEndian.Uint16(b[l3+4:])+8)
	}
	return b, nil
}

// pktInfo is what parsePacket learnt about a packet.
type pktInfo struct {
	l3, l4, hdrEnd int
	v6, udp        bool
	flow           string // addresses, ports, protocol
	seq            uint32
	flags          uint8
	payload        []byte
}

// refPseudo is the textbook pseudo-header sum.
func refPseudo(src, dst []byte, proto uint8, length int) uint32 {
	s := refSum(src, 0)
	s = refSum(dst, s)
	s += uint32(proto) + uint32(length>>16) + uint32(length&0xffff)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s
}

// parsePacket checks a plain (non-super) packet independently of the code
// under test: link header, lengths, IPv4 header checksum and transport
// checksum (with the textbook RFC 1071 sum). UDP over IPv4 may have no
// checksum.
func parsePacket(b []byte, l2 int) (pktInfo, error) {
	var in pktInfo
	if l2 == EthernetHeaderLen {
		if len(b) < 14 {
			return in, errors.New("short Ethernet header")
		}
		in.l3 = 14
		et := binary.BigEndian.Uint16(b[12:])
		for et == EtherTypeVLAN || et == EtherTypeQinQ || et == EtherTypeQinQ2 {
			if len(b) < in.l3+4 {
				return in, errors.New("short VLAN tag")
			}
			et = binary.BigEndian.Uint16(b[in.l3+2:])
			in.l3 += 4
		}
	}
	ip := b[in.l3:]
	if len(ip) < 1 {
		return in, errors.New("no IP header")
	}
	var src, dst []byte
	var proto uint8
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return in, errors.New("short IPv4 header")
		}
		ihl := int(ip[0]&15) * 4
		if ihl < 20 || len(ip) < ihl {
			return in, errors.New("bad IHL")
		}
		if int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
			return in, fmt.Errorf("IPv4 total length %d, packet %d", binary.BigEndian.Uint16(ip[2:]), len(ip))
		}
		if c := refChecksum(ip[:ihl], 0); c != 0 {
			return in, fmt.Errorf("bad IPv4 header checksum (%#x)", c)
		}
		src, dst, proto = ip[12:16], ip[16:20], ip[9]
		in.l4 = in.l3 + ihl
	case 6:
		in.v6 = true
		if len(ip) < 40 {
			return in, errors.New("short IPv6 header")
		}
		if int(binary.BigEndian.Uint16(ip[4:])) != len(ip)-40 {
			return in, errors.New("bad IPv6 payload length")
		}
		src, dst, proto = ip[8:24], ip[24:40], ip[6]
		in.l4 = in.l3 + 40
		if proto == 0 { // hop-by-hop options
			if len(b) < in.l4+8 {
				return in, errors.New("short hop-by-hop header")
			}
			proto = b[in.l4]
			in.l4 += int(b[in.l4+1]+1) * 8
			if len(b) < in.l4 {
				return in, errors.New("short hop-by-hop header")
			}
		}
	default:
		return in, errors.New("not IP")
	}
	l4 := b[in.l4:]
	switch proto {
	case ProtoTCP:
		if len(l4) < 20 || len(l4) < int(l4[12]>>4)*4 || l4[12]>>4 < 5 {
			return in, errors.New("short TCP header")
		}
		in.hdrEnd = in.l4 + int(l4[12]>>4)*4
		in.seq = binary.BigEndian.Uint32(l4[4:])
		in.flags = l4[13]
		if c := refChecksum(l4, refPseudo(src, dst, proto, len(l4))); c != 0 {
			return in, fmt.Errorf("bad TCP checksum (%#x)", c)
		}
	case ProtoUDP:
		in.udp = true
		if len(l4) < 8 {
			return in, errors.New("short UDP header")
		}
		if int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			return in, errors.New("bad UDP length")
		}
		in.hdrEnd = in.l4 + 8
		if !(!in.v6 && l4[6] == 0 && l4[7] == 0) {
			if c := refChecksum(l4, refPseudo(src, dst, proto, len(l4))); c != 0 {
				return in, fmt.Errorf("bad UDP checksum (%#x)", c)
			}
		}
	default:
		return in, fmt.Errorf("protocol %d", proto)
	}
	in.flow = fmt.Sprintf("%x|%x|%d|%x", src, dst, proto, l4[:4])
	in.payload = b[in.hdrEnd:]
	return in, nil
}

// gopacketCheck decodes b with gopacket and reports decoding errors and the
// transport payload.
func gopacketCheck(b []byte, l2 int) ([]byte, error) {
	first := gopacket.LayerType(layers.LayerTypeEthernet)
	if l2 == 0 {
		first = layers.LayerTypeIPv4
		if len(b) > 0 && b[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	p := gopacket.NewPacket(b, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		return nil, fmt.Errorf("gopacket: %v", el.Error())
	}
	if l := p.Layer(layers.LayerTypeTCP); l != nil {
		return l.LayerPayload(), nil
	}
	if l := p.Layer(layers.LayerTypeUDP); l != nil {
		return l.LayerPayload(), nil
	}
	return nil, errors.New("gopacket: no TCP or UDP layer")
}

// checkSegment verifies a segment produced by SplitGSO with both checkers.
func checkSegment(tb testing.TB, b []byte, l2 int) pktInfo {
	tb.Helper()
	in, err := parsePacket(b, l2)
	if err != nil {
		tb.Fatalf("segment %x: %v", b, err)
	}
	pl, err := gopacketCheck(b, l2)
	if err != nil {
		tb.Fatalf("segment %x: %v", b, err)
	}
	if !bytes.Equal(pl, in.payload) {
		tb.Fatalf("gopacket payload differs")
	}
	return in
}

// withHeadroom copies pkt into a new buffer after offset bytes of headroom,
// with capacity for capacity bytes after offset.
func withHeadroom(pkt []byte, offset, capacity int) []byte {
	b := make([]byte, offset+len(pkt), offset+max(capacity, len(pkt)))
	copy(b[offset:], pkt)
	return b
}

// makeOuts returns n output buffers of size bytes each.
func makeOuts(n, size int) [][]byte {
	outs := make([][]byte, n)
	for i := range outs {
		outs[i] = make([]byte, size)
	}
	return outs
}

// splitWritten splits a packet that Coalesce chose to write (its
// virtio-net header before offset) back into plain packets, as the kernel
// would on write.
func splitWritten(tb testing.TB, buf []byte, offset, l2 int) [][]byte {
	tb.Helper()
	var hdr VirtioNetHdr
	if err := hdr.Decode(buf[offset-VirtioNetHdrLen:]); err != nil {
		tb.Fatal(err)
	}
	pkt := buf[offset:]
	outs := makeOuts(maxCoalesceSegments+1, len(pkt)+offset)
	sizes := make([]int, len(outs))
	n, err := SplitGSO(pkt, hdr, l2, outs, sizes, offset)
	if err != nil {
		tb.Fatalf("SplitGSO of a coalesced packet (hdr %+v): %v", hdr, err)
	}
	if hdr.GSOType != GSONone && n < 2 {
		tb.Fatalf("GSO packet with %d segments", n)
	}
	res := make([][]byte, n)
	for i := range n {
		res[i] = outs[i][offset : offset+sizes[i]]
	}
	return res
}
