package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// testPayload returns n bytes of a recognisable pattern.
func testPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>8)
	}
	return b
}

// l4Offsets parses a valid plain packet built by buildPacket.
func l4Offsets(tb testing.TB, pkt []byte, l2 int) pktInfo {
	tb.Helper()
	in, err := parsePacket(pkt, l2)
	if err != nil {
		tb.Fatalf("test packet: %v", err)
	}
	return in
}

// makePartial replaces the transport checksum of the valid packet pkt with
// the folded pseudo-header sum, as the kernel leaves it for
// VirtioNetHdrFNeedsCsum (CHECKSUM_PARTIAL); it returns CsumStart and
// CsumOffset.
func makePartial(tb testing.TB, pkt []byte, l2 int) (uint16, uint16) {
	tb.Helper()
	in := l4Offsets(tb, pkt, l2)
	ip := pkt[in.l3:]
	src, dst := ip[12:16], ip[16:20]
	if in.v6 {
		src, dst = ip[8:24], ip[24:40]
	}
	proto, off := ProtoTCP, 16
	if in.udp {
		proto, off = ProtoUDP, 6
	}
	binary.BigEndian.PutUint16(pkt[in.l4+off:], uint16(refPseudo(src, dst, proto, len(pkt)-in.l4)))
	return uint16(in.l4), uint16(off)
}

// makeSuper builds the super-packet described by s (whose payload is the
// whole payload), its virtio-net header for segments of gso payload bytes,
// and the segments that the kernel's software segmentation would produce,
// each built independently by gopacket.
func makeSuper(tb testing.TB, s pktSpec, gso int, partial bool) ([]byte, VirtioNetHdr, [][]byte) {
	tb.Helper()
	pkt := buildPacket(tb, s)
	in := l4Offsets(tb, pkt, s.l2)
	hdr := VirtioNetHdr{
		HdrLen:     uint16(in.hdrEnd),
		GSOSize:    uint16(gso),
		CsumStart:  uint16(in.l4),
		CsumOffset: 16,
	}
	switch {
	case s.udp:
		hdr.GSOType, hdr.CsumOffset = GSOUDPL4, 6
	case s.v6:
		hdr.GSOType = GSOTCPv6
	default:
		hdr.GSOType = GSOTCPv4
	}
	if !s.udp && s.flags&tcpFlagCWR != 0 {
		hdr.GSOType |= GSOECN
	}
	if partial {
		hdr.Flags = VirtioNetHdrFNeedsCsum
		makePartial(tb, pkt, s.l2)
	}
	var want [][]byte
	for i, off := 0, 0; off < len(s.payload); i, off = i+1, off+gso {
		seg := s
		seg.payload = s.payload[off:min(off+gso, len(s.payload))]
		seg.id = s.id + uint16(i)
		seg.seq = s.seq + uint32(i*gso)
		if off+gso < len(s.payload) {
			seg.flags &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			seg.flags &^= tcpFlagCWR
		}
		want = append(want, buildPacket(tb, seg))
	}
	return pkt, hdr, want
}

// runSplit runs SplitGSO twice, with pkt in a separate buffer and with pkt
// aliasing outs[0][offset:], checks that both give the same result and
// returns the segments.
func runSplit(tb testing.TB, pkt []byte, hdr VirtioNetHdr, l2, nOuts int) ([][]byte, error) {
	tb.Helper()
	const offset = 16
	size := len(pkt) + offset
	var results [2][][]byte
	var errs [2]error
	for alias := range 2 {
		outs := makeOuts(nOuts, size)
		sizes := make([]int, nOuts)
		in := append([]byte(nil), pkt...)
		if alias == 1 {
			copy(outs[0][offset:], pkt)
			in = outs[0][offset : offset+len(pkt)]
		}
		n, err := SplitGSO(in, hdr, l2, outs, sizes, offset)
		errs[alias] = err
		if err != nil {
			if n != 0 {
				tb.Fatalf("error %v with n = %d", err, n)
			}
			// Nothing written: the aliased packet is intact, the
			// other buffers still zero.
			if !bytes.Equal(in, pkt) {
				tb.Fatalf("alias=%d: input modified on error %v", alias, err)
			}
			for i := 1; i < nOuts; i++ {
				if !bytes.Equal(outs[i], make([]byte, size)) {
					tb.Fatalf("alias=%d: outs[%d] written on error %v", alias, i, err)
				}
			}
			continue
		}
		if alias == 0 && !bytes.Equal(in, pkt) {
			tb.Fatal("non-aliased input modified")
		}
		for i := range n {
			results[alias] = append(results[alias], outs[i][offset:offset+sizes[i]])
		}
	}
	if (errs[0] == nil) != (errs[1] == nil) {
		tb.Fatalf("aliasing changes the outcome: %v / %v", errs[0], errs[1])
	}
	if len(results[0]) != len(results[1]) {
		tb.Fatalf("aliasing changes the segment count: %d / %d", len(results[0]), len(results[1]))
	}
	for i := range results[0] {
		if !bytes.Equal(results[0][i], results[1][i]) {
			tb.Fatalf("aliasing changes segment %d", i)
		}
	}
	return results[0], errs[0]
}

