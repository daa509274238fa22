package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// mssSpec describes a packet for mssBuild.
type mssSpec struct {
	bare    bool     // a bare IP packet (TUN) instead of an Ethernet frame
	tags    []uint16 // VLAN tag protocol identifiers, outermost first
	v6      bool
	udp     bool
	flags   uint8  // TCP flags (tcpFlag*)
	opts    []byte // raw TCP options, padded with zeros (end of list) to a multiple of 4
	payload []byte
	ipOpts  bool   // IPv4 header with a router alert option (IHL 6)
	frag    uint16 // IPv4 fragment offset, in 8-byte units
	mf      bool   // IPv4 more-fragments flag
	hbh     bool   // an IPv6 hop-by-hop options header before TCP
	pad     int    // bytes of Ethernet padding after the IP packet
}

// l3 returns the offset of the IP header in a packet built from s.
func (s mssSpec) l3() int {
	if s.bare {
		return 0
	}
	return EthernetHeaderLen + 4*len(s.tags)
}

// TCP options for the specs.
func optMSS(v uint16) []byte { return []byte{2, 4, byte(v >> 8), byte(v)} }

var (
	optNOP      = []byte{1}
	optEOL      = []byte{0}
	optSACKPerm = []byte{4, 2}
	optTS       = []byte{8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0}
	optWS7      = []byte{3, 3, 7}
)

// opts concatenates TCP options.
func opts(os ...[]byte) []byte {
	var b []byte
	for _, o := range os {
		b = append(b, o...)
	}
	return b
}

// linuxSYNOpts are the options of a Linux SYN with the given MSS: MSS,
// SACK permitted, timestamps, NOP, window scale.
func linuxSYNOpts(mss uint16) []byte {
	return opts(optMSS(mss), optSACKPerm, optTS, optNOP, optWS7)
}

// mssBuild serializes s with gopacket (lengths and checksums computed), then
// writes the raw TCP options and recomputes the TCP checksum with
// mssRefTCPChecksum.
func mssBuild(tb testing.TB, s mssSpec) []byte {
	tb.Helper()
	raw := append([]byte(nil), s.opts...)
	for len(raw)%4 != 0 {
		raw = append(raw, 0)
	}
	var ls []gopacket.SerializableLayer
	et := layers.EthernetTypeIPv4
	if s.v6 {
		et = layers.EthernetTypeIPv6
	}
	if !s.bare {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
			DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et}
		ls = append(ls, eth)
		if len(s.tags) > 0 {
			eth.EthernetType = layers.EthernetType(s.tags[0])
		}
		for i := range s.tags {
			q := &layers.Dot1Q{VLANIdentifier: uint16(10 + i), Type: et}
			if i+1 < len(s.tags) {
				q.Type = layers.EthernetType(s.tags[i+1])
			}
			ls = append(ls, q)
		}
	}
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	var nl gopacket.NetworkLayer
	if s.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8:ffff::2")}
		nl = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: proto, FragOffset: s.frag,
			SrcIP: net.IPv4(192, 0, 2, 1).To4(), DstIP: net.IPv4(198, 51, 100, 254).To4()}
		if s.mf {
			ip.Flags = layers.IPv4MoreFragments
		}
		if s.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		nl = ip
		ls = append(ls, ip)
	}
	if s.udp {
		u := &layers.UDP{SrcPort: 40000, DstPort: 53}
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, u)
	} else {
		t := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1000, Window: 64240,
			SYN: s.flags&tcpFlagSYN != 0, ACK: s.flags&tcpFlagACK != 0,
			FIN: s.flags&tcpFlagFIN != 0, RST: s.flags&tcpFlagRST != 0, PSH: s.flags&tcpFlagPSH != 0}
		if t.ACK {
			t.Ack = 5000
		}
		for range raw { // placeholders, overwritten below
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1})
		}
		if err := t.SetNetworkLayerForChecksum(nl); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, t)
	}
	ls = append(ls, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	b := append([]byte(nil), buf.Bytes()...)
	l3 := s.l3()
	if s.hbh {
		// An 8-byte hop-by-hop header (a PadN option) after the IPv6 header.
		ext := []byte{b[l3+6], 0, 1, 4, 0, 0, 0, 0}
		b = append(b[:l3+IPv6HeaderLen], append(ext, b[l3+IPv6HeaderLen:]...)...)
		b[l3+6] = 0
		binary.BigEndian.PutUint16(b[l3+4:], binary.BigEndian.Uint16(b[l3+4:])+8)
	}
	if !s.udp && len(raw) > 0 {
		start, end, pseudo := mssRefSegment(b, l3, s.v6)
		copy(b[start+TCPHeaderLen:], raw)
		b[start+16], b[start+17] = 0, 0
		binary.BigEndian.PutUint16(b[start+16:], mssRefTCPChecksum(b[start:end], pseudo))
	}
	return append(b, make([]byte, s.pad)...)
}

