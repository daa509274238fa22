package responder

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// counterFor maps a verdict to the counter it must increment.
func counterFor(s *Stats, v verdict) *uint64 {
	switch v {
	case echoReply:
		return &s.EchoReplies
	case arpReply:
		return &s.ARPReplies
	case naReply:
		return &s.NAReplies
	case ignored:
		return &s.Ignored
	case malformed:
		return &s.Malformed
	}
	panic("bad verdict")
}

var verdictNames = map[verdict]string{
	ignored: "ignored", malformed: "malformed", echoReply: "echo reply", arpReply: "ARP reply", naReply: "NA",
}

type replyCase struct {
	name string
	eth  bool   // ReplyEthernet rather than ReplyIP
	req  []byte // the request, buf[:n]
	// bufLen and bufCap size the buffer; 0 means 65535. bufLen < len(req)
	// is raised to len(req).
	bufLen, bufCap int
	want           verdict
	// check verifies the reply; it is given the request and the reply.
	check func(t *testing.T, req, reply []byte)
}

// run feeds tc.req to a fresh responder and checks the counters, the
// result, that buf is unchanged when there is no reply, and the reply.
func run(t *testing.T, tc replyCase) {
	t.Helper()
	r := newResponder()
	bufCap := tc.bufCap
	if bufCap == 0 {
		bufCap = 65535
	}
	bufLen := tc.bufLen
	if bufLen == 0 {
		bufLen = bufCap
	}
	bufLen = max(bufLen, len(tc.req))
	bufCap = max(bufCap, bufLen)
	buf := make([]byte, bufLen, bufCap)
	full := buf[:bufCap]
	for i := range full {
		full[i] = 0xa5
	}
	copy(buf, tc.req)
	orig := bytes.Clone(full)

	var m int
	var ok bool
	if tc.eth {
		m, ok = r.ReplyEthernet(buf, len(tc.req))
	} else {
		m, ok = r.ReplyIP(buf, len(tc.req))
	}

	var want Stats
	*counterFor(&want, tc.want)++
	if r.Stats != want {
		t.Fatalf("stats = %+v, want %+v (%s)", r.Stats, want, verdictNames[tc.want])
	}
	wantOK := tc.want != ignored && tc.want != malformed
	if ok != wantOK {
		t.Fatalf("ok = %v, want %v", ok, wantOK)
	}
	if !ok {
		if m != 0 {
			t.Errorf("m = %d without a reply", m)
		}
		if !bytes.Equal(full, orig) {
			t.Errorf("buffer changed without a reply")
		}
		return
	}
	if m <= 0 || m > bufCap {
		t.Fatalf("reply length %d out of range (cap %d)", m, bufCap)
	}
	if !bytes.Equal(full[m:], orig[m:]) {
		t.Errorf("bytes after the reply were changed")
	}
	reply := full[:m]
	if tc.eth {
		checkFrameChecksums(t, reply)
	} else {
		checkIPChecksums(t, reply)
	}
	if tc.check != nil {
		tc.check(t, tc.req, reply)
	}
}

func checkEcho4(t *testing.T, req, reply []byte) {
	t.Helper()
	q := decode(t, req, layers.LayerTypeIPv4)
	p := decode(t, reply, layers.LayerTypeIPv4)
	qip := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	pip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	qicmp := q.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	picmp, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if pip == nil || picmp == nil {
		t.Fatalf("reply is not IPv4/ICMP: %v", p)
	}
	if pip.Version != 4 || pip.IHL != 5 || len(pip.Options) != 0 {
		t.Errorf("version %d IHL %d options %v, want 4, 5, none", pip.Version, pip.IHL, pip.Options)
	}
	if pip.TOS != qip.TOS || pip.Id != qip.Id {
		t.Errorf("TOS %#x id %#x, want %#x %#x", pip.TOS, pip.Id, qip.TOS, qip.Id)
	}
	if pip.Flags != qip.Flags&layers.IPv4DontFragment || pip.FragOffset != 0 {
		t.Errorf("flags %v offset %d", pip.Flags, pip.FragOffset)
	}
	if pip.TTL != 64 {
		t.Errorf("TTL %d, want 64", pip.TTL)
	}
	if pip.Protocol != layers.IPProtocolICMPv4 {
		t.Errorf("protocol %v", pip.Protocol)
	}
	if !pip.SrcIP.Equal(qip.DstIP) || !pip.DstIP.Equal(qip.SrcIP) {
		t.Errorf("addresses %v -> %v, want %v -> %v", pip.SrcIP, pip.DstIP, qip.DstIP, qip.SrcIP)
	}
	if want := 20 + 8 + len(qicmp.Payload); int(pip.Length) != want || len(reply) != want {
		t.Errorf("length %d (reply %d bytes), want %d", pip.Length, len(reply), want)
	}
	if picmp.TypeCode != layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0) {
		t.Errorf("type %v, want echo reply", picmp.TypeCode)
	}
	if picmp.Id != qicmp.Id || picmp.Seq != qicmp.Seq {
		t.Errorf("id/seq %#x/%d, want %#x/%d", picmp.Id, picmp.Seq, qicmp.Id, qicmp.Seq)
	}
	if !bytes.Equal(picmp.Payload, qicmp.Payload) {
		t.Errorf("payload differs (%d bytes, want %d)", len(picmp.Payload), len(qicmp.Payload))
	}
}

