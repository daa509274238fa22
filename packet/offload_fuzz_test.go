package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const (
	fuzzSplitOuts   = 16
	fuzzSplitMaxLen = 16 << 10
)

// FuzzSplitGSO feeds arbitrary packets and virtio-net headers to SplitGSO:
// it must never panic, must behave the same whether or not the packet
// aliases outs[0], must not touch anything when it fails, and every
// segment it returns must be a consistent packet with valid checksums whose
// payloads add up to the super-packet's.
func FuzzSplitGSO(f *testing.F) {
	for _, s := range splitSeeds(f) {
		f.Add(s.pkt, s.hdr.Flags, s.hdr.GSOType, s.hdr.HdrLen, s.hdr.GSOSize, s.hdr.CsumStart, s.hdr.CsumOffset, s.tap)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16, tap bool) {
		if len(pkt) > fuzzSplitMaxLen {
			return
		}
		hdr := VirtioNetHdr{flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset}
		l2 := 0
		if tap {
			l2 = EthernetHeaderLen
		}
		segs, err := runSplit(t, pkt, hdr, l2, fuzzSplitOuts)
		if err != nil {
			return
		}
		if hdr.GSOType == GSONone {
			if len(segs) != 1 || len(segs[0]) != len(pkt) {
				t.Fatalf("GSONone gave %d segments", len(segs))
			}
			out := segs[0]
			if hdr.Flags&VirtioNetHdrFNeedsCsum == 0 {
				if !bytes.Equal(out, pkt) {
					t.Fatal("GSONone without NeedsCsum modified the packet")
				}
				return
			}
			start, at := int(csumStart), int(csumStart)+int(csumOffset)
			if !bytes.Equal(out[:at], pkt[:at]) || !bytes.Equal(out[at+2:], pkt[at+2:]) {
				t.Fatal("GSONone modified more than the checksum field")
			}
			if csumOffset%2 == 0 {
				partial := binary.BigEndian.Uint16(pkt[at:])
				if c := refChecksum(out[start:], uint32(partial)); c != 0 {
					t.Fatalf("GSONone checksum does not verify (%#x)", c)
				}
			}
			return
		}
		var payload []byte
		var first pktInfo
		for i, seg := range segs {
			in, err := parsePacket(seg, l2)
			if err != nil {
				t.Fatalf("segment %d of %d: %v\n% x", i, len(segs), err, seg)
			}
			if i == 0 {
				first = in
			} else if in.hdrEnd != first.hdrEnd || in.flow != first.flow {
				t.Fatalf("segment %d has other headers", i)
			}
			if len(in.payload) == 0 || len(in.payload) > int(gsoSize) || i < len(segs)-1 && len(in.payload) != int(gsoSize) {
				t.Fatalf("segment %d has %d payload bytes, GSO size %d", i, len(in.payload), gsoSize)
			}
			if !in.udp && in.seq != first.seq+uint32(i)*uint32(gsoSize) {
				t.Fatalf("segment %d: seq %d", i, in.seq)
			}
			payload = append(payload, in.payload...)
		}
		if !bytes.Equal(payload, pkt[first.hdrEnd:]) {
			t.Fatal("segment payloads do not add up to the super-packet's")
		}
	})
}

// FuzzCoalesceRoundTrip derives a stream of packets of several flows from
// the fuzzer's bytes (see genStream) and checks that coalescing then
// splitting gives every flow's packets back unchanged.
func FuzzCoalesceRoundTrip(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{0, 1, 16, 64, 200, 600} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	var cs [2][2]Coalescer // reused across inputs, as a device would
	f.Fuzz(func(t *testing.T, data []byte) {
		ch := &bytesChooser{data}
		tap, udp := ch.intn(2), ch.intn(2)
		c := &cs[tap][udp]
		c.L2Len = tap * EthernetHeaderLen
		c.UDP = udp == 1
		pkts, caps := genStream(ch, c.L2Len, 80)
		checkRoundTrip(t, c, pkts, caps)
	})
}