// mssRefSegment returns the bounds of the TCP segment of the IP packet at l3
// in b and the unfolded sum of its pseudo-header, computed with gopacket. It
// expects a well-formed packet without IPv6 extension headers.
func mssRefSegment(b []byte, l3 int, v6 bool) (start, end int, pseudo uint32) {
	ip := b[l3:]
	var ph []byte
	if v6 {
		start = l3 + IPv6HeaderLen
		end = start + int(binary.BigEndian.Uint16(ip[4:]))
		ph = append(ph, ip[8:40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(end-start))
		ph = append(ph, 0, 0, 0, ProtoTCP)
	} else {
		start = l3 + int(ip[0]&0x0f)*4
		end = l3 + int(binary.BigEndian.Uint16(ip[2:]))
		ph = append(ph, ip[12:20]...)
		ph = append(ph, 0, ProtoTCP)
		ph = binary.BigEndian.AppendUint16(ph, uint16(end-start))
	}
	return start, end, gopacket.ComputeChecksum(ph, 0)
}

// mssRefTCPChecksum is gopacket's Internet checksum of seg with the
// pseudo-header sum pseudo: 0 if seg holds a correct TCP checksum, the value
// to store if its checksum field is zero.
func mssRefTCPChecksum(seg []byte, pseudo uint32) uint16 {
	return gopacket.FoldChecksum(gopacket.ComputeChecksum(seg, pseudo))
}

// mssCheckTCP checks that the TCP segment of the IP packet at l3 in b has a
// correct checksum, with gopacket's decoder and with this package's
// PseudoHeaderSum and Checksum, and returns its MSS options. The TCP header
// is decoded from the IP payload, so that the first fragment of an IPv4
// packet can be checked too.
func mssCheckTCP(tb testing.TB, b []byte, l3 int) []uint16 {
	tb.Helper()
	first := layers.LayerTypeIPv4
	if IPVersion(b[l3:]) == 6 {
		first = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(b[l3:], first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket: %v", el.Error())
	}
	if p.NetworkLayer() == nil {
		tb.Fatalf("gopacket found no IP header in %x", b[l3:])
	}
	tp := gopacket.NewPacket(p.NetworkLayer().LayerPayload(), layers.LayerTypeTCP, gopacket.Default)
	if el := tp.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket: %v", el.Error())
	}
	tcp, _ := tp.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		tb.Fatalf("gopacket found no TCP header in %x", b[l3:])
	}
	if err := tcp.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
		tb.Fatal(err)
	}
	if c, err := tcp.ComputeChecksum(); err != nil || c != 0 {
		tb.Errorf("gopacket: TCP checksum does not verify (%#04x, %v)", c, err)
	}

	var src, dst []byte
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, dst = ip.SrcIP.To4(), ip.DstIP.To4()
	case *layers.IPv6:
		src, dst = ip.SrcIP.To16(), ip.DstIP.To16()
	}
	seg := append(append([]byte(nil), tcp.Contents...), tcp.Payload...)
	if c := Checksum(seg, PseudoHeaderSum(ProtoTCP, src, dst, len(seg))); c != 0 {
		tb.Errorf("PseudoHeaderSum+Checksum: TCP checksum does not verify (%#04x)", c)
	}

	var mss []uint16
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2 {
			mss = append(mss, binary.BigEndian.Uint16(o.OptionData))
		}
	}
	return mss
}

// mssCase is one packet for ClampMSS or ClampMSSIP and the expected outcome.
type mssCase struct {
	name       string
	spec       mssSpec
	raw        []byte // used instead of spec when not nil (a frame, or a packet if spec.bare)
	mss4, mss6 uint16
	changed    bool
	mss        []uint16 // MSS options after the call, if changed
}

// run calls ClampMSS or ClampMSSIP on b.
func (c *mssCase) run(b []byte) bool {
	if c.spec.bare {
		return ClampMSSIP(b, c.mss4, c.mss6)
	}
	return ClampMSS(b, c.mss4, c.mss6)
}

// packet returns the input packet of c.
func (c *mssCase) packet(tb testing.TB) []byte {
	if c.raw != nil {
		return append([]byte(nil), c.raw...)
	}
	return mssBuild(tb, c.spec)
}

const (
	synFlags    = tcpFlagSYN
	synACKFlags = tcpFlagSYN | tcpFlagACK
)

var (
	qinq   = []uint16{EtherTypeQinQ, EtherTypeVLAN}
	dot1q  = []uint16{EtherTypeVLAN}
	triple = []uint16{EtherTypeQinQ, EtherTypeVLAN, EtherTypeVLAN}
)