func checkEcho6(t *testing.T, req, reply []byte) {
	t.Helper()
	q := decode(t, req, layers.LayerTypeIPv6)
	p := decode(t, reply, layers.LayerTypeIPv6)
	qip := q.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	pip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	qecho := q.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
	picmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	pecho, _ := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
	if pip == nil || picmp == nil || pecho == nil {
		t.Fatalf("reply is not IPv6/ICMPv6 echo: %v", p)
	}
	if pip.Version != 6 || pip.TrafficClass != qip.TrafficClass || pip.FlowLabel != qip.FlowLabel {
		t.Errorf("version %d class %#x flow %#x", pip.Version, pip.TrafficClass, pip.FlowLabel)
	}
	if pip.HopLimit != 64 {
		t.Errorf("hop limit %d, want 64", pip.HopLimit)
	}
	if pip.NextHeader != layers.IPProtocolICMPv6 {
		t.Errorf("next header %v", pip.NextHeader)
	}
	if !pip.SrcIP.Equal(qip.DstIP) || !pip.DstIP.Equal(qip.SrcIP) {
		t.Errorf("addresses %v -> %v, want %v -> %v", pip.SrcIP, pip.DstIP, qip.DstIP, qip.SrcIP)
	}
	if want := 8 + len(qecho.Payload); int(pip.Length) != want || len(reply) != 40+want {
		t.Errorf("payload length %d (reply %d bytes), want %d", pip.Length, len(reply), want)
	}
	if picmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoReply, 0) {
		t.Errorf("type %v, want echo reply", picmp.TypeCode)
	}
	if pecho.Identifier != qecho.Identifier || pecho.SeqNumber != qecho.SeqNumber {
		t.Errorf("id/seq %#x/%d, want %#x/%d", pecho.Identifier, pecho.SeqNumber, qecho.Identifier, qecho.SeqNumber)
	}
	if !bytes.Equal(pecho.Payload, qecho.Payload) {
		t.Errorf("payload differs (%d bytes, want %d)", len(pecho.Payload), len(qecho.Payload))
	}
}

// checkEthernetEcho checks the Ethernet header of an echo reply frame and
// then the IP packet inside.
func checkEthernetEcho(inner func(*testing.T, []byte, []byte)) func(*testing.T, []byte, []byte) {
	return func(t *testing.T, req, reply []byte) {
		t.Helper()
		p := decode(t, reply, layers.LayerTypeEthernet)
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !bytes.Equal(eth.SrcMAC, respMAC) || !bytes.Equal(eth.DstMAC, req[6:12]) {
			t.Errorf("MACs %v -> %v, want %v -> %v", eth.SrcMAC, eth.DstMAC, respMAC, net.HardwareAddr(req[6:12]))
		}
		if !bytes.Equal(reply[12:14], req[12:14]) {
			t.Errorf("EtherType %x, want %x", reply[12:14], req[12:14])
		}
		// Cut link-layer padding off the request.
		ip := req[14:]
		if ip[0]>>4 == 4 {
			ip = ip[:binary.BigEndian.Uint16(ip[2:])]
		} else {
			ip = ip[:40+binary.BigEndian.Uint16(ip[4:])]
		}
		inner(t, ip, reply[14:])
	}
}

