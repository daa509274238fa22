//go:build linux

package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Decode decodes a captured packet whose data starts with a header of link
// type lt. Decoding never fails: what cannot be decoded shows up as an
// error layer (pkt.ErrorLayer()) and in Describe as "[malformed]".
func Decode(p Packet, lt layers.LinkType) gopacket.Packet {
	pkt := gopacket.NewPacket(p.Data, lt, gopacket.DecodeOptions{NoCopy: true})
	pkt.Metadata().CaptureInfo = p.CaptureInfo()
	return pkt
}

// Line is the line printed for a packet: the local time of day with
// microseconds, the direction when known, and Describe. For example
//
//	14:03:07.123456 Out IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 64
func Line(p Packet, pkt gopacket.Packet) string {
	var b strings.Builder
	b.WriteString(p.Timestamp.Format("15:04:05.000000"))
	if d := p.Direction.String(); d != "" {
		b.WriteString(" " + d)
	}
	b.WriteString(" " + Describe(pkt))
	return b.String()
}

// Describe summarises a decoded packet in one line as tcpdump -n does,
// without the time: "IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7,
// seq 1, length 64", "ARP, Request who-has 192.0.2.2 tell 192.0.2.1,
// length 28", "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [S], seq 1, win
// 64240, length 0". Frames of another EtherType give their addresses and
// the EtherType in hex.
func Describe(pkt gopacket.Packet) string {
	var b strings.Builder
	describe(&b, pkt)
	if malformed(pkt) {
		b.WriteString(" [malformed]")
	} else if md := pkt.Metadata(); md.Truncated || md.CaptureLength < md.Length {
		b.WriteString(" [truncated]")
	}
	return b.String()
}

// malformed reports whether a header that Describe shows could not be
// decoded. Payloads Describe does not look into (DNS in UDP, an unknown
// EtherType) may fail to decode in gopacket without the packet being
// malformed.
func malformed(pkt gopacket.Packet) bool {
	fail := pkt.ErrorLayer()
	if fail == nil {
		return false
	}
	// Every layer's bytes are a window on the packet's data (Decode does
	// not copy), so a slice's capacity tells where it starts.
	data := pkt.Data()
	offset := func(b []byte) int { return cap(data) - cap(b) }
	at := offset(fail.LayerContents())
	// The layer whose payload failed to decode says what it should have
	// been.
	ls := pkt.Layers()
	for i := len(ls) - 1; i >= 0; i-- {
		p := ls[i].LayerPayload()
		if ls[i] == fail || p == nil || offset(p) != at {
			continue
		}
		switch l := ls[i].(type) {
		case *layers.Ethernet:
			return shownEtherType(l.EthernetType)
		case *layers.Dot1Q:
			return shownEtherType(l.Type)
		case *layers.LinuxSLL:
			return shownEtherType(l.EthernetType)
		case *layers.IPv4:
			return shownIPProtocol(l.Protocol)
		case *layers.IPv6:
			return shownIPProtocol(l.NextHeader)
		case *layers.IPv6HopByHop:
			return shownIPProtocol(l.NextHeader)
		case *layers.IPv6Destination:
			return shownIPProtocol(l.NextHeader)
		case *layers.IPv6Routing:
			return shownIPProtocol(l.NextHeader)
		case *layers.ICMPv6:
			return true
		}
		return false
	}
	return true // the first header failed
}

// shownEtherType: Describe decodes what follows this EtherType.
func shownEtherType(t layers.EthernetType) bool {
	switch t {
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6, layers.EthernetTypeARP, layers.EthernetTypeDot1Q:
		return true
	}
	return false
}

// shownIPProtocol: Describe decodes the header of this IP protocol.
func shownIPProtocol(p layers.IPProtocol) bool {
	switch p {
	case layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4, layers.IPProtocolICMPv6,
		layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Fragment:
		return true
	}
	return false
}

func describe(b *strings.Builder, pkt gopacket.Packet) {
	ls := pkt.Layers()
	var eth *layers.Ethernet
	etherType, haveType := layers.EthernetType(0), false
	for i, l := range ls {
		switch l := l.(type) {
		case *layers.Ethernet:
			eth, etherType, haveType = l, l.EthernetType, true
			continue
		case *layers.LinuxSLL:
			etherType, haveType = l.EthernetType, true
			continue
		case *layers.Dot1Q:
			fmt.Fprintf(b, "vlan %d, ", l.VLANIdentifier)
			etherType, haveType = l.Type, true
			continue
		case *layers.IPv4:
			describeIPv4(b, l, ls[i+1:])
			return
		case *layers.IPv6:
			describeIPv6(b, l, ls[i+1:])
			return
		case *layers.ARP:
			describeARP(b, l)
			return
		}
		break
	}
	length := pkt.Metadata().Length
	if length == 0 {
		length = len(pkt.Data())
	}
	switch {
	case eth != nil:
		fmt.Fprintf(b, "%s > %s, %s, length %d", eth.SrcMAC, eth.DstMAC, etherTypeName(eth, etherType), length)
	case haveType:
		fmt.Fprintf(b, "%s, length %d", etherTypeName(nil, etherType), length)
	case len(pkt.Data()) > 0:
		// Raw IP whose version is neither 4 nor 6.
		fmt.Fprintf(b, "unknown packet (IP version %d), length %d", pkt.Data()[0]>>4, length)
	default:
		fmt.Fprintf(b, "empty packet")
	}
}