func mssCases(tb testing.TB) []mssCase {
	tb.Helper()
	lin := linuxSYNOpts(1460)
	cs := []mssCase{
		{name: "v4-syn", spec: mssSpec{flags: synFlags, opts: lin}, mss4: 1360, mss6: 1340, changed: true, mss: []uint16{1360}},
		{name: "v4-synack", spec: mssSpec{flags: synACKFlags, opts: lin}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v4-syn-mss-only", spec: mssSpec{flags: synFlags, opts: optMSS(1460)}, mss4: 1400, changed: true, mss: []uint16{1400}},
		{name: "v6-syn", spec: mssSpec{v6: true, flags: synFlags, opts: linuxSYNOpts(1440)}, mss4: 1360, mss6: 1340, changed: true, mss: []uint16{1340}},
		{name: "v6-synack", spec: mssSpec{v6: true, flags: synACKFlags, opts: linuxSYNOpts(65495)}, mss6: 1220, changed: true, mss: []uint16{1220}},
		{name: "v4-vlan", spec: mssSpec{tags: dot1q, flags: synFlags, opts: lin}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v4-qinq", spec: mssSpec{tags: qinq, flags: synFlags, opts: lin}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v6-vlan", spec: mssSpec{v6: true, tags: dot1q, flags: synACKFlags, opts: lin}, mss6: 1340, changed: true, mss: []uint16{1340}},
		{name: "v6-qinq", spec: mssSpec{v6: true, tags: qinq, flags: synFlags, opts: lin}, mss6: 1340, changed: true, mss: []uint16{1340}},
		{name: "v4-prestandard-double-tag", spec: mssSpec{tags: []uint16{EtherTypeQinQ2, EtherTypeVLAN}, flags: synFlags, opts: lin}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "three-tags", spec: mssSpec{tags: triple, flags: synFlags, opts: lin}, mss4: 1360, mss6: 1340},
		{name: "v4-lower", spec: mssSpec{flags: synFlags, opts: linuxSYNOpts(1200)}, mss4: 1360, mss6: 1340},
		{name: "v4-equal", spec: mssSpec{flags: synFlags, opts: linuxSYNOpts(1360)}, mss4: 1360, mss6: 1340},
		{name: "v6-lower", spec: mssSpec{v6: true, flags: synFlags, opts: linuxSYNOpts(1200)}, mss4: 1360, mss6: 1340},
		{name: "v4-mss-zero", spec: mssSpec{flags: synFlags, opts: linuxSYNOpts(0)}, mss4: 1360},
		{name: "v4-ack-with-mss", spec: mssSpec{flags: tcpFlagACK, opts: lin, payload: []byte("hello")}, mss4: 1360, mss6: 1340},
		{name: "v4-fin-with-mss", spec: mssSpec{flags: tcpFlagFIN | tcpFlagACK, opts: lin}, mss4: 1360},
		{name: "v6-ack-with-mss", spec: mssSpec{v6: true, flags: tcpFlagACK, opts: lin}, mss4: 1360, mss6: 1340},
		{name: "v4-syn-no-options", spec: mssSpec{flags: synFlags}, mss4: 1360},
		{name: "v4-syn-no-mss", spec: mssSpec{flags: synFlags, opts: opts(optSACKPerm, optTS, optNOP, optWS7)}, mss4: 1360},
		{name: "v4-udp", spec: mssSpec{udp: true, payload: opts(make([]byte, 12), []byte{0x52, 0x02}, make([]byte, 6), optMSS(1460))}, mss4: 1360, mss6: 1340},
		{name: "v6-udp", spec: mssSpec{v6: true, udp: true, payload: lin}, mss4: 1360, mss6: 1340},

		// An MSS option after one NOP: its value is at TCP offset 23.
		{name: "v4-odd-aligned", spec: mssSpec{flags: synFlags, opts: opts(optNOP, optMSS(1460), optNOP, optWS7)}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v6-odd-aligned", spec: mssSpec{v6: true, flags: synFlags, opts: opts(optNOP, optMSS(0xffff), optSACKPerm, optNOP)}, mss6: 0x0101, changed: true, mss: []uint16{0x0101}},
		{name: "v4-three-nops", spec: mssSpec{flags: synFlags, opts: opts(optNOP, optNOP, optNOP, optMSS(0xff01))}, mss4: 0x01ff, changed: true, mss: []uint16{0x01ff}},
		{name: "v4-after-timestamps", spec: mssSpec{flags: synFlags, opts: opts(optTS, optMSS(9000), optNOP, optNOP)}, mss4: 1460, changed: true, mss: []uint16{1460}},
		// Windows: MSS, NOP, window scale, NOP, NOP, SACK permitted.
		{name: "v4-windows", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), optNOP, optWS7, optNOP, optNOP, optSACKPerm)}, mss4: 1380, changed: true, mss: []uint16{1380}},
		{name: "v4-with-payload", spec: mssSpec{flags: synFlags, opts: lin, payload: []byte("TCP fast open data, odd length")}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v4-two-mss", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), optNOP, optMSS(8960))}, mss4: 1360, changed: true, mss: []uint16{1360, 1360}},
		{name: "v4-two-mss-second-low", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), optMSS(1000))}, mss4: 1360, changed: true, mss: []uint16{1360, 1000}},
		{name: "v4-garbage-after-eol", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), optEOL, []byte{5, 0, 9})}, mss4: 1360, changed: true, mss: []uint16{1360}},

		// Malformed options.
		{name: "v4-mss-after-eol", spec: mssSpec{flags: synFlags, opts: opts(optNOP, optEOL, optNOP, optNOP, optMSS(1460))}, mss4: 1360},
		{name: "v4-option-len-0", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), []byte{8, 0}, optNOP, optNOP)}, mss4: 1360},
		{name: "v4-option-len-1", spec: mssSpec{flags: synFlags, opts: opts([]byte{8, 1}, optNOP, optNOP, optMSS(1460))}, mss4: 1360},
		{name: "v4-option-past-data-offset", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), []byte{3, 9, 7, 0})}, mss4: 1360},
		{name: "v4-mss-past-data-offset", spec: mssSpec{flags: synFlags, opts: opts(optNOP, optNOP, optNOP, []byte{2, 4, 5})}, mss4: 1360},
		{name: "v4-no-length-byte", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460), optNOP, optNOP, optNOP, []byte{3})}, mss4: 1360},
		{name: "v4-mss-len-3", spec: mssSpec{flags: synFlags, opts: opts([]byte{2, 3, 9}, optNOP)}, mss4: 1},
		{name: "v4-mss-len-6", spec: mssSpec{flags: synFlags, opts: opts([]byte{2, 6, 0x40, 0, 0, 0}, optNOP, optNOP)}, mss4: 1},

		// IP layer.
		{name: "v4-ip-options", spec: mssSpec{ipOpts: true, flags: synFlags, opts: lin}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v4-ethernet-padding", spec: mssSpec{flags: synFlags, opts: opts(optMSS(1460)), pad: 8}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v6-ethernet-padding", spec: mssSpec{v6: true, flags: synFlags, opts: lin, pad: 3}, mss6: 1340, changed: true, mss: []uint16{1340}},
		{name: "v4-first-fragment", spec: mssSpec{mf: true, flags: synFlags, opts: lin}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "v4-fragment", spec: mssSpec{frag: 185, flags: synFlags, opts: lin}, mss4: 1360, mss6: 1340},
		{name: "v4-last-fragment", spec: mssSpec{frag: 1, flags: synFlags, opts: lin}, mss4: 1360},
		{name: "v6-hop-by-hop", spec: mssSpec{v6: true, hbh: true, flags: synFlags, opts: lin}, mss4: 1360, mss6: 1340},

		// A limit of 0 leaves the family alone.
		{name: "v4-limit-0", spec: mssSpec{flags: synFlags, opts: lin}, mss4: 0, mss6: 1340},
		{name: "v6-limit-0", spec: mssSpec{v6: true, flags: synFlags, opts: lin}, mss4: 1360, mss6: 0},
		{name: "both-limits-0", spec: mssSpec{flags: synFlags, opts: lin}},
		{name: "limit-1", spec: mssSpec{flags: synFlags, opts: lin}, mss4: 1, changed: true, mss: []uint16{1}},

		// Bare IP packets.
		{name: "bare-v4-syn", spec: mssSpec{bare: true, flags: synFlags, opts: lin}, mss4: 1360, mss6: 1340, changed: true, mss: []uint16{1360}},
		{name: "bare-v6-synack", spec: mssSpec{bare: true, v6: true, flags: synACKFlags, opts: lin}, mss4: 1360, mss6: 1340, changed: true, mss: []uint16{1340}},
		{name: "bare-v4-odd-aligned", spec: mssSpec{bare: true, flags: synFlags, opts: opts(optNOP, optMSS(1460), optSACKPerm, optNOP)}, mss4: 1360, changed: true, mss: []uint16{1360}},
		{name: "bare-v4-limit-0", spec: mssSpec{bare: true, flags: synFlags, opts: lin}, mss6: 1340},
		{name: "bare-v6-lower", spec: mssSpec{bare: true, v6: true, flags: synFlags, opts: linuxSYNOpts(1000)}, mss4: 1360, mss6: 1340},
		{name: "bare-v4-udp", spec: mssSpec{bare: true, udp: true, payload: lin}, mss4: 1360, mss6: 1340},
	}

	// Hand-made packets.
	v4 := mssBuild(tb, mssSpec{flags: synFlags, opts: lin})
	l3 := EthernetHeaderLen
	edit := func(name string, f func(b []byte)) {
		b := append([]byte(nil), v4...)
		f(b)
		cs = append(cs, mssCase{name: name, raw: b, mss4: 1360, mss6: 1340})
	}
	edit("v4-data-offset-4", func(b []byte) { b[l3+20+12] = 4 << 4 })
	edit("v4-data-offset-0", func(b []byte) { b[l3+20+12] = 0 })
	edit("v4-data-offset-past-end", func(b []byte) { b[l3+20+12] = 15 << 4 })
	edit("v4-ihl-4", func(b []byte) { b[l3] = 0x44 })
	edit("v4-ihl-15", func(b []byte) { b[l3] = 0x4f })
	edit("v4-total-length-short", func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 19) })
	edit("v4-total-length-no-tcp", func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 20) })
	edit("v4-total-length-cuts-options", func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 20+20+4) })
	edit("v4-total-length-past-end", func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], uint16(len(b)-l3+1)) })
	edit("v4-ethertype-version-6", func(b []byte) { b[l3] = 0x65 })
	edit("v4-version-5", func(b []byte) { b[l3] = 0x55 })
	edit("v4-ethertype-ipv6", func(b []byte) { binary.BigEndian.PutUint16(b[12:], EtherTypeIPv6) })
	edit("v4-protocol-udp", func(b []byte) { b[l3+9] = ProtoUDP })
	v6 := mssBuild(tb, mssSpec{v6: true, flags: synFlags, opts: lin})
	edit6 := func(name string, f func(b []byte)) {
		b := append([]byte(nil), v6...)
		f(b)
		cs = append(cs, mssCase{name: name, raw: b, mss4: 1360, mss6: 1340})
	}
	edit6("v6-payload-length-past-end", func(b []byte) { binary.BigEndian.PutUint16(b[l3+4:], uint16(len(b)-l3-IPv6HeaderLen+1)) })
	edit6("v6-payload-length-0", func(b []byte) { binary.BigEndian.PutUint16(b[l3+4:], 0) })
	edit6("v6-payload-length-cuts-options", func(b []byte) { binary.BigEndian.PutUint16(b[l3+4:], 24) })
	edit6("v6-ethertype-version-4", func(b []byte) { b[l3] = 0x45 })
	edit6("v6-next-header-routing", func(b []byte) { b[l3+6] = 43 })

	arp := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(arp, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: []byte{2, 0, 0, 0, 0, 1}, SourceProtAddress: []byte{192, 0, 2, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 2}}); err != nil {
		tb.Fatal(err)
	}
	cs = append(cs,
		mssCase{name: "arp", raw: append([]byte(nil), arp.Bytes()...), mss4: 1360, mss6: 1340},
		mssCase{name: "empty", raw: []byte{}, mss4: 1360, mss6: 1340},
		mssCase{name: "bare-empty", spec: mssSpec{bare: true}, raw: []byte{}, mss4: 1360, mss6: 1340},
		mssCase{name: "bare-version-0", spec: mssSpec{bare: true}, raw: make([]byte, 60), mss4: 1360, mss6: 1340},
	)
	return cs
}