func checkARP(t *testing.T, req, reply []byte) {
	t.Helper()
	if len(reply) != 42 {
		t.Fatalf("ARP reply of %d bytes, want 42", len(reply))
	}
	q := decode(t, req, layers.LayerTypeEthernet)
	p := decode(t, reply, layers.LayerTypeEthernet)
	qarp := q.Layer(layers.LayerTypeARP).(*layers.ARP)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	parp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if parp == nil {
		t.Fatalf("reply is not ARP: %v", p)
	}
	if !bytes.Equal(eth.SrcMAC, respMAC) || !bytes.Equal(eth.DstMAC, qarp.SourceHwAddress) || eth.EthernetType != layers.EthernetTypeARP {
		t.Errorf("Ethernet %v -> %v type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
	}
	if parp.AddrType != layers.LinkTypeEthernet || parp.Protocol != layers.EthernetTypeIPv4 ||
		parp.HwAddressSize != 6 || parp.ProtAddressSize != 4 || parp.Operation != layers.ARPReply {
		t.Errorf("ARP header %+v", parp)
	}
	if !bytes.Equal(parp.SourceHwAddress, respMAC) || !bytes.Equal(parp.SourceProtAddress, qarp.DstProtAddress) {
		t.Errorf("sender %v %v, want %v %v", net.HardwareAddr(parp.SourceHwAddress), net.IP(parp.SourceProtAddress),
			respMAC, net.IP(qarp.DstProtAddress))
	}
	if !bytes.Equal(parp.DstHwAddress, qarp.SourceHwAddress) || !bytes.Equal(parp.DstProtAddress, qarp.SourceProtAddress) {
		t.Errorf("target %v %v, want %v %v", net.HardwareAddr(parp.DstHwAddress), net.IP(parp.DstProtAddress),
			net.HardwareAddr(qarp.SourceHwAddress), net.IP(qarp.SourceProtAddress))
	}
}

func checkNA(t *testing.T, req, reply []byte) {
	t.Helper()
	if len(reply) != 86 {
		t.Fatalf("NA of %d bytes, want 86", len(reply))
	}
	q := decode(t, req, layers.LayerTypeEthernet)
	p := decode(t, reply, layers.LayerTypeEthernet)
	qip := q.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	qns := q.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	pip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	picmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if pip == nil || picmp == nil || na == nil {
		t.Fatalf("reply is not a neighbour advertisement: %v", p)
	}
	if !bytes.Equal(eth.SrcMAC, respMAC) || !bytes.Equal(eth.DstMAC, tapMAC) || eth.EthernetType != layers.EthernetTypeIPv6 {
		t.Errorf("Ethernet %v -> %v type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
	}
	if pip.Version != 6 || pip.TrafficClass != 0 || pip.FlowLabel != 0 || pip.Length != 32 ||
		pip.NextHeader != layers.IPProtocolICMPv6 || pip.HopLimit != 255 {
		t.Errorf("IPv6 header %+v", pip)
	}
	if !pip.SrcIP.Equal(qns.TargetAddress) || !pip.DstIP.Equal(qip.SrcIP) {
		t.Errorf("addresses %v -> %v, want %v -> %v", pip.SrcIP, pip.DstIP, qns.TargetAddress, qip.SrcIP)
	}
	if picmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0) {
		t.Errorf("type %v", picmp.TypeCode)
	}
	if na.Router() || !na.Solicited() || !na.Override() || na.Flags != 0x60 {
		t.Errorf("flags %#x, want solicited and override only", na.Flags)
	}
	if !na.TargetAddress.Equal(qns.TargetAddress) {
		t.Errorf("target %v, want %v", na.TargetAddress, qns.TargetAddress)
	}
	if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, respMAC) {
		t.Errorf("options %v, want target link-layer address %v", na.Options, respMAC)
	}
	if !bytes.Equal(reply[58:62], []byte{0x60, 0, 0, 0}) {
		t.Errorf("flags and reserved bytes %x, want 60000000", reply[58:62])
	}
}

// mutate returns a copy of b changed by f.
func mutate(b []byte, f func(b []byte)) []byte {
	b = bytes.Clone(b)
	f(b)
	return b
}

// fixIPv4 recomputes the IPv4 header checksum of p.
func fixIPv4(p []byte) {
	ihl := int(p[0]&15) * 4
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], ^uint16(refSum(p[:ihl])))
}