func TestSplitGSO(t *testing.T) {
	ts := []uint32{0x01020304, 0x0a0b0c0d}
	cases := []struct {
		name    string
		spec    pktSpec
		payload int
		gso     int
		segs    int
	}{
		{"tcp4", pktSpec{seq: 1000, ack: 77, flags: tcpFlagACK, id: 100, df: true}, 3*1448 + 500, 1448, 4},
		{"tcp4-ts-psh", pktSpec{seq: 1, ack: 77, flags: tcpFlagACK | tcpFlagPSH, id: 9, ts: ts}, 4 * 1000, 1000, 4},
		{"tcp4-fin-psh-cwr-ece", pktSpec{seq: 5, ack: 7, flags: tcpFlagACK | tcpFlagPSH | tcpFlagFIN | tcpFlagCWR | tcpFlagECE}, 2500, 1000, 3},
		{"tcp4-ipopts", pktSpec{seq: 5, ack: 7, flags: tcpFlagACK, ipOpts: true}, 2500, 1000, 3},
		{"tcp4-id-seq-wrap", pktSpec{seq: 0xffffff00, ack: 7, flags: tcpFlagACK, id: 0xfffe}, 2000, 500, 4},
		{"tcp4-64k", pktSpec{seq: 5, ack: 7, flags: tcpFlagACK | tcpFlagPSH, ts: ts}, 65535 - 20 - 32, 1448, 46},
		{"tcp4-single", pktSpec{seq: 5, ack: 7, flags: tcpFlagACK}, 1000, 1448, 1},
		{"tcp6", pktSpec{v6: true, seq: 1000, ack: 77, flags: tcpFlagACK, tos: 0x28, flowLabel: 0x12345}, 3*1428 + 1, 1428, 4},
		{"tcp6-ts", pktSpec{v6: true, seq: 1000, ack: 77, flags: tcpFlagACK | tcpFlagPSH, ts: ts}, 3 * 1428, 1428, 3},
		{"udp4", pktSpec{udp: true, id: 3}, 3*1200 + 17, 1200, 4},
		{"udp4-exact", pktSpec{udp: true, id: 3}, 4 * 1200, 1200, 4},
		{"udp6", pktSpec{v6: true, udp: true}, 5*1000 + 999, 1000, 6},
		{"tap-tcp4", pktSpec{l2: 14, seq: 1000, ack: 77, flags: tcpFlagACK, id: 100}, 3*1448 + 500, 1448, 4},
		{"tap-tcp6", pktSpec{l2: 14, v6: true, seq: 1000, ack: 77, flags: tcpFlagACK | tcpFlagPSH, ts: ts}, 3*1428 + 20, 1428, 4},
		{"tap-udp4", pktSpec{l2: 14, udp: true, id: 3}, 2*1200 + 27, 1200, 3},
		{"tap-udp6", pktSpec{l2: 14, v6: true, udp: true}, 2*1200 + 27, 1200, 3},
		{"vlan-tcp4", pktSpec{l2: 14, vlan: true, seq: 1000, ack: 77, flags: tcpFlagACK, id: 100}, 3*1448 + 500, 1448, 4},
		{"vlan-tcp6", pktSpec{l2: 14, vlan: true, v6: true, seq: 1000, ack: 77, flags: tcpFlagACK}, 2*1448 + 50, 1448, 3},
		{"vlan-udp6", pktSpec{l2: 14, vlan: true, v6: true, udp: true}, 2*1200 + 17, 1200, 3},
	}
	for _, tc := range cases {
		for _, partial := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/partial=%v", tc.name, partial), func(t *testing.T) {
				s := tc.spec
				s.payload = testPayload(tc.payload, 3)
				pkt, hdr, want := makeSuper(t, s, tc.gso, partial)
				if len(want) != tc.segs {
					t.Fatalf("test expects %d segments, built %d", tc.segs, len(want))
				}
				// HdrLen is not trusted: the kernel may report
				// the whole first packet.
				hdr.HdrLen = uint16(len(pkt))
				got, err := runSplit(t, pkt, hdr, s.l2, tc.segs)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d segments, want %d", len(got), len(want))
				}
				var all []byte
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("segment %d:\n got % x\nwant % x", i, got[i], want[i])
					}
					in := checkSegment(t, got[i], s.l2)
					all = append(all, in.payload...)
				}
				if !bytes.Equal(all, s.payload) {
					t.Fatal("payloads do not add up to the super-packet's")
				}
				// One output buffer too few.
				if tc.segs == 1 {
					return
				}
				if _, err := runSplit(t, pkt, hdr, s.l2, tc.segs-1); !errors.Is(err, ErrTooManySegments) {
					t.Fatalf("with %d outputs: %v, want ErrTooManySegments", tc.segs-1, err)
				}
			})
		}
	}
}