func TestClampMSS(t *testing.T) {
	for _, c := range mssCases(t) {
		t.Run(c.name, func(t *testing.T) {
			orig := c.packet(t)
			b := append([]byte(nil), orig...)
			if got := c.run(b); got != c.changed {
				t.Fatalf("changed = %v, want %v", got, c.changed)
			}
			if !c.changed {
				if !bytes.Equal(b, orig) {
					t.Fatalf("unchanged packet was modified:\n got %x\nwant %x", b, orig)
				}
				return
			}
			if mss := mssCheckTCP(t, b, c.spec.l3()); fmt.Sprint(mss) != fmt.Sprint(c.mss) {
				t.Errorf("MSS options = %v, want %v", mss, c.mss)
			}
			// Only MSS values and the TCP checksum may change.
			in, ok := mssRefParse(orig, c.spec.bare)
			if !ok {
				t.Fatal("mssRefParse rejects the packet")
			}
			may := map[int]bool{in.start + 16: true, in.start + 17: true}
			for _, at := range in.fields {
				may[at], may[at+1] = true, true
			}
			for i := range b {
				if b[i] != orig[i] && !may[i] {
					t.Errorf("byte %d (TCP offset %d) changed", i, i-in.start)
				}
			}
			// A second call has nothing left to do.
			if c.run(b) {
				t.Error("second call changed the packet again")
			}
		})
	}
}