func TestReplyIP(t *testing.T) {
	small := payloadOf(56)
	big := payloadOf(1400)
	v4 := echo4(t, own4, peer4, small)
	v6 := echo6(t, own6, peer6, small)
	rr := layers.IPv4Option{OptionType: 7, OptionLength: 11, OptionData: []byte{4, 0, 0, 0, 0, 0, 0, 0, 0}}
	nop := layers.IPv4Option{OptionType: 1}
	udpIP := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: own4, DstIP: peer4}
	udpL := &layers.UDP{SrcPort: 1, DstPort: 7}
	if err := udpL.SetNetworkLayerForChecksum(udpIP); err != nil {
		t.Fatal(err)
	}
	udp := serialize(t, udpIP, udpL, gopacket.Payload(small))

	cases := []replyCase{
		{name: "v4 echo", req: v4, want: echoReply, check: checkEcho4},
		{name: "v4 echo 1400 bytes", req: echo4(t, own4, peer4, big), want: echoReply, check: checkEcho4},
		{name: "v4 echo empty payload", req: echo4(t, own4, peer4, nil), want: echoReply, check: checkEcho4},
		{name: "v4 echo from elsewhere", req: echo4(t, other4, net.IP{192, 0, 2, 254}, small), want: echoReply, check: checkEcho4},
		{name: "v4 echo exact buffer", req: v4, bufCap: len(v4), want: echoReply, check: checkEcho4},
		{name: "v4 echo with padding", req: append(bytes.Clone(v4), 1, 2, 3, 4, 5, 6),
			want: echoReply, check: func(t *testing.T, req, reply []byte) { checkEcho4(t, req[:len(req)-6], reply) }},
		{name: "v4 options RR", req: echo4(t, own4, peer4, big, rr), want: echoReply, check: checkEcho4},
		{name: "v4 options NOPs", req: echo4(t, own4, peer4, small, nop, nop, nop, nop, nop), want: echoReply, check: checkEcho4},
		{name: "v4 max options", req: echo4(t, own4, peer4, small,
			layers.IPv4Option{OptionType: 7, OptionLength: 39, OptionData: append([]byte{4}, make([]byte, 36)...)}),
			want: echoReply, check: checkEcho4},
		{name: "v4 echo to own address", req: echo4(t, peer4, own4, small), want: ignored},
		{name: "v4 echo outside prefix", req: echo4(t, own4, other4, small), want: ignored},
		{name: "v4 echo to network address", req: echo4(t, own4, net.IP{192, 0, 2, 0}, small), want: ignored},
		{name: "v4 echo to broadcast", req: echo4(t, own4, net.IP{192, 0, 2, 255}, small), want: ignored},
		{name: "v4 echo to multicast", req: echo4(t, own4, net.IP{224, 0, 0, 1}, small), want: ignored},
		{name: "v4 echo from unspecified", req: echo4(t, net.IPv4zero.To4(), peer4, small), want: ignored},
		{name: "v4 echo from broadcast", req: echo4(t, net.IP{255, 255, 255, 255}, peer4, small), want: ignored},
		{name: "v4 echo reply", req: mutate(v4, func(b []byte) { b[20] = 0; b[22] += 8 }), want: ignored},
		{name: "v4 echo code 1", req: mutate(v4, func(b []byte) { b[21] = 1; b[23]-- }), want: ignored},
		{name: "v4 UDP", req: udp, want: ignored},
		{name: "v4 fragment MF", req: mutate(v4, func(b []byte) { b[6] |= 0x20; fixIPv4(b) }), want: ignored},
		{name: "v4 fragment offset", req: mutate(v4, func(b []byte) { b[7] = 1; fixIPv4(b) }), want: ignored},
		{name: "v4 bad header checksum", req: mutate(v4, func(b []byte) { b[10] ^= 1 }), want: malformed},
		{name: "v4 bad ICMP checksum", req: mutate(v4, func(b []byte) { b[22] ^= 1 }), want: malformed},
		{name: "v4 corrupted payload", req: mutate(v4, func(b []byte) { b[40] ^= 0x80 }), want: malformed},
		{name: "v4 IHL 4", req: mutate(v4, func(b []byte) { b[0] = 0x44; fixIPv4(b) }), want: malformed},
		{name: "v4 IHL 0", req: mutate(v4, func(b []byte) { b[0] = 0x40 }), want: malformed},
		{name: "v4 IHL beyond total length", req: mutate(v4[:40], func(b []byte) { b[0] = 0x4f; b[3] = 40 }), want: malformed},
		{name: "v4 total length beyond n", req: mutate(v4, func(b []byte) { b[3]++; fixIPv4(b) }), want: malformed},
		{name: "v4 total length below IHL", req: mutate(v4, func(b []byte) { b[2], b[3] = 0, 19; fixIPv4(b) }), want: malformed},
		{name: "v4 ICMP too short", req: mutate(v4[:24], func(b []byte) { b[2], b[3] = 0, 24; fixIPv4(b) }), want: malformed},
		{name: "version 5", req: mutate(v4, func(b []byte) { b[0] = 0x55 }), want: malformed},
		{name: "empty", req: []byte{}, want: malformed},

		{name: "v6 echo", req: v6, want: echoReply, check: checkEcho6},
		{name: "v6 echo 1400 bytes", req: echo6(t, own6, peer6, big), want: echoReply, check: checkEcho6},
		{name: "v6 echo empty payload", req: echo6(t, own6, peer6, nil), want: echoReply, check: checkEcho6},
		{name: "v6 echo with padding", req: append(bytes.Clone(v6), 9, 9, 9),
			want: echoReply, check: func(t *testing.T, req, reply []byte) { checkEcho6(t, req[:len(req)-3], reply) }},
		{name: "v6 echo from link-local", req: echo6(t, net.ParseIP("fe80::1"), peer6, small), want: echoReply, check: checkEcho6},
		{name: "v6 echo to own address", req: echo6(t, peer6, own6, small), want: ignored},
		{name: "v6 echo outside prefix", req: echo6(t, own6, other6, small), want: ignored},
		{name: "v6 echo to subnet-router anycast", req: echo6(t, own6, net.ParseIP("2001:db8::"), small), want: ignored},
		{name: "v6 echo to all-ones host part", req: echo6(t, own6, net.ParseIP("2001:db8::ffff:ffff:ffff:ffff"), small),
			want: echoReply, check: checkEcho6},
		{name: "v6 echo from unspecified", req: echo6(t, net.IPv6unspecified, peer6, small), want: ignored},
		{name: "v6 echo from multicast", req: echo6(t, net.ParseIP("ff02::1"), peer6, small), want: ignored},
		{name: "v6 echo reply", req: mutate(v6, func(b []byte) { b[40] = 129; b[42]-- }), want: ignored},
		{name: "v6 bad checksum", req: mutate(v6, func(b []byte) { b[42] ^= 1 }), want: malformed},
		{name: "v6 corrupted source", req: mutate(v6, func(b []byte) { b[9] ^= 1 }), want: malformed},
		{name: "v6 payload length beyond n", req: mutate(v6, func(b []byte) { b[5]++ }), want: malformed},
		{name: "v6 ICMP too short", req: mutate(v6[:46], func(b []byte) { b[4], b[5] = 0, 6 }), want: malformed},
		{name: "v6 ICMP 3 bytes", req: mutate(v6[:43], func(b []byte) { b[4], b[5] = 0, 3 }), want: malformed},
		{name: "v6 echo code 1", req: mutate(v6, func(b []byte) { b[41] = 1; b[43]-- }), want: ignored},
		{name: "v6 hop-by-hop header", req: mutate(v6, func(b []byte) { b[6] = 0 }), want: ignored},
		{name: "v6 UDP", req: mutate(v6, func(b []byte) { b[6] = 17 }), want: ignored},
		{name: "v6 NS on TUN", req: ns(t, peer6, nsOpts{})[14:], want: ignored},
	}
	for _, tc := range cases {
		if strings.Contains(tc.name, "options") && tc.req[0]&15 <= 5 {
			t.Fatalf("%s: request has no options", tc.name)
		}
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
}