type splitSeed struct {
	name string
	pkt  []byte
	hdr  VirtioNetHdr
	tap  bool
}

// splitSeeds returns valid super-packets of every kind and a few broken
// ones.
func splitSeeds(tb testing.TB) []splitSeed {
	var seeds []splitSeed
	add := func(name string, s pktSpec, payload, gso int) {
		s.payload = testPayload(payload, byte(len(seeds)))
		pkt, hdr, _ := makeSuper(tb, s, gso, true)
		seeds = append(seeds, splitSeed{name, pkt, hdr, s.l2 != 0})
	}
	ts := []uint32{1, 2}
	add("tcp4", pktSpec{seq: 1, ack: 2, flags: tcpFlagACK | tcpFlagPSH, id: 7, df: true}, 250, 100)
	add("tcp4-ts-cwr", pktSpec{seq: 1, ack: 2, flags: tcpFlagACK | tcpFlagCWR, ts: ts}, 300, 100)
	add("tcp4-ipopts", pktSpec{seq: 1, ack: 2, flags: tcpFlagACK, ipOpts: true}, 120, 50)
	add("tcp6", pktSpec{v6: true, seq: 1, ack: 2, flags: tcpFlagACK | tcpFlagFIN}, 250, 100)
	add("udp4", pktSpec{udp: true, id: 3}, 250, 100)
	add("udp6", pktSpec{v6: true, udp: true}, 200, 100)
	add("tap-tcp4", pktSpec{l2: 14, seq: 1, ack: 2, flags: tcpFlagACK}, 250, 100)
	add("tap-udp6", pktSpec{l2: 14, v6: true, udp: true}, 250, 100)
	add("vlan-tcp6", pktSpec{l2: 14, vlan: true, v6: true, seq: 1, ack: 2, flags: tcpFlagACK, ts: ts}, 250, 100)
	add("ipv6-hbh", pktSpec{v6: true, hbh: true, seq: 1, ack: 2, flags: tcpFlagACK}, 250, 100)
	// GSONone with a partial checksum.
	pkt := buildPacket(tb, pktSpec{seq: 1, ack: 2, flags: tcpFlagACK, payload: testPayload(33, 1)})
	start, off := makePartial(tb, pkt, 0)
	seeds = append(seeds, splitSeed{"none-tcp4", pkt, VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: start, CsumOffset: off}, false})
	pkt = buildPacket(tb, pktSpec{l2: 14, v6: true, udp: true, payload: testPayload(33, 1)})
	start, off = makePartial(tb, pkt, 14)
	seeds = append(seeds, splitSeed{"none-tap-udp6", pkt, VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: start, CsumOffset: off}, true})
	// Broken: truncated, legacy UDP, GSO size 0.
	s := seeds[0]
	seeds = append(seeds, splitSeed{"truncated", s.pkt[:45], s.hdr, false})
	h := seeds[4].hdr
	h.GSOType = GSOUDP
	seeds = append(seeds, splitSeed{"legacy-udp", seeds[4].pkt, h, false})
	h = s.hdr
	h.GSOSize = 0
	seeds = append(seeds, splitSeed{"gso-size-0", s.pkt, h, false})
	return seeds
}

// TestWriteFuzzSeeds regenerates the checked-in seed corpora of
// FuzzSplitGSO and FuzzCoalesceRoundTrip when TAPWIRE_WRITE_FUZZ_SEEDS is
// set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("TAPWIRE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set TAPWIRE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSplitGSO")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range splitSeeds(t) {
		h := s.hdr
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte(%q)\nbyte(%q)\nuint16(%d)\nuint16(%d)\nuint16(%d)\nuint16(%d)\nbool(%v)\n",
			s.pkt, h.Flags, h.GSOType, h.HdrLen, h.GSOSize, h.CsumStart, h.CsumOffset, s.tap)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzCoalesceRoundTrip")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(42, 43))
	for i, n := range []int{8, 40, 120, 300, 700} {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		// The first two bytes choose TAP and UDP.
		b[0], b[1] = byte(i%2), byte(i/2%2)
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