// TestClampMSSChecksumProperty clamps MSS values at every alignment with
// random old and new values (and payloads of random length), including the
// values whose byte swap makes a difference, and checks the checksum.
func TestClampMSSChecksumProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pairs := [][2]uint16{{0xffff, 0x0101}, {0xffff, 1}, {0xff00, 0x00ff}, {0x0100, 0x00ff}, {1460, 1360}, {0x8000, 0x7fff}, {2, 1}}
	for range 200 {
		a, b := uint16(r.Uint32()), uint16(r.Uint32())
		if a == b {
			continue
		}
		pairs = append(pairs, [2]uint16{max(a, b), min(a, b)})
	}
	for nops := range 4 {
		for _, v6 := range []bool{false, true} {
			for _, p := range pairs {
				payload := make([]byte, r.IntN(40))
				for i := range payload {
					payload[i] = byte(r.Uint32())
				}
				o := append(bytes.Repeat(optNOP, nops), optMSS(p[0])...)
				s := mssSpec{v6: v6, flags: synFlags, opts: append(o, optSACKPerm...), payload: payload}
				b := mssBuild(t, s)
				mss4, mss6 := p[1], uint16(0)
				if v6 {
					mss4, mss6 = 0, p[1]
				}
				if !ClampMSS(b, mss4, mss6) {
					t.Fatalf("nops %d v6 %v %#04x -> %#04x: not changed", nops, v6, p[0], p[1])
				}
				if mss := mssCheckTCP(t, b, EthernetHeaderLen); len(mss) != 1 || mss[0] != p[1] {
					t.Fatalf("nops %d v6 %v %#04x -> %#04x: MSS options %v", nops, v6, p[0], p[1], mss)
				}
			}
		}
	}
}

