package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tapwire/tapwire/tun"
)

// FuzzOpenFrame feeds openFrame, which parses the decrypted plaintext of a
// frame message from a peer (length, frame, padding), arbitrary bytes: it
// never panics, and returns either nothing (counted) or exactly the frame
// the length names, of a size the tap can carry, changed at most in a TCP
// SYN's MSS and checksum.
func FuzzOpenFrame(f *testing.F) {
	syn := []byte{
		0x02, 0, 0x5e, 0, 0x53, 2, 0x02, 0, 0x5e, 0, 0x53, 1, 0x08, 0x00, // Ethernet, IPv4
		0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2,
		0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0,
		2, 4, 0x05, 0xb4, // MSS 1460
	}
	framed := func(frame []byte, pad int) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(frame)))
		return append(append(b, frame...), make([]byte, pad)...)
	}
	f.Add(framed(syn, 6))
	f.Add(framed(make([]byte, 14), 0))
	f.Add(framed(make([]byte, 13), 3))
	f.Add(framed(make([]byte, 1419), 0))
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, plain []byte) {
		d := &Device{mode: tun.ModeTAP, maxFrame: 1418, mss4: 1360, mss6: 1340}
		orig := append([]byte(nil), plain...)
		frame := d.openFrame(plain, &Peer{dev: d})
		if frame == nil {
			if d.stats.BadPacket.Load()+d.stats.Malformed.Load()+d.stats.TooBig.Load() != 1 {
				t.Fatalf("a refused frame was not counted once: %+v", &d.stats)
			}
			return
		}
		n := int(binary.BigEndian.Uint16(orig))
		if len(frame) != n || n < 14 || n > d.maxFrame || &frame[0] != &plain[2] {
			t.Fatalf("frame of %d bytes at the wrong place, length field %d", len(frame), n)
		}
		if diff := countDiff(orig[2:2+n], frame); diff > 4 || diff > 0 && d.stats.MSSClamped.Load() != 1 {
			t.Fatalf("%d bytes of the frame changed (clamped %d)", diff, d.stats.MSSClamped.Load())
		}
		if !bytes.Equal(plain[2+n:], orig[2+n:]) {
			t.Fatal("bytes after the frame changed")
		}
	})
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