// etherTypeName names an EtherType: "ethertype 0x88b5", or with gopacket's
// name when it has one, "ethertype LinkLayerDiscovery (0x88cc)"; "802.3,
// LLC" for a frame with a length instead of a type.
func etherTypeName(eth *layers.Ethernet, t layers.EthernetType) string {
	if t == layers.EthernetTypeLLC && eth != nil && eth.Length != 0 {
		return "802.3 LLC"
	}
	if name := t.String(); !strings.HasPrefix(name, "Unknown") && t != layers.EthernetTypeLLC {
		return fmt.Sprintf("ethertype %s (0x%04x)", name, uint16(t))
	}
	return fmt.Sprintf("ethertype 0x%04x", uint16(t))
}

func describeIPv4(b *strings.Builder, ip *layers.IPv4, rest []gopacket.Layer) {
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		more := ""
		if ip.Flags&layers.IPv4MoreFragments != 0 {
			more = ", more"
		}
		fmt.Fprintf(b, "IP %s > %s: fragment of %s (id %d, offset %d%s), length %d",
			ip.SrcIP, ip.DstIP, protoName(ip.Protocol), ip.Id, int(ip.FragOffset)*8, more, len(ip.Payload))
		return
	}
	describeTransport(b, "IP", ip.SrcIP, ip.DstIP, ip.Protocol, len(ip.Payload), rest)
}

func describeIPv6(b *strings.Builder, ip *layers.IPv6, rest []gopacket.Layer) {
	proto := ip.NextHeader
	for i, l := range rest {
		switch l := l.(type) {
		case *layers.IPv6HopByHop:
			proto = l.NextHeader
		case *layers.IPv6Destination:
			proto = l.NextHeader
		case *layers.IPv6Routing:
			proto = l.NextHeader
		case *layers.IPv6Fragment:
			more := ""
			if l.MoreFragments {
				more = ", more"
			}
			fmt.Fprintf(b, "IP6 %s > %s: fragment of %s (id %d, offset %d%s), length %d",
				ip.SrcIP, ip.DstIP, protoName(l.NextHeader), l.Identification, int(l.FragmentOffset)*8, more, len(ip.Payload))
			return
		default:
			describeTransport(b, "IP6", ip.SrcIP, ip.DstIP, proto, len(ip.Payload), rest[i:])
			return
		}
	}
	describeTransport(b, "IP6", ip.SrcIP, ip.DstIP, proto, len(ip.Payload), nil)
}

// describeTransport writes what follows the IP header: family is "IP" or
// "IP6", proto the upper-layer protocol, plen the IP payload length and rest
// the layers after the IP header and its extension headers.
func describeTransport(b *strings.Builder, family string, src, dst net.IP, proto layers.IPProtocol, plen int, rest []gopacket.Layer) {
	var next gopacket.Layer
	if len(rest) > 0 && len(rest[0].LayerContents()) > 0 {
		next = rest[0] // a header that failed to decode has no contents
	}
	switch l := next.(type) {
	case *layers.TCP:
		fmt.Fprintf(b, "%s %s.%d > %s.%d: Flags [%s]", family, src, uint16(l.SrcPort), dst, uint16(l.DstPort), tcpFlags(l))
		switch n := len(l.Payload); {
		case n > 0:
			fmt.Fprintf(b, ", seq %d:%d", l.Seq, uint64(l.Seq)+uint64(n))
		case l.SYN || l.FIN || l.RST:
			fmt.Fprintf(b, ", seq %d", l.Seq)
		}
		if l.ACK {
			fmt.Fprintf(b, ", ack %d", l.Ack)
		}
		fmt.Fprintf(b, ", win %d, length %d", l.Window, len(l.Payload))
	case *layers.UDP:
		fmt.Fprintf(b, "%s %s.%d > %s.%d: UDP, length %d", family, src, uint16(l.SrcPort), dst, uint16(l.DstPort), len(l.Payload))
	case *layers.ICMPv4:
		fmt.Fprintf(b, "%s %s > %s: ICMP %s, length %d", family, src, dst, icmp4Text(l), len(l.Contents)+len(l.Payload))
	case *layers.ICMPv6:
		fmt.Fprintf(b, "%s %s > %s: ICMP6, %s, length %d", family, src, dst, icmp6Text(l, rest[1:]), len(l.Contents)+len(l.Payload))
	default:
		fmt.Fprintf(b, "%s %s > %s: %s, length %d", family, src, dst, protoName(proto), plen)
	}
}