// TestClampMSSChecksumEdges clamps segments whose checksum field holds 0x0000
// and 0xffff (both correct for the same segment in one's complement) and
// checks that the result verifies, following RFC 1624 eqn. 3.
func TestClampMSSChecksumEdges(t *testing.T) {
	for _, target := range []uint16{0x0000, 0xffff, 0x0001, 0xfffe} {
		for _, odd := range []bool{false, true} {
			for _, p := range [][2]uint16{{1460, 1360}, {0xffff, 0x0101}, {0x0200, 0x0001}, {0xfeff, 0x00ff}} {
				o := optMSS(p[0])
				if odd {
					o = opts(optNOP, o, optNOP, optNOP, optNOP)
				}
				b := mssBuild(t, mssSpec{flags: synFlags, opts: o, payload: []byte{0, 0}})
				start, end, pseudo := mssRefSegment(b, EthernetHeaderLen, false)
				seg := b[start:end]
				// Choose the last payload word so that the checksum is
				// target: the sum R of the segment without its checksum must
				// become ^target.
				seg[16], seg[17] = 0, 0
				r := uint32(^mssRefTCPChecksum(seg, pseudo))
				w := uint32(binary.BigEndian.Uint16(seg[len(seg)-2:])) + uint32(^target) + uint32(^uint16(r))
				binary.BigEndian.PutUint16(seg[len(seg)-2:], Fold(w))
				c := mssRefTCPChecksum(seg, pseudo)
				if c != target && !(c == 0 && target == 0xffff) {
					t.Fatalf("built checksum %#04x, want %#04x", c, target)
				}
				binary.BigEndian.PutUint16(seg[16:], target)
				mssCheckTCP(t, b, EthernetHeaderLen)
				if !ClampMSS(b, p[1], 0) {
					t.Fatal("not changed")
				}
				if mss := mssCheckTCP(t, b, EthernetHeaderLen); len(mss) != 1 || mss[0] != p[1] {
					t.Fatalf("MSS options %v, want [%d]", mss, p[1])
				}
			}
		}
	}
}

// TestClampMSSTruncated runs every case on every prefix of its packet, in a
// buffer with guard bytes after the prefix, and checks that nothing panics,
// nothing past the prefix is written and a prefix is only changed when it
// holds the whole IP packet.
func TestClampMSSTruncated(t *testing.T) {
	const guard = 16
	for _, c := range mssCases(t) {
		orig := c.packet(t)
		full := append([]byte(nil), orig...)
		fullChanged := c.run(full)
		// The end of the IP packet: shorter prefixes are truncated.
		ipEnd := len(orig)
		if in, ok := mssRefParse(orig, c.spec.bare); ok {
			ipEnd = in.end
		}
		for n := 0; n <= len(orig); n++ {
			buf := bytes.Repeat([]byte{0xa5}, n+guard)
			copy(buf, orig[:n])
			got := c.run(buf[:n])
			if !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xa5}, guard)) {
				t.Fatalf("%s[:%d]: wrote past the end", c.name, n)
			}
			switch {
			case got && !fullChanged:
				t.Fatalf("%s[:%d]: changed a prefix of a packet that is left alone", c.name, n)
			case got && n < ipEnd:
				t.Fatalf("%s[:%d]: changed a truncated packet (%d bytes)", c.name, n, ipEnd)
			case got && !bytes.Equal(buf[:n], full[:n]):
				t.Fatalf("%s[:%d]: got %x, want %x", c.name, n, buf[:n], full[:n])
			case !got && !bytes.Equal(buf[:n], orig[:n]):
				t.Fatalf("%s[:%d]: unchanged prefix was modified", c.name, n)
			case !got && fullChanged && n >= ipEnd:
				t.Fatalf("%s[:%d]: whole IP packet not changed", c.name, n)
			}
		}
	}
}

