package fragment

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzReassemble feeds a Reassembler a sequence of pieces made from the
// input: each is a 2-byte length, then that many bytes given to Parse and,
// if it parses, to Add, at a clock the next 2 bytes advance (in ms). It
// checks that nothing panics, that the memory and the frames pending stay
// within their bounds, and that a completed frame has the length its header
// said. TestReassembleShuffled checks the bytes of genuine frames.
func FuzzReassemble(f *testing.F) {
	mk := func(pieces ...[]byte) []byte {
		var b []byte
		for _, p := range pieces {
			b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
			b = append(b, p...)
			b = append(b, 0, 1)
		}
		return b
	}
	frame := bytes.Repeat([]byte("tapwire!"), 40)
	whole := split(KindFrame, 1, frame, 100)
	f.Add(mk(whole...))
	f.Add(mk(whole[2], whole[0], whole[0], whole[1]))
	f.Add(mk(split(KindPacket, 9, frame[:13], 100)...))
	f.Add(mk(whole[0][:5], whole[1][:HeaderSize+3]))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxSize = 2000
		ra := NewReassembler(Options{Slots: 3, Timeout: 50 * time.Millisecond, MaxSize: maxSize})
		bound := 3 * (maxSize + 8*((maxSize+7)/8/64+1))
		out := make([]byte, maxSize)
		now := t0
		for len(data) >= 2 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) {
				n = len(data)
			}
			p := data[:n]
			data = data[n:]
			if len(data) >= 2 {
				now = now.Add(time.Duration(binary.BigEndian.Uint16(data)) * time.Millisecond)
				data = data[2:]
			}
			h, d, err := Parse(p)
			if err != nil {
				continue
			}
			if len(d) != h.Len || h.Offset+h.Len > h.Total {
				t.Fatalf("Parse accepted %+v with %d bytes", h, len(d))
			}
			got, err := ra.Add(h, d, now, out)
			if err != nil && got != 0 {
				t.Fatal("an error and a frame")
			}
			if got != 0 && got != h.Total {
				t.Fatalf("completed %d bytes of a %d-byte frame", got, h.Total)
			}
			if m := ra.MemoryBytes(); m > bound {
				t.Fatalf("memory %d over the bound %d", m, bound)
			}
			if ra.Pending() > 3 {
				t.Fatalf("%d frames pending with 3 slots", ra.Pending())
			}
		}
	})
}