// protoName names an IP protocol as gopacket does ("GRE", "UDP"), or as
// tcpdump does when gopacket does not know it ("ip-proto-253").
func protoName(p layers.IPProtocol) string {
	if name := p.String(); !strings.HasPrefix(name, "Unknown") {
		return name
	}
	return fmt.Sprintf("ip-proto-%d", uint8(p))
}

// tcpFlags spells TCP flags as tcpdump: S, F, R, P, U, E, W, and "." for
// ACK, so "S." is SYN-ACK; "none" when no flag is set.
func tcpFlags(t *layers.TCP) string {
	var s strings.Builder
	for _, f := range []struct {
		set bool
		c   byte
	}{{t.FIN, 'F'}, {t.SYN, 'S'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, '.'}, {t.URG, 'U'}, {t.ECE, 'E'}, {t.CWR, 'W'}} {
		if f.set {
			s.WriteByte(f.c)
		}
	}
	if s.Len() == 0 {
		return "none"
	}
	return s.String()
}

func icmp4Text(l *layers.ICMPv4) string {
	typ, code := l.TypeCode.Type(), l.TypeCode.Code()
	switch typ {
	case layers.ICMPv4TypeEchoRequest:
		return fmt.Sprintf("echo request, id %d, seq %d", l.Id, l.Seq)
	case layers.ICMPv4TypeEchoReply:
		return fmt.Sprintf("echo reply, id %d, seq %d", l.Id, l.Seq)
	case layers.ICMPv4TypeDestinationUnreachable:
		dst, transport, port := quoted(l.Payload, layers.LayerTypeIPv4)
		if dst == "" {
			return fmt.Sprintf("destination unreachable, code %d", code)
		}
		switch code {
		case layers.ICMPv4CodeNet:
			return "net " + dst + " unreachable"
		case layers.ICMPv4CodeHost:
			return "host " + dst + " unreachable"
		case layers.ICMPv4CodeProtocol:
			return fmt.Sprintf("%s protocol %s unreachable", dst, transport)
		case layers.ICMPv4CodePort:
			return fmt.Sprintf("%s %s port %s unreachable", dst, strings.ToLower(transport), port)
		case layers.ICMPv4CodeFragmentationNeeded:
			return fmt.Sprintf("%s unreachable - need to frag (mtu %d)", dst, l.Seq)
		}
		return fmt.Sprintf("%s unreachable, code %d", dst, code)
	case layers.ICMPv4TypeTimeExceeded:
		if code == layers.ICMPv4CodeFragmentReassemblyTimeExceeded {
			return "ip reassembly time exceeded"
		}
		return "time exceeded in-transit"
	case layers.ICMPv4TypeRedirect:
		return "redirect"
	case layers.ICMPv4TypeParameterProblem:
		return "parameter problem"
	case layers.ICMPv4TypeRouterAdvertisement:
		return "router advertisement"
	case layers.ICMPv4TypeRouterSolicitation:
		return "router solicitation"
	case layers.ICMPv4TypeTimestampRequest:
		return "time stamp request"
	case layers.ICMPv4TypeTimestampReply:
		return "time stamp reply"
	}
	return fmt.Sprintf("type %d, code %d", typ, code)
}