func TestReplyEthernet(t *testing.T) {
	small := payloadOf(56)
	big := payloadOf(1400)
	arp := arpRequest(t, bcast, own4, peer4)
	nsReq := ns(t, peer6, nsOpts{})
	v4 := serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, small))...)
	v6 := serialize(t, withEther(respMAC, layers.EthernetTypeIPv6, echo6Layers(own6, peer6, small))...)
	vlanARP := serialize(t,
		&layers.Ethernet{SrcMAC: tapMAC, DstMAC: bcast, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeARP},
		arpLayer(layers.ARPRequest, own4, peer4))
	vlanEcho := serialize(t, append([]gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: tapMAC, DstMAC: respMAC, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4}},
		echo4Layers(own4, peer4, small)...)...)
	nsNoSLLAO := ns(t, peer6, nsOpts{noSLLAO: true})

	cases := []replyCase{
		{name: "ARP request", req: arp, want: arpReply, check: checkARP},
		{name: "ARP request padded to 60", req: append(bytes.Clone(arp), make([]byte, 18)...), want: arpReply, check: checkARP},
		{name: "ARP request unicast", req: arpRequest(t, respMAC, own4, peer4), want: arpReply, check: checkARP},
		{name: "ARP request exact buffer", req: arp, bufCap: len(arp), want: arpReply, check: checkARP},
		{name: "ARP probe", req: arpRequest(t, bcast, net.IPv4zero.To4(), peer4), want: arpReply, check: checkARP},
		{name: "ARP for own address", req: arpRequest(t, bcast, peer4, own4), want: ignored},
		{name: "ARP outside prefix", req: arpRequest(t, bcast, own4, other4), want: ignored},
		{name: "ARP for broadcast address", req: arpRequest(t, bcast, own4, net.IP{192, 0, 2, 255}), want: ignored},
		{name: "ARP unicast to another host", req: arpRequest(t, tapMAC, own4, peer4), want: ignored},
		{name: "gratuitous ARP", req: arpRequest(t, bcast, peer4, peer4), want: ignored},
		{name: "ARP reply", req: serialize(t, ether(bcast, layers.EthernetTypeARP), arpLayer(layers.ARPReply, own4, peer4)), want: ignored},
		{name: "ARP for IPv6", req: mutate(arp, func(b []byte) { b[16], b[17] = 0x86, 0xdd }), want: ignored},
		{name: "ARP with wrong sizes", req: mutate(arp, func(b []byte) { b[18] = 8 }), want: ignored},
		{name: "ARP from group address", req: mutate(arp, func(b []byte) { b[22] |= 1 }), want: ignored},
		{name: "ARP truncated", req: arp[:41], want: malformed},
		{name: "VLAN ARP", req: vlanARP, want: ignored},
		{name: "VLAN echo", req: vlanEcho, want: ignored},
		{name: "QinQ", req: mutate(vlanARP, func(b []byte) { b[12], b[13] = 0x88, 0xa8 }), want: ignored},

		{name: "NS", req: nsReq, want: naReply, check: checkNA},
		{name: "NS exact buffer", req: nsReq, bufCap: len(nsReq), want: naReply, check: checkNA},
		{name: "NS len < 86 but cap enough", req: nsNoSLLAO, bufLen: len(nsNoSLLAO), bufCap: 86, want: naReply, check: checkNA},
		{name: "NS without SLLAO", req: nsNoSLLAO, want: naReply, check: checkNA},
		{name: "NS without SLLAO, no room", req: nsNoSLLAO, bufCap: len(nsNoSLLAO), want: ignored},
		{name: "NS unicast", req: ns(t, peer6, nsOpts{dst: peer6, ethDst: respMAC}), want: naReply, check: checkNA},
		{name: "NS from link-local", req: ns(t, peer6, nsOpts{src: net.ParseIP("fe80::aa")}), want: naReply, check: checkNA},
		{name: "NS with unknown option", req: ns(t, peer6, nsOpts{extraOpts: layers.ICMPv6Options{
			{Type: 14, Data: []byte{1, 2, 3, 4, 5, 6}}}}), want: naReply, check: checkNA},
		{name: "NS with group SLLAO", req: ns(t, peer6, nsOpts{noSLLAO: true, extraOpts: layers.ICMPv6Options{
			{Type: layers.ICMPv6OptSourceAddress, Data: []byte{0x33, 0x33, 0, 0, 0, 1}}}}), want: ignored},
		{name: "router solicitation", req: mutate(nsReq, func(b []byte) { b[54] = 133; b[56] += 2 }), want: ignored},
		{name: "DAD NS", req: ns(t, peer6, nsOpts{src: net.IPv6unspecified, noSLLAO: true}), want: ignored},
		{name: "NS for own address", req: ns(t, own6, nsOpts{src: peer6}), want: ignored},
		{name: "NS outside prefix", req: ns(t, other6, nsOpts{}), want: ignored},
		{name: "NS for subnet-router anycast", req: ns(t, net.ParseIP("2001:db8::"), nsOpts{}), want: ignored},
		{name: "NS to wrong multicast group", req: ns(t, peer6, nsOpts{dst: net.ParseIP("ff02::1")}), want: ignored},
		{name: "NS unicast to another MAC", req: ns(t, peer6, nsOpts{dst: peer6, ethDst: tapMAC}), want: ignored},
		{name: "NS hop limit 64", req: ns(t, peer6, nsOpts{hopLimit: 64}), want: malformed},
		{name: "NS bad checksum", req: mutate(nsReq, func(b []byte) { b[57] ^= 1 }), want: malformed},
		{name: "NS code 1", req: mutate(nsReq, func(b []byte) { b[55] = 1; b[56]-- }), want: malformed},
		{name: "NS for multicast target", req: ns(t, net.ParseIP("ff02::1"), nsOpts{}), want: malformed},
		{name: "NS zero-length option", req: ns(t, peer6, nsOpts{extraOpts: layers.ICMPv6Options{{Type: 14}}}), want: malformed},
		{name: "NS truncated message", req: mutate(nsReq[:14+40+20], func(b []byte) { b[18], b[19] = 0, 20 }), want: malformed},

		{name: "v4 echo", req: v4, want: echoReply, check: checkEthernetEcho(checkEcho4)},
		{name: "v4 echo 1400 bytes", want: echoReply, check: checkEthernetEcho(checkEcho4),
			req: serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, big))...)},
		{name: "v4 echo with options", want: echoReply, check: checkEthernetEcho(checkEcho4),
			req: serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, small,
				layers.IPv4Option{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}))...)},
		{name: "v4 echo padded to 60", want: echoReply, check: checkEthernetEcho(checkEcho4),
			req: append(serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, []byte{1, 2}))...), make([]byte, 16)...)},
		{name: "v4 echo to another MAC", req: mutate(v4, func(b []byte) { copy(b, tapMAC) }), want: ignored},
		{name: "v4 echo to broadcast MAC", req: mutate(v4, func(b []byte) { copy(b, bcast) }), want: ignored},
		{name: "v4 echo from group MAC", req: mutate(v4, func(b []byte) { b[6] |= 1 }), want: ignored},
		{name: "v4 echo to own address", want: ignored,
			req: serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(peer4, own4, small))...)},
		{name: "v4 bad checksum", req: mutate(v4, func(b []byte) { b[14+22] ^= 1 }), want: malformed},
		{name: "v6 echo", req: v6, want: echoReply, check: checkEthernetEcho(checkEcho6)},
		{name: "v6 echo 1400 bytes", want: echoReply, check: checkEthernetEcho(checkEcho6),
			req: serialize(t, withEther(respMAC, layers.EthernetTypeIPv6, echo6Layers(own6, peer6, big))...)},
		{name: "v6 echo to another MAC", req: mutate(v6, func(b []byte) { copy(b, tapMAC) }), want: ignored},
		{name: "v6 echo outside prefix", want: ignored,
			req: serialize(t, withEther(respMAC, layers.EthernetTypeIPv6, echo6Layers(own6, other6, small))...)},
		{name: "v6 bad checksum", req: mutate(v6, func(b []byte) { b[14+42] ^= 1 }), want: malformed},
		{name: "unknown EtherType", req: mutate(v4, func(b []byte) { b[12], b[13] = 0x88, 0xcc }), want: ignored},
		{name: "short frame", req: v4[:13], want: malformed},
		{name: "empty frame", req: []byte{}, want: malformed},
	}
	for _, tc := range cases {
		tc.eth = true
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
}

