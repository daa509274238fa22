package fragment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// split cuts frame into the plaintexts of its pieces, each at most maxPlain
// bytes, as the engine does.
func split(kind Kind, id uint32, frame []byte, maxPlain int) [][]byte {
	chunk := ChunkSize(maxPlain)
	var out [][]byte
	for off := 0; off < len(frame); off += chunk {
		n := min(chunk, len(frame)-off)
		b := make([]byte, HeaderSize+n)
		Header{Kind: kind, Total: len(frame), ID: id, Offset: off, Len: n}.Put(b)
		copy(b[HeaderSize:], frame[off:off+n])
		out = append(out, b)
	}
	return out
}

func randomFrame(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestParse(t *testing.T) {
	good := make([]byte, HeaderSize+16)
	Header{Kind: KindFrame, Total: 40, ID: 7, Offset: 24, Len: 16}.Put(good)
	h, data, err := Parse(append(good, 0, 0, 0)) // padding after the data
	if err != nil || h != (Header{Kind: KindFrame, Total: 40, ID: 7, Offset: 24, Len: 16}) || len(data) != 16 {
		t.Fatalf("Parse = %+v, %d bytes, %v", h, len(data), err)
	}
	mk := func(h Header, dataLen int) []byte {
		b := make([]byte, HeaderSize+dataLen)
		h.Put(b)
		return b
	}
	bad := map[string][]byte{
		"short":         good[:HeaderSize-1],
		"unknown kind":  mk(Header{Kind: 3, Total: 8, Len: 8}, 8),
		"kind zero":     mk(Header{Kind: 0, Total: 8, Len: 8}, 8),
		"empty frame":   mk(Header{Kind: KindFrame, Total: 0, Len: 0}, 0),
		"no data":       mk(Header{Kind: KindFrame, Total: 8, Len: 0}, 0),
		"beyond end":    mk(Header{Kind: KindFrame, Total: 20, Offset: 16, Len: 8}, 8),
		"odd offset":    mk(Header{Kind: KindPacket, Total: 30, Offset: 4, Len: 8}, 8),
		"odd middle":    mk(Header{Kind: KindPacket, Total: 30, Offset: 0, Len: 12}, 12),
		"truncated":     mk(Header{Kind: KindFrame, Total: 64, Offset: 0, Len: 32}, 16),
		"reserved byte": func() []byte { b := mk(Header{Kind: KindFrame, Total: 8, Len: 8}, 8); b[1] = 1; return b }(),
	}
	for name, b := range bad {
		if _, _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// An unaligned length is fine for the last piece.
	if _, _, err := Parse(mk(Header{Kind: KindFrame, Total: 30, Offset: 16, Len: 14}, 14)); err != nil {
		t.Errorf("last piece of odd length: %v", err)
	}
}

func TestChunkSize(t *testing.T) {
	for _, c := range []struct{ maxPlain, want int }{
		{1420, 1408}, {1200, 1184}, {HeaderSize + 7, 0}, {HeaderSize + 8, 8}, {0, 0}, {100000, MaxSize &^ 7},
	} {
		if got := ChunkSize(c.maxPlain); got != c.want {
			t.Errorf("ChunkSize(%d) = %d, want %d", c.maxPlain, got, c.want)
		}
	}
	if Count(1514, 1408) != 2 || Count(1408, 1408) != 1 || Count(9018, 1184) != 8 || Count(1, 0) != 0 {
		t.Error("Count")
	}
}

// TestReassembleShuffled splits random frames of every size class at
// several path sizes, delivers the pieces of several frames interleaved,
// shuffled and partly duplicated, and checks each frame comes out exactly
// once, byte for byte.
func TestReassembleShuffled(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		maxPlain := []int{100, 1200, 1420, 1440, 8000}[round%5]
		ra := NewReassembler(Options{MaxSize: 9018})
		frames := map[uint32][]byte{}
		var pieces [][]byte
		for k := range 1 + r.IntN(DefaultSlots) {
			id := uint32(round*100 + k)
			f := randomFrame(r, 1+r.IntN(9018))
			frames[id] = f
			pieces = append(pieces, split(KindFrame, id, f, maxPlain)...)
		}
		dups := 0
		for range r.IntN(4) {
			pieces = append(pieces, pieces[r.IntN(len(pieces))])
			dups++
		}
		r.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
		out := make([]byte, 9018)
		got := map[uint32]int{}
		for _, p := range pieces {
			h, data, err := Parse(p)
			if err != nil {
				t.Fatal(err)
			}
			n, err := ra.Add(h, data, t0, out)
			if err != nil && !errors.Is(err, ErrDuplicate) {
				t.Fatalf("round %d: %v", round, err)
			}
			if n > 0 {
				got[h.ID]++
				if !bytes.Equal(out[:n], frames[h.ID]) {
					t.Fatalf("round %d: frame %d came out wrong (%d bytes, want %d)", round, h.ID, n, len(frames[h.ID]))
				}
			}
		}
		for id := range frames {
			if got[id] != 1 {
				t.Fatalf("round %d: frame %d completed %d times", round, id, got[id])
			}
		}
		// Every duplicate is counted, those of completed frames too.
		if st := ra.Stats(); st.Reassembled != uint64(len(frames)) || st.Duplicate != uint64(dups) ||
			st.Overlap+st.Mismatch+st.TooBig+st.Evicted+st.Expired != 0 || ra.Pending() != 0 {
			t.Fatalf("round %d: stats %+v", round, st)
		}
	}
}

func TestOverlapMismatchTooBig(t *testing.T) {
	ra := NewReassembler(Options{MaxSize: 1518})
	out := make([]byte, 1518)
	add := func(h Header) error {
		data := make([]byte, h.Len)
		_, err := ra.Add(h, data, t0, out)
		return err
	}
	if err := add(Header{Kind: KindFrame, Total: 1514, ID: 1, Offset: 0, Len: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := add(Header{Kind: KindFrame, Total: 1514, ID: 1, Offset: 992, Len: 16}); !errors.Is(err, ErrOverlap) {
		t.Errorf("overlap: %v", err)
	}
	if err := add(Header{Kind: KindFrame, Total: 1514, ID: 1, Offset: 0, Len: 1000}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	if err := add(Header{Kind: KindPacket, Total: 1514, ID: 1, Offset: 1000, Len: 514}); !errors.Is(err, ErrMismatch) {
		t.Errorf("other kind: %v", err)
	}
	if err := add(Header{Kind: KindFrame, Total: 1500, ID: 1, Offset: 1000, Len: 500}); !errors.Is(err, ErrMismatch) {
		t.Errorf("other total: %v", err)
	}
	if err := add(Header{Kind: KindFrame, Total: 1600, ID: 2, Offset: 0, Len: 8}); !errors.Is(err, ErrTooBig) {
		t.Errorf("too big: %v", err)
	}
	// The frame still completes with its real last piece.
	n, err := ra.Add(Header{Kind: KindFrame, Total: 1514, ID: 1, Offset: 1000, Len: 514}, make([]byte, 514), t0, out)
	if err != nil || n != 1514 {
		t.Errorf("last piece: %d, %v", n, err)
	}
	st := ra.Stats()
	if st.Overlap != 1 || st.Duplicate != 1 || st.Mismatch != 2 || st.TooBig != 1 || st.Reassembled != 1 || ra.Pending() != 0 {
		t.Errorf("stats %+v, pending %d", st, ra.Pending())
	}
}

func TestExpiryAndEviction(t *testing.T) {
	ra := NewReassembler(Options{Slots: 2, Timeout: time.Second, MaxSize: 100})
	out := make([]byte, 100)
	first := func(id uint32, at time.Time) {
		if _, err := ra.Add(Header{Kind: KindFrame, Total: 100, ID: id, Offset: 0, Len: 48}, make([]byte, 48), at, out); err != nil {
			t.Fatal(err)
		}
	}
	first(1, t0)
	first(2, t0.Add(100*time.Millisecond))
	first(3, t0.Add(200*time.Millisecond)) // evicts 1, the oldest
	if st := ra.Stats(); st.Evicted != 1 || ra.Pending() != 2 {
		t.Fatalf("after a third frame: %+v, pending %d", st, ra.Pending())
	}
	// Frame 1's last piece now starts a frame that cannot complete.
	if n, _ := ra.Add(Header{Kind: KindFrame, Total: 100, ID: 1, Offset: 48, Len: 52}, make([]byte, 52), t0.Add(300*time.Millisecond), out); n != 0 {
		t.Fatal("an evicted frame completed")
	}
	// A second later, frames 2 and 3 have expired; 1's remnant has too.
	first(4, t0.Add(1500*time.Millisecond))
	if st := ra.Stats(); st.Expired != 2 || st.Evicted != 2 {
		t.Fatalf("after the timeout: %+v", st)
	}
	// A frame that arrives whole in time completes.
	if _, err := ra.Add(Header{Kind: KindFrame, Total: 100, ID: 4, Offset: 48, Len: 52}, make([]byte, 52), t0.Add(1600*time.Millisecond), out); err != nil {
		t.Fatal(err)
	}
	if ra.Stats().Reassembled != 1 {
		t.Fatal("frame 4 did not complete")
	}
}

// TestFirstPieceFloodBounded feeds a stream of first pieces of distinct
// frames, each of the largest size, as a hostile authenticated peer could:
// the Reassembler's memory stays at its bound and it keeps completing the
// real frames that arrive between them.
func TestFirstPieceFloodBounded(t *testing.T) {
	ra := NewReassembler(Options{MaxSize: MaxSize})
	bound := DefaultSlots * (MaxSize + 8*((MaxSize+7)/8/64+1))
	out := make([]byte, MaxSize)
	piece := make([]byte, 1400)
	r := rand.New(rand.NewPCG(3, 4))
	completed := 0
	for i := range 100000 {
		now := t0.Add(time.Duration(i) * time.Microsecond)
		if _, err := ra.Add(Header{Kind: KindFrame, Total: MaxSize, ID: uint32(i), Offset: 0, Len: 1400}, piece, now, out); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			f := randomFrame(r, 3000)
			for _, p := range split(KindFrame, 1<<31|uint32(i), f, 1420) {
				h, data, _ := Parse(p)
				if n, _ := ra.Add(h, data, now, out); n > 0 && bytes.Equal(out[:n], f) {
					completed++
				}
			}
		}
		if m := ra.MemoryBytes(); m > bound {
			t.Fatalf("after %d first pieces the reassembler holds %d bytes, over its bound %d", i+1, m, bound)
		}
	}
	if completed != 100 {
		t.Errorf("%d of 100 real frames completed during the flood", completed)
	}
	if st := ra.Stats(); st.Evicted < 99000 {
		t.Errorf("evictions %d", st.Evicted)
	}
	t.Logf("memory %d bytes (bound %d), stats %+v", ra.MemoryBytes(), bound, ra.Stats())
}

func TestAddDoesNotAllocate(t *testing.T) {
	ra := NewReassembler(Options{MaxSize: 1518})
	out := make([]byte, 1518)
	frame := make([]byte, 1514)
	pieces := split(KindFrame, 1, frame, 1420)
	id := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		id++
		for _, p := range pieces {
			h, data, _ := Parse(p)
			h.ID = id
			ra.Add(h, data, t0, out)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame", allocs)
	}
}

// The word-at-a-time bitmap operations agree with one bit at a time.
func TestBitmapRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		s := slot{have: make([]uint64, 5)}
		naive := make([]bool, 5*64)
		for range 1 + r.IntN(6) {
			lo := r.IntN(5 * 64)
			hi := lo + r.IntN(5*64-lo+1)
			want := 0
			for b := lo; b < hi; b++ {
				if naive[b] {
					want++
				}
			}
			if got := s.count(lo, hi); got != want {
				t.Fatalf("count(%d, %d) = %d, want %d", lo, hi, got, want)
			}
			s.mark(lo, hi)
			for b := lo; b < hi; b++ {
				naive[b] = true
			}
			for b := range naive {
				if (s.have[b/64]&(1<<(b%64)) != 0) != naive[b] {
					t.Fatalf("after mark(%d, %d): bit %d is %v", lo, hi, b, !naive[b])
				}
			}
		}
	}
}