func icmp6Text(l *layers.ICMPv6, rest []gopacket.Layer) string {
	typ, code := l.TypeCode.Type(), l.TypeCode.Code()
	var next gopacket.Layer
	if len(rest) > 0 {
		next = rest[0]
	}
	switch typ {
	case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
		what := "echo request"
		if typ == layers.ICMPv6TypeEchoReply {
			what = "echo reply"
		}
		if e, ok := next.(*layers.ICMPv6Echo); ok {
			return fmt.Sprintf("%s, id %d, seq %d", what, e.Identifier, e.SeqNumber)
		}
		return what
	case layers.ICMPv6TypeNeighborSolicitation:
		if ns, ok := next.(*layers.ICMPv6NeighborSolicitation); ok {
			return "neighbor solicitation, who has " + ns.TargetAddress.String()
		}
		return "neighbor solicitation"
	case layers.ICMPv6TypeNeighborAdvertisement:
		if na, ok := next.(*layers.ICMPv6NeighborAdvertisement); ok {
			return "neighbor advertisement, tgt is " + na.TargetAddress.String()
		}
		return "neighbor advertisement"
	case layers.ICMPv6TypeRouterSolicitation:
		return "router solicitation"
	case layers.ICMPv6TypeRouterAdvertisement:
		return "router advertisement"
	case layers.ICMPv6TypeRedirect:
		return "redirect"
	case layers.ICMPv6TypeDestinationUnreachable:
		why := map[uint8]string{
			layers.ICMPv6CodeNoRouteToDst:           "unreachable route",
			layers.ICMPv6CodeAdminProhibited:        "unreachable prohibited",
			layers.ICMPv6CodeAddressUnreachable:     "unreachable address",
			layers.ICMPv6CodePortUnreachable:        "unreachable port",
			layers.ICMPv6CodeBeyondScopeOfSrc:       "beyond scope",
			layers.ICMPv6CodeSrcAddressFailedPolicy: "failed policy",
			layers.ICMPv6CodeRejectRouteToDst:       "reject route",
		}[code]
		if why == "" {
			why = fmt.Sprintf("code %d", code)
		}
		s := "destination unreachable, " + why
		// The quoted packet follows 4 unused bytes.
		if len(l.Payload) > 4 {
			if dst, transport, port := quoted(l.Payload[4:], layers.LayerTypeIPv6); dst != "" {
				s += ", " + dst
				if port != "" {
					s += " " + strings.ToLower(transport) + " port " + port
				}
			}
		}
		return s
	case layers.ICMPv6TypePacketTooBig:
		if len(l.Payload) >= 4 {
			return fmt.Sprintf("packet too big, mtu %d", binary.BigEndian.Uint32(l.Payload))
		}
		return "packet too big"
	case layers.ICMPv6TypeTimeExceeded:
		if code == 1 {
			return "ip6 reassembly time exceeded"
		}
		return "time exceeded in-transit"
	case layers.ICMPv6TypeParameterProblem:
		return "parameter problem"
	case layers.ICMPv6TypeMLDv1MulticastListenerQueryMessage:
		return "multicast listener query"
	case layers.ICMPv6TypeMLDv1MulticastListenerReportMessage:
		return "multicast listener report"
	case layers.ICMPv6TypeMLDv1MulticastListenerDoneMessage:
		return "multicast listener done"
	case layers.ICMPv6TypeMLDv2MulticastListenerReportMessageV2:
		if len(l.Payload) >= 4 {
			return fmt.Sprintf("multicast listener report v2, %d group record(s)", binary.BigEndian.Uint16(l.Payload[2:]))
		}
		return "multicast listener report v2"
	}
	return fmt.Sprintf("type %d, code %d", typ, code)
}

// quoted decodes the start of the packet an ICMP error quotes and returns
// its destination address, its transport protocol and, for TCP and UDP, its
// destination port; dst is "" when nothing could be decoded.
func quoted(data []byte, first gopacket.LayerType) (dst, transport, port string) {
	inner := gopacket.NewPacket(data, first, gopacket.DecodeOptions{NoCopy: true})
	switch ip := inner.NetworkLayer().(type) {
	case *layers.IPv4:
		dst, transport = ip.DstIP.String(), protoName(ip.Protocol)
	case *layers.IPv6:
		dst, transport = ip.DstIP.String(), protoName(ip.NextHeader)
	default:
		return "", "", ""
	}
	switch t := inner.TransportLayer().(type) {
	case *layers.TCP:
		port = fmt.Sprint(uint16(t.DstPort))
	case *layers.UDP:
		port = fmt.Sprint(uint16(t.DstPort))
	}
	return dst, transport, port
}

func describeARP(b *strings.Builder, a *layers.ARP) {
	length := len(a.Contents) + len(a.Payload)
	if a.Protocol != layers.EthernetTypeIPv4 || a.AddrType != layers.LinkTypeEthernet {
		fmt.Fprintf(b, "ARP, hardware type %d, protocol 0x%04x, op %d, length %d", uint16(a.AddrType), uint16(a.Protocol), a.Operation, length)
		return
	}
	switch a.Operation {
	case layers.ARPRequest:
		fmt.Fprintf(b, "ARP, Request who-has %s tell %s, length %d", net.IP(a.DstProtAddress), net.IP(a.SourceProtAddress), length)
	case layers.ARPReply:
		fmt.Fprintf(b, "ARP, Reply %s is-at %s, length %d", net.IP(a.SourceProtAddress), net.HardwareAddr(a.SourceHwAddress), length)
	default:
		fmt.Fprintf(b, "ARP, op %d, who-has %s tell %s, length %d", a.Operation, net.IP(a.DstProtAddress), net.IP(a.SourceProtAddress), length)
	}
}