// TestTruncated feeds every proper prefix of valid requests: none may be
// answered, all must count as malformed, and the buffer must be unchanged.
func TestTruncated(t *testing.T) {
	small := payloadOf(40)
	ipReqs := map[string][]byte{
		"v4 echo":         echo4(t, own4, peer4, small),
		"v4 echo options": echo4(t, own4, peer4, small, layers.IPv4Option{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}),
		"v6 echo":         echo6(t, own6, peer6, small),
	}
	ethReqs := map[string][]byte{
		"ARP":     arpRequest(t, bcast, own4, peer4),
		"NS":      ns(t, peer6, nsOpts{}),
		"v4 echo": serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, small))...),
		"v6 echo": serialize(t, withEther(respMAC, layers.EthernetTypeIPv6, echo6Layers(own6, peer6, small))...),
	}
	for name, req := range ipReqs {
		for k := 0; k < len(req); k++ {
			t.Run(name, func(t *testing.T) { run(t, replyCase{req: req[:k], want: malformed}) })
		}
	}
	for name, req := range ethReqs {
		for k := 0; k < len(req); k++ {
			t.Run(name, func(t *testing.T) { run(t, replyCase{eth: true, req: req[:k], want: malformed}) })
		}
	}
}

func TestBadN(t *testing.T) {
	r := newResponder()
	buf := make([]byte, 100)
	for _, n := range []int{-1, 101, 1 << 40} {
		if _, ok := r.ReplyIP(buf, n); ok {
			t.Errorf("ReplyIP(n=%d) answered", n)
		}
		if _, ok := r.ReplyEthernet(buf, n); ok {
			t.Errorf("ReplyEthernet(n=%d) answered", n)
		}
	}
	if r.Malformed != 6 || r.Stats != (Stats{Malformed: 6}) {
		t.Errorf("stats %+v", r.Stats)
	}
	if _, ok := r.ReplyIP(nil, 0); ok {
		t.Error("ReplyIP(nil) answered")
	}
}

