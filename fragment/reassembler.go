package fragment

import (
	"fmt"
	"math/bits"
	"time"
)

// Defaults of Options.
const (
	// DefaultSlots is how many frames a Reassembler puts together at once
	// unless told otherwise: enough for a few frames whose pieces
	// interleave, few enough that a peer sending only first pieces holds
	// little memory.
	DefaultSlots = 8
	// DefaultTimeout is how long an incomplete frame waits for its
	// missing pieces: the pieces of a frame leave together, so anything
	// later than this was lost.
	DefaultTimeout = time.Second
)

// Options configure a Reassembler.
type Options struct {
	Slots   int           // frames in reassembly at once (0: DefaultSlots)
	Timeout time.Duration // an incomplete frame is dropped this long after its first piece (0: DefaultTimeout)
	MaxSize int           // largest frame accepted, 1 to MaxSize (0: MaxSize)
}

// Stats count what a Reassembler did with the pieces it was given.
type Stats struct {
	Reassembled uint64 // frames completed
	Duplicate   uint64 // pieces dropped: their data was already there
	Overlap     uint64 // pieces dropped: they overlap data already there
	TooBig      uint64 // pieces dropped: their frame is over MaxSize
	Mismatch    uint64 // pieces dropped: kind or length differ from their frame's
	Expired     uint64 // incomplete frames dropped after Timeout
	Evicted     uint64 // incomplete frames dropped to make room for a newer frame
}

// Reassembler puts frames back together from their pieces. Its memory is
// bounded: at most Slots frames of at most MaxSize bytes, each buffer
// allocated when first needed and reused after. It is not safe for
// concurrent use; the engine keeps one per peer, behind a lock.
type Reassembler struct {
	opts  Options
	slots []slot
	stats Stats
	// done holds the ids of the frames completed last (a ring), so that a
	// late copy of one of their pieces is a duplicate, not a new frame.
	done  []uint32
	ndone int
}

type slot struct {
	used  bool
	id    uint32
	kind  Kind
	total int
	got   int       // bytes received
	first time.Time // when the first piece arrived
	buf   []byte    // MaxSize bytes, allocated on first use
	have  []uint64  // one bit per 8-byte block of buf received
}

// NewReassembler returns a Reassembler with opts (zero fields take the
// defaults).
func NewReassembler(opts Options) *Reassembler {
	if opts.Slots <= 0 {
		opts.Slots = DefaultSlots
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxSize <= 0 || opts.MaxSize > MaxSize {
		opts.MaxSize = MaxSize
	}
	return &Reassembler{opts: opts, slots: make([]slot, opts.Slots), done: make([]uint32, 2*opts.Slots)}
}

// Stats returns what the Reassembler counted so far.
func (r *Reassembler) Stats() Stats { return r.stats }

// MemoryBytes returns the bytes the Reassembler holds for frame data: at
// most Slots × (MaxSize + MaxSize/64 + 8).
func (r *Reassembler) MemoryBytes() int {
	n := 0
	for i := range r.slots {
		n += cap(r.slots[i].buf) + 8*cap(r.slots[i].have)
	}
	return n
}

// Pending returns how many frames are incomplete.
func (r *Reassembler) Pending() int {
	n := 0
	for i := range r.slots {
		if r.slots[i].used {
			n++
		}
	}
	return n
}

var (
	errTooBig   = fmt.Errorf("%w for the reassembler", ErrTooBig)
	errMismatch = fmt.Errorf("%w (kind or length)", ErrMismatch)
	errShortOut = fmt.Errorf("fragment: output buffer shorter than the frame")
)

// Add takes one piece, h and data as Parse returned them, received at now.
// When the piece completes its frame, Add copies the frame into out and
// returns its length (out must hold h.Total bytes); otherwise it returns 0.
// A piece that cannot be used is dropped, counted in Stats, and reported
// as an error (ErrTooBig, ErrMismatch, ErrDuplicate, ErrOverlap), never
// kept. Add does not allocate but for a slot's first use.
func (r *Reassembler) Add(h Header, data []byte, now time.Time, out []byte) (int, error) {
	if h.Total > r.opts.MaxSize {
		r.stats.TooBig++
		return 0, errTooBig
	}
	if len(out) < h.Total {
		return 0, errShortOut
	}
	s := r.slotFor(h, now)
	if s == nil {
		r.stats.Duplicate++
		return 0, ErrDuplicate
	}
	if s.kind != h.Kind || s.total != h.Total {
		r.stats.Mismatch++
		return 0, errMismatch
	}
	lo, hi := h.Offset/8, (h.Offset+h.Len+7)/8
	switch set := s.count(lo, hi); {
	case set == hi-lo:
		r.stats.Duplicate++
		return 0, ErrDuplicate
	case set > 0:
		r.stats.Overlap++
		return 0, ErrOverlap
	}
	s.mark(lo, hi)
	copy(s.buf[h.Offset:], data[:h.Len])
	s.got += h.Len
	if s.got < s.total {
		return 0, nil
	}
	n := copy(out, s.buf[:s.total])
	r.done[r.ndone%len(r.done)] = s.id
	r.ndone++
	r.free(s)
	r.stats.Reassembled++
	return n, nil
}

// slotFor returns the slot of h's frame, taking one for it if it has none:
// a free slot, else one whose frame expired, else the oldest. It returns nil
// for a frame completed lately.
func (r *Reassembler) slotFor(h Header, now time.Time) *slot {
	var free, oldest *slot
	for i := range r.slots {
		s := &r.slots[i]
		if !s.used {
			if free == nil {
				free = s
			}
			continue
		}
		if now.Sub(s.first) >= r.opts.Timeout {
			r.stats.Expired++
			r.free(s)
			if free == nil {
				free = s
			}
			continue
		}
		if s.id == h.ID {
			return s
		}
		if oldest == nil || s.first.Before(oldest.first) {
			oldest = s
		}
	}
	for i := range min(r.ndone, len(r.done)) {
		if r.done[i] == h.ID {
			return nil
		}
	}
	s := free
	if s == nil {
		r.stats.Evicted++
		r.free(oldest)
		s = oldest
	}
	if s.buf == nil {
		s.buf = make([]byte, r.opts.MaxSize)
		s.have = make([]uint64, (r.opts.MaxSize+7)/8/64+1)
	}
	s.used, s.id, s.kind, s.total, s.got, s.first = true, h.ID, h.Kind, h.Total, 0, now
	return s
}

// count returns how many of the blocks lo to hi (excluded) were received,
// a word of the bitmap at a time.
func (s *slot) count(lo, hi int) int {
	n := 0
	for lo < hi {
		w, b := lo/64, lo%64
		m := ^uint64(0) << b
		if end := min(hi-lo+b, 64); end < 64 {
			m &= 1<<end - 1
		}
		n += bits.OnesCount64(s.have[w] & m)
		lo += 64 - b
	}
	return n
}

// mark records the blocks lo to hi (excluded) as received.
func (s *slot) mark(lo, hi int) {
	for lo < hi {
		w, b := lo/64, lo%64
		m := ^uint64(0) << b
		if end := min(hi-lo+b, 64); end < 64 {
			m &= 1<<end - 1
		}
		s.have[w] |= m
		lo += 64 - b
	}
}

// free empties a slot, keeping its buffers.
func (r *Reassembler) free(s *slot) {
	if s.total > 0 {
		clear(s.have[:(s.total+7)/8/64+1])
	}
	s.used, s.got, s.total = false, 0, 0
}