// TestSplitGSOUDPNoChecksum: UDP over IPv4 without checksum and without
// NeedsCsum keeps 0 in every segment; with NeedsCsum it is computed.
func TestSplitGSOUDPNoChecksum(t *testing.T) {
	s := pktSpec{udp: true, payload: testPayload(2500, 1)}
	pkt, hdr, _ := makeSuper(t, s, 1000, false)
	in := l4Offsets(t, pkt, 0)
	pkt[in.l4+6], pkt[in.l4+7] = 0, 0
	got, err := runSplit(t, pkt, hdr, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, seg := range got {
		checkSegment(t, seg, 0)
		if seg[in.l4+6] != 0 || seg[in.l4+7] != 0 {
			t.Fatalf("segment %d has a checksum", i)
		}
	}
	hdr.Flags = VirtioNetHdrFNeedsCsum
	makePartial(t, pkt, 0)
	got, err = runSplit(t, pkt, hdr, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, seg := range got {
		checkSegment(t, seg, 0)
		if seg[in.l4+6] == 0 && seg[in.l4+7] == 0 {
			t.Fatalf("segment %d has no checksum", i)
		}
	}
}

func TestSplitGSONone(t *testing.T) {
	for _, s := range []pktSpec{
		{seq: 1, ack: 2, flags: tcpFlagACK | tcpFlagPSH},
		{v6: true, seq: 1, ack: 2, flags: tcpFlagACK, ts: []uint32{1, 2}},
		{udp: true},
		{v6: true, udp: true},
		{l2: 14, seq: 1, ack: 2, flags: tcpFlagACK},
		{l2: 14, vlan: true, v6: true, udp: true},
	} {
		for _, n := range []int{1, 2, 333, 1000} {
			if s.l2 != 0 {
				n += 20 // no Ethernet padding
			}
			s.payload = testPayload(n, byte(n))
			want := buildPacket(t, s)
			// Without NeedsCsum: copied as is, whatever it holds.
			got, err := runSplit(t, want, VirtioNetHdr{}, s.l2, 1)
			if err != nil || len(got) != 1 || !bytes.Equal(got[0], want) {
				t.Fatalf("GSONone copy: %v", err)
			}
			pkt := append([]byte(nil), want...)
			start, off := makePartial(t, pkt, s.l2)
			hdr := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: start, CsumOffset: off}
			got, err = runSplit(t, pkt, hdr, s.l2, 3)
			if err != nil || len(got) != 1 {
				t.Fatalf("GSONone checksum: n = %d, %v", len(got), err)
			}
			if !bytes.Equal(got[0], want) {
				t.Fatalf("GSONone checksum:\n got % x\nwant % x", got[0], want)
			}
			checkSegment(t, got[0], s.l2)
		}
	}
}

// TestSplitGSONoneZeroChecksum: a completed checksum of 0 is stored as
// 0xffff, as the kernel's skb_checksum_help does.
func TestSplitGSONoneZeroChecksum(t *testing.T) {
	for _, udp := range []bool{false, true} {
		s := pktSpec{udp: udp, seq: 1, ack: 1, flags: tcpFlagACK, payload: testPayload(100, 9)}
		pkt := buildPacket(t, s)
		start, off := makePartial(t, pkt, 0)
		at := int(start + off)
		// Choose the last two payload bytes so that the sum is all ones.
		pkt[len(pkt)-2], pkt[len(pkt)-1] = 0, 0
		partial := binary.BigEndian.Uint16(pkt[at:])
		tmp := append([]byte(nil), pkt...)
		tmp[at], tmp[at+1] = 0, 0
		sum := refSum(tmp[start:], uint32(partial))
		binary.BigEndian.PutUint16(pkt[len(pkt)-2:], ^uint16(sum))
		hdr := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: start, CsumOffset: off}
		got, err := runSplit(t, pkt, hdr, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if c := binary.BigEndian.Uint16(got[0][at:]); c != 0xffff {
			t.Fatalf("udp=%v: checksum %#x, want 0xffff", udp, c)
		}
		checkSegment(t, got[0], 0)
	}
}

func TestSplitGSOErrors(t *testing.T) {
	tcp4 := pktSpec{seq: 1, ack: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}
	tcp6 := pktSpec{v6: true, seq: 1, ack: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}
	udp4 := pktSpec{udp: true, payload: testPayload(3000, 1)}
	type mod func(pkt []byte, hdr *VirtioNetHdr) []byte
	cases := []struct {
		name string
		spec pktSpec
		mod  mod
		want error
	}{
		{"gso-size-0", tcp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOSize = 0; return p }, ErrMalformed},
		{"gso-type-2", tcp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = 2; return p }, ErrUnsupported},
		{"gso-type-6", tcp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = 6; return p }, ErrUnsupported},
		{"gso-type-ecn-only", tcp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = GSOECN; return p }, ErrUnsupported},
		{"gso-legacy-udp", udp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = GSOUDP; return p }, ErrUnsupported},
		{"gso-udp-l4-ecn", udp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType |= GSOECN; return p }, ErrUnsupported},
		{"tcpv4-on-ipv6", tcp6, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = GSOTCPv4; return p }, ErrMalformed},
		{"tcpv6-on-ipv4", tcp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = GSOTCPv6; return p }, ErrMalformed},
		{"tcpv4-on-udp", udp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = GSOTCPv4; return p }, ErrMalformed},
		{"udp-on-tcp", tcp4, func(p []byte, h *VirtioNetHdr) []byte { h.GSOType = GSOUDPL4; return p }, ErrMalformed},
		{"ipv6-hop-by-hop", pktSpec{v6: true, hbh: true, seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, nil, ErrUnsupported},
		{"ipv6-icmp", tcp6, func(p []byte, h *VirtioNetHdr) []byte { p[6] = ProtoICMPv6; return p }, ErrMalformed},
		{"ipv4-mf", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[6] |= 0x20; return p }, ErrMalformed},
		{"ipv4-frag-offset", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[7] = 1; return p }, ErrMalformed},
		{"ipv4-ihl-4", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[0] = 0x44; return p }, ErrMalformed},
		{"ipv4-ihl-past-end", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[0] = 0x4f; return p[:50] }, ErrTruncated},
		{"version-0", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[0] = 0x05; return p }, ErrMalformed},
		{"empty", tcp4, func(p []byte, h *VirtioNetHdr) []byte { return p[:0] }, ErrMalformed},
		{"ipv4-header-cut", tcp4, func(p []byte, h *VirtioNetHdr) []byte { return p[:19] }, ErrTruncated},
		{"ipv6-header-cut", tcp6, func(p []byte, h *VirtioNetHdr) []byte { return p[:39] }, ErrTruncated},
		{"tcp-header-cut", tcp4, func(p []byte, h *VirtioNetHdr) []byte { return p[:39] }, ErrTruncated},
		{"tcp-options-cut", pktSpec{seq: 1, flags: tcpFlagACK, ts: []uint32{1, 2}}, func(p []byte, h *VirtioNetHdr) []byte { return p[:45] }, ErrTruncated},
		{"tcp-data-offset-4", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[32] = 0x40; return p }, ErrMalformed},
		{"tcp-data-offset-past-end", tcp4, func(p []byte, h *VirtioNetHdr) []byte { p[32] = 0xf0; return p[:60] }, ErrTruncated},
		{"udp-header-cut", udp4, func(p []byte, h *VirtioNetHdr) []byte { return p[:27] }, ErrTruncated},
		{"no-payload", tcp4, func(p []byte, h *VirtioNetHdr) []byte { return p[:40] }, ErrMalformed},
		{"eth-short", pktSpec{l2: 14, seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, func(p []byte, h *VirtioNetHdr) []byte { return p[:13] }, ErrTruncated},
		{"vlan-short", pktSpec{l2: 14, vlan: true, seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, func(p []byte, h *VirtioNetHdr) []byte { return p[:17] }, ErrTruncated},
		{"eth-arp", pktSpec{l2: 14, seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, func(p []byte, h *VirtioNetHdr) []byte { p[12], p[13] = 0x08, 0x06; return p }, ErrMalformed},
		{"eth-type-mismatch", pktSpec{l2: 14, seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, func(p []byte, h *VirtioNetHdr) []byte { p[12], p[13] = 0x86, 0xdd; return p }, ErrMalformed},
		{"three-vlan-tags", pktSpec{l2: 14, vlan: true, seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, func(p []byte, h *VirtioNetHdr) []byte {
			q := append([]byte(nil), p[:12]...)
			q = append(q, 0x81, 0, 0, 1, 0x81, 0, 0, 2)
			return append(q, p[12:]...)
		}, ErrUnsupported},
		{"segment-too-big", pktSpec{seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}, func(p []byte, h *VirtioNetHdr) []byte {
			h.GSOSize = 65535
			return append(p, make([]byte, 70000)...)
		}, ErrMalformed},
		{"none-csum-outside", tcp4, func(p []byte, h *VirtioNetHdr) []byte {
			*h = VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: uint16(len(p) - 10), CsumOffset: 9}
			return p
		}, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkt, hdr, _ := makeSuper(t, tc.spec, 1000, true)
			if tc.mod != nil {
				pkt = tc.mod(pkt, &hdr)
			}
			got, err := runSplit(t, pkt, hdr, tc.spec.l2, 64)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %d segments, error %v; want %v", len(got), err, tc.want)
			}
		})
	}
}