func TestMSSFor(t *testing.T) {
	for _, c := range []struct {
		mtu        int
		mss4, mss6 uint16
	}{
		{1500, 1460, 1440},
		{1420, 1380, 1360},
		{1280, 1240, 1220},
		{576, 536, 516},
		{61, 21, 1},
		{60, 20, 0},
		{59, 0, 0},
		{40, 0, 0},
		{0, 0, 0},
		{-1, 0, 0},
		{9000, 8960, 8940},
		{65535, 65495, 65475},
		{65595, 65535, 65535},
		{65576, 65535, 65516},
		{1 << 20, 65535, 65535},
	} {
		m4, m6 := MSSFor(c.mtu)
		if m4 != c.mss4 || m6 != c.mss6 {
			t.Errorf("MSSFor(%d) = %d, %d, want %d, %d", c.mtu, m4, m6, c.mss4, c.mss6)
		}
	}
}

// mssAllocCases are the packets of TestClampMSSAllocs and BenchmarkClampMSS.
func mssAllocCases(tb testing.TB) []mssCase {
	return []mssCase{
		{name: "syn4", spec: mssSpec{flags: synFlags, opts: linuxSYNOpts(1460)}, mss4: 1360, mss6: 1340},
		{name: "syn6-qinq", spec: mssSpec{v6: true, tags: qinq, flags: synACKFlags, opts: linuxSYNOpts(1440)}, mss4: 1360, mss6: 1340},
		{name: "bare-syn4", spec: mssSpec{bare: true, flags: synFlags, opts: linuxSYNOpts(1460)}, mss4: 1360, mss6: 1340},
		{name: "ack4", spec: mssSpec{flags: tcpFlagACK, opts: opts(optNOP, optNOP, optTS), payload: make([]byte, 1400)}, mss4: 1360, mss6: 1340},
	}
}

func TestClampMSSAllocs(t *testing.T) {
	for _, c := range mssAllocCases(t) {
		orig := c.packet(t)
		b := append([]byte(nil), orig...)
		n := testing.AllocsPerRun(100, func() {
			copy(b, orig)
			c.run(b)
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, n)
		}
	}
}

// BenchmarkClampMSS measures a clamp of a SYN (restoring the packet, about 80
// bytes, before each call) and the common case of a segment without SYN.
func BenchmarkClampMSS(b *testing.B) {
	for _, c := range mssAllocCases(b) {
		b.Run(c.name, func(b *testing.B) {
			orig := c.packet(b)
			p := append([]byte(nil), orig...)
			restore := p[:min(len(p), 128)]
			b.ReportAllocs()
			for b.Loop() {
				copy(restore, orig)
				c.run(p)
			}
		})
	}
}

// mssRefInfo is what mssRefParse learnt about a packet.
type mssRefInfo struct {
	v6         bool
	start, end int    // the TCP segment
	pseudo     uint32 // pseudo-header sum
	fields     []int  // offsets of the values of well-formed MSS options
}

// mssRefParse is the specification of ClampMSS and ClampMSSIP written
// plainly: it returns ok only for a TCP segment with SYN set, with a fitting
// data offset and a well-formed option list, in an IPv4 packet that is not a
// later fragment or an IPv6 packet without extension headers, all within b.
func mssRefParse(b []byte, bare bool) (in mssRefInfo, ok bool) {
	p := 0
	if !bare {
		if len(b) < 14 {
			return in, false
		}
		p = 12
		et := binary.BigEndian.Uint16(b[p:])
		for tags := 0; et == 0x8100 || et == 0x88a8 || et == 0x9100; tags++ {
			if tags == 2 || len(b) < p+6 {
				return in, false
			}
			p += 4
			et = binary.BigEndian.Uint16(b[p:])
		}
		p += 2
		switch {
		case et == 0x0800 && len(b) > p && b[p]>>4 == 4:
		case et == 0x86dd && len(b) > p && b[p]>>4 == 6:
		default:
			return in, false
		}
	}
	ip := b[p:]
	if len(ip) == 0 {
		return in, false
	}
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 || ip[9] != 6 {
			return in, false
		}
		hl, tl := int(ip[0]&15)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || tl < hl || tl > len(ip) || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return in, false
		}
		in.start, in.end = p+hl, p+tl
	case 6:
		in.v6 = true
		if len(ip) < 40 || ip[6] != 6 {
			return in, false
		}
		pl := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+pl > len(ip) {
			return in, false
		}
		in.start, in.end = p+40, p+40+pl
	default:
		return in, false
	}
	seg := b[in.start:in.end]
	if len(seg) < 20 || seg[13]&0x02 == 0 {
		return in, false
	}
	doff := int(seg[12]>>4) * 4
	if doff < 20 || doff > len(seg) {
		return in, false
	}
	for i := 20; i < doff && seg[i] != 0; {
		if seg[i] == 1 {
			i++
			continue
		}
		if i+1 >= doff {
			return in, false
		}
		l := int(seg[i+1])
		if l < 2 || i+l > doff {
			return in, false
		}
		if seg[i] == 2 && l == 4 {
			in.fields = append(in.fields, in.start+i+2)
		}
		i += l
	}
	_, _, in.pseudo = mssRefSegment(b, p, in.v6)
	return in, true
}

