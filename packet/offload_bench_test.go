package packet

import (
	"testing"
)

const benchMSS = 1448

// tsoPacket returns a TCPv4 super-packet of segs full segments of benchMSS
// bytes (with timestamps: 52 bytes of headers, 63764 bytes in all for 44
// segments) and its virtio-net header, as the kernel hands it over.
func tsoPacket(tb testing.TB, segs int) ([]byte, VirtioNetHdr) {
	s := pktSpec{seq: 1, ack: 2, flags: tcpFlagACK | tcpFlagPSH, df: true, ts: []uint32{1, 2},
		payload: testPayload(segs*benchMSS, 1)}
	pkt, hdr, _ := makeSuper(tb, s, benchMSS, true)
	return pkt, hdr
}

func TestSplitGSOAllocs(t *testing.T) {
	pkt, hdr := tsoPacket(t, 44)
	outs := makeOuts(44, VirtioNetHdrLen+1600)
	sizes := make([]int, 44)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := SplitGSO(pkt, hdr, 0, outs, sizes, VirtioNetHdrLen); n != 44 || err != nil {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("SplitGSO: %v allocations per run", allocs)
	}
	// In place, and failing.
	buf := make([]byte, VirtioNetHdrLen+len(pkt))
	outs[0] = buf
	bad := hdr
	bad.GSOType = GSOUDP
	allocs = testing.AllocsPerRun(100, func() {
		copy(buf[VirtioNetHdrLen:], pkt)
		if _, err := SplitGSO(buf[VirtioNetHdrLen:], hdr, 0, outs, sizes, VirtioNetHdrLen); err != nil {
			t.Fatal(err)
		}
		if _, err := SplitGSO(pkt, bad, 0, outs, sizes, VirtioNetHdrLen); err == nil {
			t.Fatal("no error")
		}
	})
	if allocs != 0 {
		t.Fatalf("SplitGSO in place: %v allocations per run", allocs)
	}
}

// coalesceBatch holds a batch of segments and restores it between runs.
type coalesceBatch struct {
	pristine [][]byte
	bufs     [][]byte
	out      []int
	bytes    int
}

const benchOffset = VirtioNetHdrLen + 6

// newCoalesceBatch builds n segments of benchMSS bytes from nflows
// interleaved TCPv4 flows.
func newCoalesceBatch(tb testing.TB, n, nflows int) *coalesceBatch {
	cb := &coalesceBatch{out: make([]int, 0, n)}
	streams := make([]*tcpStream, nflows)
	for i := range streams {
		streams[i] = newStream(pktSpec{sport: uint16(1000 + i), df: true, ts: []uint32{1, 2}})
	}
	for i := range n {
		p := buildPacket(tb, streams[i%nflows].next(benchMSS))
		cb.pristine = append(cb.pristine, withHeadroom(p, benchOffset, maxCoalesceLen))
		cb.bufs = append(cb.bufs, withHeadroom(p, benchOffset, maxCoalesceLen))
		cb.bytes += len(p)
	}
	return cb
}

// restore undoes what Coalesce changed: lengths, and the virtio-net and
// packet headers of heads (appended payload bytes are overwritten anyway).
func (cb *coalesceBatch) restore() {
	for i, p := range cb.pristine {
		cb.bufs[i] = cb.bufs[i][:len(p)]
		copy(cb.bufs[i][:benchOffset+64], p)
	}
}

func TestCoalesceAllocs(t *testing.T) {
	cb := newCoalesceBatch(t, 64, 2)
	var c Coalescer
	allocs := testing.AllocsPerRun(100, func() {
		cb.restore()
		if out := c.Coalesce(cb.bufs, benchOffset, cb.out); len(out) != 2 {
			t.Fatalf("written %v", out)
		}
	})
	if allocs != 0 {
		t.Fatalf("Coalesce: %v allocations per run", allocs)
	}
}

func BenchmarkSplitGSO(b *testing.B) {
	pkt, hdr := tsoPacket(b, 44)
	outs := makeOuts(44, VirtioNetHdrLen+1600)
	sizes := make([]int, 44)
	b.Run("TCPv4-64KiB-MSS1448", func(b *testing.B) {
		b.SetBytes(int64(len(pkt)))
		b.ReportAllocs()
		for b.Loop() {
			if n, err := SplitGSO(pkt, hdr, 0, outs, sizes, VirtioNetHdrLen); n != 44 || err != nil {
				b.Fatal(n, err)
			}
		}
	})
	// The usual case: the device read into outs[0]. Repeating the split on
	// its own output only changes the first segment's headers, which
	// SplitGSO does not trust anyway.
	b.Run("TCPv4-64KiB-MSS1448-in-place", func(b *testing.B) {
		buf := make([]byte, VirtioNetHdrLen+len(pkt))
		copy(buf[VirtioNetHdrLen:], pkt)
		outs := append([][]byte{buf}, outs[1:]...)
		b.SetBytes(int64(len(pkt)))
		b.ReportAllocs()
		for b.Loop() {
			if n, err := SplitGSO(buf[VirtioNetHdrLen:], hdr, 0, outs, sizes, VirtioNetHdrLen); n != 44 || err != nil {
				b.Fatal(n, err)
			}
		}
	})
}

func BenchmarkCoalesce(b *testing.B) {
	for _, bc := range []struct {
		name   string
		n      int
		flows  int
		writes int
	}{
		{"44x1448-1flow", 44, 1, 1},
		{"64x1448-2flows", 64, 2, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cb := newCoalesceBatch(b, bc.n, bc.flows)
			var c Coalescer
			b.SetBytes(int64(cb.bytes))
			b.ReportAllocs()
			for b.Loop() {
				cb.restore()
				if out := c.Coalesce(cb.bufs, benchOffset, cb.out); len(out) != bc.writes {
					b.Fatalf("written %v", out)
				}
			}
		})
	}
	// The cost of restore alone, to subtract.
	b.Run("restore-only-64", func(b *testing.B) {
		cb := newCoalesceBatch(b, 64, 2)
		b.ReportAllocs()
		for b.Loop() {
			cb.restore()
		}
	})
}