func TestSplitGSOArguments(t *testing.T) {
	s := pktSpec{seq: 1, flags: tcpFlagACK, payload: testPayload(3000, 1)}
	pkt, hdr, _ := makeSuper(t, s, 1000, true)
	outs := makeOuts(3, 2000)
	sizes := make([]int, 3)
	if _, err := SplitGSO(pkt, hdr, 7, outs, sizes, 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("l2Len 7: %v", err)
	}
	if _, err := SplitGSO(pkt, hdr, 0, outs, sizes, -1); !errors.Is(err, ErrMalformed) {
		t.Errorf("offset -1: %v", err)
	}
	if _, err := SplitGSO(pkt, hdr, 0, outs, sizes[:2], 0); !errors.Is(err, ErrTooManySegments) {
		t.Errorf("short sizes: %v", err)
	}
	if _, err := SplitGSO(pkt, hdr, 0, outs, sizes, 2000-1040+1); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("offset leaves too little room: %v", err)
	}
	if _, err := SplitGSO(pkt, hdr, 0, outs, sizes, 3000); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("offset past the buffers: %v", err)
	}
	if n, err := SplitGSO(pkt, hdr, 0, outs, sizes, 2000-1040); n != 3 || err != nil {
		t.Errorf("exact fit: %d, %v", n, err)
	}
	// A short buffer in the middle: nothing written, even with aliasing.
	for alias := range 2 {
		outs := makeOuts(3, 1100)
		outs[1] = make([]byte, 1039)
		in := pkt
		if alias == 1 {
			outs[0] = append(make([]byte, 0, len(pkt)), pkt...)
			in = outs[0]
		}
		if _, err := SplitGSO(in, hdr, 0, outs, sizes, 0); !errors.Is(err, ErrShortBuffer) {
			t.Errorf("short middle buffer: %v", err)
		}
		if !bytes.Equal(in, pkt) || !bytes.Equal(outs[2], make([]byte, 1100)) {
			t.Error("written despite the error")
		}
	}
	// GSONone: no outputs, short output.
	if _, err := SplitGSO(pkt, VirtioNetHdr{}, 0, nil, sizes, 0); !errors.Is(err, ErrTooManySegments) {
		t.Errorf("GSONone without outputs: %v", err)
	}
	if _, err := SplitGSO(pkt, VirtioNetHdr{}, 0, outs, sizes, 0); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("GSONone into a short buffer: %v", err)
	}
}
