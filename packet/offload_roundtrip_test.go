package packet

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// chooser makes the random choices of genStream: from math/rand in tests,
// from the fuzzer's bytes in FuzzCoalesceRoundTrip.
type chooser interface {
	intn(n int) int // in [0, n); n > 0
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.IntN(n) }

// bytesChooser consumes its bytes; once they run out every choice is 0.
type bytesChooser struct{ b []byte }

func (c *bytesChooser) intn(n int) int {
	if n <= 1 {
		return 0
	}
	var v int
	if n > 256 {
		if len(c.b) < 2 {
			c.b = nil
			return 0
		}
		v = int(c.b[0])<<8 | int(c.b[1])
		c.b = c.b[2:]
	} else {
		if len(c.b) < 1 {
			return 0
		}
		v = int(c.b[0])
		c.b = c.b[1:]
	}
	return v % n
}

// genFlow is the state of one sender in genStream.
type genFlow struct {
	spec pktSpec
	seq  uint32
	id   uint16
	mss  int
}

// genStream derives a batch of packets from ch, as TCP and UDP senders
// produce them (consecutive sequence numbers, incrementing IPv4 IDs, the
// same options), with the odd event that must stop coalescing: a short or
// PSH segment, a pure ACK, a changed ACK/window/timestamp, a retransmission
// or gap, SYN/FIN/RST/URG, ECN flags, an ID jump, a TTL change, IPv4 options
// or an IPv6 extension header, a packet of another protocol, a truncated
// packet. It also returns the capacity after offset of each buffer.
func genStream(ch chooser, l2 int, maxPkts int) ([][]byte, []int) {
	nflows := 1 + ch.intn(4)
	flows := make([]*genFlow, nflows)
	mssChoices := []int{1, 8, 100, 536, 1000, 1448, 1460}
	for i := range flows {
		s := pktSpec{
			l2:    l2,
			v6:    ch.intn(2) == 1,
			udp:   ch.intn(4) == 0,
			sport: uint16(40000 + i),
			dport: uint16(443 + ch.intn(2)),
			df:    ch.intn(2) == 1,
			tos:   uint8(ch.intn(4)),
			ack:   uint32(ch.intn(1 << 16)),
			flags: tcpFlagACK,
		}
		if ch.intn(2) == 1 {
			s.ts = []uint32{uint32(ch.intn(1000)), 5}
		}
		flows[i] = &genFlow{
			spec: s,
			seq:  uint32(ch.intn(1<<16)) << 16,
			id:   uint16(ch.intn(1 << 16)),
			mss:  mssChoices[ch.intn(len(mssChoices))],
		}
	}
	n := 1 + ch.intn(maxPkts)
	var pkts [][]byte
	var caps []int
	cur := 0
	for range n {
		if ch.intn(3) == 0 {
			cur = ch.intn(nflows)
		}
		f := flows[cur]
		p := f.spec
		p.seq, p.id = f.seq, f.id
		size := f.mss
		if ch.intn(6) == 0 {
			size = 1 + ch.intn(f.mss)
		}
		advance := true
		var mangle func([]byte) []byte
		switch r := ch.intn(100); {
		case r < 65:
			if ch.intn(8) == 0 {
				p.flags |= tcpFlagPSH
			}
		case r < 70:
			size = 0 // pure ACK (or an empty datagram)
		case r < 75: // a lasting change
			switch ch.intn(3) {
			case 0:
				f.spec.ack += uint32(1 + ch.intn(3000))
			case 1:
				f.spec.window = uint16(ch.intn(1 << 16))
			case 2:
				if f.spec.ts != nil {
					f.spec.ts = []uint32{f.spec.ts[0] + 1, f.spec.ts[1]}
				}
			}
			p = f.spec
			p.seq, p.id = f.seq, f.id
		case r < 79: // retransmission, overlap or gap
			p.seq += uint32(ch.intn(3*f.mss)) - uint32(2*f.mss)
			advance = false
		case r < 82:
			p.flags |= []uint8{tcpFlagSYN, tcpFlagFIN, tcpFlagRST, tcpFlagURG}[ch.intn(4)]
			if p.flags&tcpFlagURG != 0 {
				p.urgent = 1
			}
		case r < 85:
			p.flags |= []uint8{tcpFlagCWR, tcpFlagECE, tcpFlagCWR | tcpFlagECE}[ch.intn(3)]
		case r < 88:
			f.id += uint16(ch.intn(3)) - 1 // a jump
			p.id = f.id
		case r < 90:
			p.ttl = uint8(1 + ch.intn(255))
		case r < 92:
			if p.v6 {
				p.hbh = true
			} else {
				p.ipOpts = true
			}
		case r < 94: // another protocol
			mangle = func(b []byte) []byte {
				if p.v6 {
					b[l2+6] = ProtoICMPv6
				} else {
					b[l2+9] = ProtoICMP
				}
				return b
			}
		case r < 96: // truncated
			cut := ch.intn(60)
			mangle = func(b []byte) []byte { return b[:max(0, len(b)-cut)] }
		default: // another flow's packet with the same ports, other addresses
			p.src = net.IPv4(10, 0, 0, byte(ch.intn(3)))
			if p.v6 {
				p.src = net.ParseIP(fmt.Sprintf("2001:db8::%d", 10+ch.intn(3)))
			}
		}
		p.payload = testPayload(size, byte(len(pkts)))
		b, err := buildPacketErr(p)
		if err != nil {
			panic(err)
		}
		if mangle != nil {
			b = mangle(b)
		}
		pkts = append(pkts, b)
		capacity := maxCoalesceLen + 64
		if ch.intn(8) == 0 {
			capacity = len(b) + ch.intn(4*f.mss)
		}
		caps = append(caps, capacity)
		if advance {
			f.seq += uint32(size)
			f.id++
		}
	}
	return pkts, caps
}