func TestNoMAC(t *testing.T) {
	for _, mac := range []net.HardwareAddr{nil, {1, 2, 3, 4, 5, 6, 7, 8}} {
		r := newResponder()
		r.MAC = mac
		buf := arpRequest(t, bcast, own4, peer4)
		if _, ok := r.ReplyEthernet(buf, len(buf)); ok || r.Ignored != 1 {
			t.Errorf("MAC %v: answered ARP, stats %+v", mac, r.Stats)
		}
	}
}

func TestAnswers(t *testing.T) {
	r := &Responder{Prefixes: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"),
		netip.MustParsePrefix("198.51.100.6/31"),
		netip.MustParsePrefix("198.51.100.9/32"),
		netip.MustParsePrefix("203.0.113.130/25"),
		netip.MustParsePrefix("2001:db8::1/64"),
		netip.MustParsePrefix("2001:db8:1::/127"),
		netip.MustParsePrefix("2001:db8:2::1/128"),
		netip.MustParsePrefix("10.0.0.1/8"),
		{}, // invalid, skipped
	}}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", false},
		{"192.0.2.2", true},
		{"192.0.2.254", true},
		{"192.0.2.0", false},
		{"192.0.2.255", false},
		{"192.0.3.1", false},
		{"198.51.100.7", true},
		{"198.51.100.6", false},
		{"198.51.100.8", false},
		{"198.51.100.9", false},
		{"203.0.113.128", false},
		{"203.0.113.129", true},
		{"203.0.113.255", false},
		{"203.0.113.127", false},
		{"10.255.255.254", true},
		{"10.255.255.255", false},
		{"2001:db8::1", false},
		{"2001:db8::2", true},
		{"2001:db8::", false},
		{"2001:db8::ffff:ffff:ffff:ffff", true},
		{"2001:db8:1::", false},
		{"2001:db8:1::1", true},
		{"2001:db8:2::1", false},
		{"2001:db8:2::2", false},
		{"::ffff:192.0.2.2", false},
		{"::", false},
		{"0.0.0.0", false},
	} {
		if got := r.answers(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("answers(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if (&Responder{}).answers(netip.MustParseAddr("192.0.2.2")) {
		t.Error("empty responder answers")
	}
}

func TestAllocs(t *testing.T) {
	r := newResponder()
	payload := payloadOf(1400)
	cases := []struct {
		name string
		eth  bool
		req  []byte
	}{
		{"v4 echo", false, echo4(t, own4, peer4, payload)},
		{"v4 echo options", false, echo4(t, own4, peer4, payload, layers.IPv4Option{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}})},
		{"v6 echo", false, echo6(t, own6, peer6, payload)},
		{"eth v4 echo", true, serialize(t, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, payload))...)},
		{"eth v6 echo", true, serialize(t, withEther(respMAC, layers.EthernetTypeIPv6, echo6Layers(own6, peer6, payload))...)},
		{"ARP", true, arpRequest(t, bcast, own4, peer4)},
		{"NS", true, ns(t, peer6, nsOpts{})},
		{"ignored", false, echo4(t, own4, other4, payload)},
		{"malformed", true, ns(t, peer6, nsOpts{hopLimit: 1})},
	}
	buf := make([]byte, 65535)
	for _, tc := range cases {
		var ok bool
		allocs := testing.AllocsPerRun(200, func() {
			copy(buf, tc.req)
			if tc.eth {
				_, ok = r.ReplyEthernet(buf, len(tc.req))
			} else {
				_, ok = r.ReplyIP(buf, len(tc.req))
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", tc.name, allocs)
		}
		if wantOK := tc.name != "ignored" && tc.name != "malformed"; ok != wantOK {
			t.Errorf("%s: ok = %v", tc.name, ok)
		}
	}
}

func BenchmarkReply(b *testing.B) {
	payload := payloadOf(1400)
	small := payloadOf(56)
	cases := []struct {
		name string
		eth  bool
		req  []byte
	}{
		{"v4echo64", false, echo4(b, own4, peer4, small)},
		{"v4echo1428", false, echo4(b, own4, peer4, payload)},
		{"v6echo1448", false, echo6(b, own6, peer6, payload)},
		{"ARP", true, arpRequest(b, bcast, own4, peer4)},
		{"NS", true, ns(b, peer6, nsOpts{})},
	}
	r := newResponder()
	buf := make([]byte, 65535)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.req)))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, tc.req)
				var ok bool
				if tc.eth {
					_, ok = r.ReplyEthernet(buf, len(tc.req))
				} else {
					_, ok = r.ReplyIP(buf, len(tc.req))
				}
				if !ok {
					b.Fatal("no reply")
				}
			}
		})
	}
}
