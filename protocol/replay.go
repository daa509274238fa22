package protocol

const (
	replayBlockBits  = 64  // bits per ring block
	replayRingBlocks = 256 // blocks in the ring; a power of two

	// ReplayWindowSize is how far behind the highest counter received a
	// counter may be and still be accepted (once): 16,320 messages. That
	// is twice wireguard-go's 8,128 (RFC 6479 with 128 blocks), so more
	// reordering is tolerated; the window is a receiver's own choice and
	// does not affect interoperability.
	ReplayWindowSize = (replayRingBlocks - 1) * replayBlockBits
)

// ReplayWindow is the sliding window of received transport counters
// (whitepaper section 5.4.6), kept as RFC 6479's ring of bit blocks: a
// counter is fresh if it was not seen before, is below RejectAfterMessages,
// and is at most ReplayWindowSize behind the highest counter seen. The zero
// value is an empty window. It is not safe for concurrent use (Keypair
// guards its window with a mutex).
type ReplayWindow struct {
	last uint64 // highest counter accepted (0 when none)
	ring [replayRingBlocks]uint64
}

// Reset empties the window.
func (w *ReplayWindow) Reset() { *w = ReplayWindow{} }

// Check reports whether counter is fresh and, if it is, marks it seen.
// Only authenticated counters may be checked: a forged counter far ahead
// would move the window past every genuine one.
func (w *ReplayWindow) Check(counter uint64) bool {
	if counter >= RejectAfterMessages {
		return false
	}
	block := counter / replayBlockBits
	if counter > w.last {
		// Move the window forward: clear the blocks it enters (all of
		// them, at most, when it jumps further than the ring).
		current := w.last / replayBlockBits
		diff := min(block-current, replayRingBlocks)
		for i := current + 1; i <= current+diff; i++ {
			w.ring[i%replayRingBlocks] = 0
		}
		w.last = counter
	} else if w.last-counter > ReplayWindowSize {
		return false
	}
	bit := uint64(1) << (counter % replayBlockBits)
	b := &w.ring[block%replayRingBlocks]
	if *b&bit != 0 {
		return false
	}
	*b |= bit
	return true
}