// flowOf names the flow of a packet for grouping, tolerating malformed
// packets (all of which fall into flows of their own kind).
func flowOf(b []byte, l2 int) string {
	if len(b) < l2+1 {
		return "short"
	}
	ip := b[l2:]
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return "short4"
		}
		ihl := int(ip[0]&15) * 4
		if len(ip) < ihl+4 || ihl < 20 {
			return fmt.Sprintf("short4 %x", ip[12:20])
		}
		return fmt.Sprintf("4 %x %d %x", ip[12:20], ip[9], ip[ihl:ihl+4])
	case 6:
		if len(ip) < 44 {
			return "short6"
		}
		if ip[6] == ProtoTCP || ip[6] == ProtoUDP {
			return fmt.Sprintf("6 %x %d %x", ip[8:40], ip[6], ip[40:44])
		}
		return fmt.Sprintf("6 %x %d", ip[8:40], ip[6]) // extension headers: by addresses
	}
	return "other"
}

// checkRoundTrip coalesces pkts with c, splits every written packet again
// as the kernel would, and checks that each flow's packets come out
// exactly as they went in, with valid checksums.
// It returns the number of packets merged into others.
func checkRoundTrip(t *testing.T, c *Coalescer, pkts [][]byte, caps []int) int {
	t.Helper()
	const offset = VirtioNetHdrLen + 6
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		bufs[i] = withHeadroom(p, offset, caps[i])
	}
	out := c.Coalesce(bufs, offset, make([]int, 0, len(bufs)))
	wantFlows := map[string][][]byte{}
	for _, p := range pkts {
		k := flowOf(p, c.L2Len)
		wantFlows[k] = append(wantFlows[k], p)
	}
	gotFlows := map[string][][]byte{}
	total := 0
	for k, i := range out {
		if k > 0 && out[k-1] >= i {
			t.Fatalf("written indices not increasing: %v", out)
		}
		b := bufs[i]
		if len(b)-offset > maxCoalesceLen {
			t.Fatalf("coalesced packet of %d bytes", len(b)-offset)
		}
		var hdr VirtioNetHdr
		if err := hdr.Decode(b[offset-VirtioNetHdrLen:]); err != nil {
			t.Fatal(err)
		}
		segs := splitWritten(t, b, offset, c.L2Len)
		if len(segs) > maxCoalesceSegments {
			t.Fatalf("%d segments", len(segs))
		}
		for _, seg := range segs {
			if hdr.GSOType != GSONone {
				checkSegment(t, seg, c.L2Len)
			}
			k := flowOf(seg, c.L2Len)
			gotFlows[k] = append(gotFlows[k], seg)
			total++
		}
	}
	if total != len(pkts) {
		t.Fatalf("%d packets in, %d out", len(pkts), total)
	}
	for k, want := range wantFlows {
		got := gotFlows[k]
		if len(got) != len(want) {
			t.Fatalf("flow %s: %d packets in, %d out", k, len(want), len(got))
		}
		for j := range want {
			if !bytes.Equal(got[j], want[j]) {
				t.Fatalf("flow %s: packet %d differs:\n got % x\nwant % x", k, j, got[j], want[j])
			}
		}
	}
	return len(pkts) - len(out)
}

func TestCoalesceRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	var cs [4]Coalescer
	iters := 400
	if testing.Short() {
		iters = 50
	}
	merged := 0
	for it := range iters {
		c := &cs[it%4]
		c.L2Len = []int{0, EthernetHeaderLen}[it%2]
		c.UDP = it%4 >= 2
		pkts, caps := genStream(randChooser{r}, c.L2Len, 100)
		merged += checkRoundTrip(t, c, pkts, caps)
	}
	t.Logf("%d iterations, %d packets merged", iters, merged)
}

// TestSplitCoalesceRoundTrip: a valid super-packet, split and then
// coalesced, comes back unchanged, virtio-net header included.
func TestSplitCoalesceRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for it := range 300 {
		s := pktSpec{
			l2:    []int{0, EthernetHeaderLen}[r.IntN(2)],
			v6:    r.IntN(2) == 1,
			udp:   r.IntN(3) == 0,
			seq:   r.Uint32(),
			ack:   r.Uint32(),
			id:    uint16(r.Uint32()),
			df:    r.IntN(2) == 1,
			flags: tcpFlagACK,
			tos:   uint8(r.IntN(256)),
		}
		if r.IntN(2) == 1 {
			s.ts = []uint32{r.Uint32(), r.Uint32()}
		}
		if r.IntN(3) == 0 {
			s.flags |= tcpFlagPSH
		}
		if r.IntN(4) == 0 {
			s.flags |= tcpFlagCWR
		}
		if r.IntN(4) == 0 {
			s.flags |= tcpFlagECE
		}
		gso := []int{100, 536, 1000, 1448, 8000}[r.IntN(5)]
		segs := 2 + r.IntN(maxCoalesceSegments-1)
		size := (segs-1)*gso + 20 + r.IntN(gso-20+1) // no Ethernet padding
		maxPayload := maxCoalesceLen - s.l2 - 40 - 8 - 32
		if size > maxPayload {
			size = maxPayload
		}
		s.payload = testPayload(size, byte(it))
		pkt, hdr, _ := makeSuper(t, s, gso, true)
		const offset = VirtioNetHdrLen
		outs := makeOuts(maxCoalesceSegments, offset+len(pkt))
		sizes := make([]int, len(outs))
		n, err := SplitGSO(pkt, hdr, s.l2, outs, sizes, offset)
		if err != nil {
			t.Fatal(err)
		}
		bufs := make([][]byte, n)
		for i := range n {
			bufs[i] = outs[i][:offset+sizes[i]]
		}
		c := Coalescer{L2Len: s.l2, UDP: true}
		out := c.Coalesce(bufs, offset, nil)
		if len(out) != 1 || out[0] != 0 {
			t.Fatalf("%+v gso %d: %d segments coalesced into %v", hdr, gso, n, out)
		}
		var got VirtioNetHdr
		if err := got.Decode(bufs[0]); err != nil {
			t.Fatal(err)
		}
		if got != hdr {
			t.Fatalf("header %+v, want %+v", got, hdr)
		}
		if !bytes.Equal(bufs[0][offset:], pkt) {
			t.Fatalf("super-packet differs:\n got % x\nwant % x", bufs[0][offset:], pkt)
		}
	}
}
