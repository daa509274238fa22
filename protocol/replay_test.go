package protocol

import (
	"math/rand/v2"
	"testing"
)

// replayModel is the reference of ReplayWindow's rule, kept the simple way:
// every counter ever accepted in a set, and the highest one.
type replayModel struct {
	seen map[uint64]bool
	last uint64
}

func newReplayModel() *replayModel { return &replayModel{seen: map[uint64]bool{}} }

func (m *replayModel) check(c uint64) bool {
	if c >= RejectAfterMessages || m.seen[c] {
		return false
	}
	if c < m.last && m.last-c > ReplayWindowSize {
		return false
	}
	m.seen[c] = true
	m.last = max(m.last, c)
	return true
}

// replayAgainstModel feeds seq to a window and the model, failing on the
// first difference, and returns how many were accepted.
func replayAgainstModel(t *testing.T, name string, seq []uint64) int {
	t.Helper()
	var w ReplayWindow
	m := newReplayModel()
	accepted := 0
	for i, c := range seq {
		got, want := w.Check(c), m.check(c)
		if got != want {
			t.Fatalf("%s: step %d: Check(%d) = %v, model says %v (highest %d)", name, i, c, got, want, m.last)
		}
		if got {
			accepted++
		}
	}
	return accepted
}

func TestReplayWindowSize(t *testing.T) {
	if ReplayWindowSize < 8192 {
		t.Fatalf("window of %d, want at least 8192", ReplayWindowSize)
	}
}

func TestReplayWindowAdversarial(t *testing.T) {
	W := uint64(ReplayWindowSize)
	seqs := map[string][]uint64{}

	// In order, then every one again.
	var inOrder []uint64
	for c := range uint64(3 * W) {
		inOrder = append(inOrder, c)
	}
	seqs["in order, then replayed"] = append(inOrder, inOrder...)

	// The highest first, then the whole window backwards: W+1 reorderings.
	rev := []uint64{W}
	for c := int64(W) - 1; c >= 0; c-- {
		rev = append(rev, uint64(c))
	}
	seqs["full window backwards"] = rev

	// The edges: exactly W behind is fresh, W+1 behind is not.
	seqs["edges"] = []uint64{10 * W, 9 * W, 9*W - 1, 10*W - W, 10*W + 1, 9*W + 1, 9 * W, 10 * W, 10*W - 1}

	// Far ahead, then far behind and things in between.
	seqs["jumps"] = []uint64{0, 1, 1 << 40, 1, 2, 1<<40 - 1, 1<<40 - W, 1<<40 - W - 1, 1 << 41, 1<<40 + 5, 1 << 41, 3}

	// Jumps of exactly one ring, and around block boundaries.
	var blocks []uint64
	for k := range uint64(20) {
		base := k * (W + 64)
		blocks = append(blocks, base, base+63, base+64, base+65, base-1, base-64, base-W, base)
	}
	seqs["ring jumps"] = blocks

	// The limit.
	seqs["limit"] = []uint64{RejectAfterMessages - 2, RejectAfterMessages - 1, RejectAfterMessages, RejectAfterMessages + 1, 1<<64 - 1, RejectAfterMessages - 1, RejectAfterMessages - 3, RejectAfterMessages - 2 - W}

	// Interleaved halves: evens ascending then odds descending.
	var inter []uint64
	for c := uint64(0); c < 2*W; c += 2 {
		inter = append(inter, c)
	}
	for c := int64(2*W - 1); c >= 0; c -= 2 {
		inter = append(inter, uint64(c))
	}
	seqs["interleaved"] = inter

	for name, seq := range seqs {
		replayAgainstModel(t, name, seq)
	}

	// At least 8,192 (here the whole window) of reordering is accepted.
	if n := replayAgainstModel(t, "full window backwards", rev); n != int(W)+1 {
		t.Fatalf("full window backwards: %d accepted, want %d", n, W+1)
	}
	var w ReplayWindow
	w.Check(9000)
	for c := uint64(0); c < 9000; c++ {
		if !w.Check(c) {
			t.Fatalf("counter %d, 9000-%d behind, refused", c, c)
		}
	}
}

func TestReplayWindowRandom(t *testing.T) {
	W := uint64(ReplayWindowSize)
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		var seq []uint64
		var c uint64
		for range 20000 {
			switch r.IntN(10) {
			case 0, 1, 2, 3: // mostly ahead, a little
				c += uint64(r.IntN(8))
			case 4: // far ahead
				c += uint64(r.IntN(4 * int(W)))
			case 5, 6: // behind, in or near the window
				c -= min(c, uint64(r.IntN(int(W)+200)))
			case 7: // a duplicate of something recent
				if len(seq) > 0 {
					c = seq[len(seq)-1-r.IntN(min(len(seq), 50))]
				}
			case 8: // near the window edge
				c -= min(c, W-2+uint64(r.IntN(5)))
			case 9:
				c += 64 * uint64(r.IntN(300))
			}
			seq = append(seq, c)
		}
		replayAgainstModel(t, "random", seq)
		_ = round
	}
}

func TestReplayWindowReset(t *testing.T) {
	var w ReplayWindow
	for c := range uint64(100) {
		w.Check(c * 37)
	}
	w.Reset()
	if !w.Check(0) || !w.Check(37) || w.Check(37) {
		t.Fatal("Reset did not empty the window")
	}
}