// mssFuzzSeeds returns the seeds of FuzzClampMSS: some of the table cases.
func mssFuzzSeeds(tb testing.TB) []mssCase {
	var seeds []mssCase
	for _, c := range mssCases(tb) {
		switch c.name {
		case "v4-syn", "v6-synack", "v4-qinq", "v6-vlan", "v4-odd-aligned", "v4-two-mss",
			"v4-option-len-0", "v4-ack-with-mss", "v4-first-fragment", "v4-fragment",
			"v6-hop-by-hop", "v4-ethernet-padding", "bare-v4-syn", "bare-v6-synack",
			"bare-v4-odd-aligned", "arp":
			seeds = append(seeds, c)
		}
	}
	return seeds
}

// FuzzClampMSS checks ClampMSS and ClampMSSIP against mssRefParse: the result
// and the bytes changed must match the reference, nothing past the packet is
// written, and the checksum of the segment (a correct one or not) is kept.
func FuzzClampMSS(f *testing.F) {
	for _, c := range mssFuzzSeeds(f) {
		f.Add(c.packet(f), c.mss4, c.mss6, c.spec.bare)
	}
	f.Fuzz(func(t *testing.T, data []byte, mss4, mss6 uint16, bare bool) {
		const guard = 8
		buf := bytes.Repeat([]byte{0x5a}, len(data)+guard)
		copy(buf, data)
		b := buf[:len(data)]
		var changed bool
		if bare {
			changed = ClampMSSIP(b, mss4, mss6)
		} else {
			changed = ClampMSS(b, mss4, mss6)
		}
		if !bytes.Equal(buf[len(data):], bytes.Repeat([]byte{0x5a}, guard)) {
			t.Fatal("wrote past the end of the packet")
		}

		want := append([]byte(nil), data...)
		wantChanged := false
		in, ok := mssRefParse(data, bare)
		limit := mss4
		if in.v6 {
			limit = mss6
		}
		if ok && limit != 0 {
			for _, at := range in.fields {
				if binary.BigEndian.Uint16(want[at:]) > limit {
					binary.BigEndian.PutUint16(want[at:], limit)
					wantChanged = true
				}
			}
		}
		if changed != wantChanged {
			t.Fatalf("changed = %v, want %v", changed, wantChanged)
		}
		if !changed {
			if !bytes.Equal(b, data) {
				t.Fatal("returned false but modified the packet")
			}
			return
		}
		// Apart from the checksum field, the packet must be what the
		// reference expects; the checksum must keep the segment's sum.
		copy(want[in.start+16:in.start+18], b[in.start+16:in.start+18])
		if !bytes.Equal(b, want) {
			t.Fatalf("got  %x\nwant %x", b, want)
		}
		before := mssRefTCPChecksum(data[in.start:in.end], in.pseudo)
		after := mssRefTCPChecksum(b[in.start:in.end], in.pseudo)
		if before != after {
			t.Fatalf("checksum of the segment went from %#04x to %#04x", before, after)
		}
		if bare {
			changed = ClampMSSIP(b, mss4, mss6)
		} else {
			changed = ClampMSS(b, mss4, mss6)
		}
		if changed {
			t.Fatal("second call changed the packet again")
		}
	})
}

// TestWriteMSSFuzzSeeds regenerates the checked-in seed corpus of
// FuzzClampMSS when TAPWIRE_WRITE_FUZZ_SEEDS is set.
func TestWriteMSSFuzzSeeds(t *testing.T) {
	if os.Getenv("TAPWIRE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set TAPWIRE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzClampMSS")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range mssFuzzSeeds(t) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\nuint16(%d)\nbool(%v)\n",
			c.packet(t), c.mss4, c.mss6, c.spec.bare)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+c.name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
