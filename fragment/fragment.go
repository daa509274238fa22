// Package fragment splits a frame or an IP packet that is too big for one
// datagram on the path to a peer into pieces, and puts the pieces back
// together at the other end, in bounded memory.
//
// It does no I/O and no cryptography: each piece travels in its own
// protocol.TypeFragment message, sealed with the session's keys, so what
// reaches a Reassembler is authentic and was checked against replay. A
// Reassembler still trusts nothing about the pieces themselves: it drops
// and counts duplicates, overlaps, pieces outside their frame, pieces that
// disagree with the frame they name, and frames too big for it, and it
// never holds more than Options.Slots frames at once.
//
// A fragment's plaintext is a 12-byte header and a slice of the frame:
//
//	0      kind (1: an Ethernet frame, 2: an IP packet)
//	1      reserved, zero
//	2-3    total length of the frame (big endian)
//	4-7    id: the same for every piece of one frame, another for each frame
//	8-9    offset of this piece's data in the frame (a multiple of 8)
//	10-11  length of this piece's data (a multiple of 8, but in the last piece)
//	12-    the data, then the transport's zero padding
//
// The engine sends every piece but the last at the largest size the path
// carries (see ChunkSize), so that the pieces of a frame leave as one UDP GSO
// batch, and it keeps the MSS of TCP connections below the path's limit, so
// that bulk TCP never needs fragments.
package fragment

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderSize is the size of a fragment header.
const HeaderSize = 12

// MaxSize is the largest frame a fragment header can describe.
const MaxSize = 0xffff

// Kind says what a fragmented payload is, so that a frame never reaches an
// interface that carries IP packets, nor the reverse.
type Kind uint8

// Kinds of payload.
const (
	KindFrame  Kind = 1 // an Ethernet frame (TAP mode)
	KindPacket Kind = 2 // an IP packet (TUN mode)
)

func (k Kind) String() string {
	switch k {
	case KindFrame:
		return "frame"
	case KindPacket:
		return "packet"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// Header describes one piece of a frame.
type Header struct {
	Kind   Kind
	Total  int    // length of the whole frame, 1 to MaxSize
	ID     uint32 // names the frame among those of one sender
	Offset int    // where this piece's data goes in the frame
	Len    int    // length of this piece's data
}

// Errors of Parse and Reassembler.Add; test with errors.Is.
var (
	// ErrMalformed: a header that is short, of an unknown kind, or that
	// describes a piece outside its frame or not on an 8-byte boundary.
	ErrMalformed = errors.New("fragment: malformed fragment")
	// ErrTooBig: a frame larger than the reassembler's MaxSize.
	ErrTooBig = errors.New("fragment: frame too big")
	// ErrMismatch: a piece whose kind or total length differs from those
	// of the frame with its id already being reassembled.
	ErrMismatch = errors.New("fragment: piece disagrees with its frame")
	// ErrDuplicate: a piece whose data was already received.
	ErrDuplicate = errors.New("fragment: duplicate piece")
	// ErrOverlap: a piece that covers part of the data already received.
	ErrOverlap = errors.New("fragment: overlapping piece")
)

// Wrapped once here, so that returning them does not allocate.
var (
	errShort     = fmt.Errorf("%w: shorter than its header", ErrMalformed)
	errKind      = fmt.Errorf("%w: unknown kind", ErrMalformed)
	errReserved  = fmt.Errorf("%w: reserved byte set", ErrMalformed)
	errEmpty     = fmt.Errorf("%w: no data or an empty frame", ErrMalformed)
	errRange     = fmt.Errorf("%w: piece beyond the end of its frame", ErrMalformed)
	errAlign     = fmt.Errorf("%w: piece not on an 8-byte boundary", ErrMalformed)
	errTruncated = fmt.Errorf("%w: less data than the header says", ErrMalformed)
)

// Put writes h into b[:HeaderSize]. h must be valid (see Parse); Put panics
// if b is shorter than HeaderSize.
func (h Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	b[0], b[1] = byte(h.Kind), 0
	binary.BigEndian.PutUint16(b[2:], uint16(h.Total))
	binary.BigEndian.PutUint32(b[4:], h.ID)
	binary.BigEndian.PutUint16(b[8:], uint16(h.Offset))
	binary.BigEndian.PutUint16(b[10:], uint16(h.Len))
}

// Parse reads the header at the start of a fragment's plaintext and returns
// it with the piece's data (a subslice of plain; what follows it is
// padding). It checks the header on its own: a known kind, a piece of at
// least one byte inside a frame of at least one byte, its offset a multiple
// of 8 and its length too unless it ends the frame. It does not allocate.
func Parse(plain []byte) (Header, []byte, error) {
	if len(plain) < HeaderSize {
		return Header{}, nil, errShort
	}
	h := Header{
		Kind:   Kind(plain[0]),
		Total:  int(binary.BigEndian.Uint16(plain[2:])),
		ID:     binary.BigEndian.Uint32(plain[4:]),
		Offset: int(binary.BigEndian.Uint16(plain[8:])),
		Len:    int(binary.BigEndian.Uint16(plain[10:])),
	}
	switch {
	case h.Kind != KindFrame && h.Kind != KindPacket:
		return h, nil, errKind
	case plain[1] != 0:
		return h, nil, errReserved
	case h.Total == 0 || h.Len == 0:
		return h, nil, errEmpty
	case h.Offset+h.Len > h.Total:
		return h, nil, errRange
	case h.Offset%8 != 0 || h.Len%8 != 0 && h.Offset+h.Len != h.Total:
		return h, nil, errAlign
	case HeaderSize+h.Len > len(plain):
		return h, nil, errTruncated
	}
	return h, plain[HeaderSize : HeaderSize+h.Len], nil
}

// ChunkSize returns how much of a frame each piece but the last carries when
// a piece's plaintext (header and data) may be at most maxPlain bytes: the
// largest multiple of 8 that fits, or 0 if not even 8 bytes fit.
func ChunkSize(maxPlain int) int {
	n := (maxPlain - HeaderSize) &^ 7
	if n < 8 {
		return 0
	}
	return min(n, MaxSize&^7)
}

// Count returns how many pieces a frame of total bytes needs with pieces of
// chunk bytes (see ChunkSize).
func Count(total, chunk int) int {
	if chunk <= 0 {
		return 0
	}
	return (total + chunk - 1) / chunk
}
