package packet

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// refSum is the textbook RFC 1071 sum: 16-bit words, one byte pair at a
// time, carries folded at the end.
func refSum(b []byte, initial uint32) uint32 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint32(s)
}

func refChecksum(b []byte, initial uint32) uint16 {
	return ^uint16(refSum(b, initial))
}

func TestSumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	backing := make([]byte, 200+8)
	for iter := 0; iter < 20; iter++ {
		for i := range backing {
			backing[i] = byte(rng.Uint32())
		}
		// Include runs of 0xff, where carries are most frequent.
		if iter%4 == 1 {
			for i := range backing {
				backing[i] = 0xff
			}
		}
		if iter%4 == 2 {
			for i := range backing {
				backing[i] = 0
			}
		}
		for off := 0; off < 8; off++ {
			for n := 0; n <= 200; n++ {
				b := backing[off : off+n]
				for _, initial := range []uint32{0, 1, 0xffff, 0x1234, rng.Uint32(), 0xffffffff} {
					got, want := Sum(b, initial), refSum(b, initial)
					if got != want {
						t.Fatalf("Sum(len %d, off %d, initial %#x) = %#x, want %#x", n, off, initial, got, want)
					}
					if g, w := Checksum(b, initial), refChecksum(b, initial); g != w {
						t.Fatalf("Checksum(len %d, off %d, initial %#x) = %#x, want %#x", n, off, initial, g, w)
					}
				}
			}
		}
	}
}

func TestSumLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 65535+7)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for _, n := range []int{1500, 9000, 65535} {
		for off := 0; off < 8; off++ {
			if got, want := Sum(b[off:off+n], 0), refSum(b[off:off+n], 0); got != want {
				t.Errorf("Sum(len %d, off %d) = %#x, want %#x", n, off, got, want)
			}
		}
	}
	for i := range b {
		b[i] = 0xff
	}
	if got, want := Sum(b, 0xffffffff), refSum(b, 0xffffffff); got != want {
		t.Errorf("Sum(all ones) = %#x, want %#x", got, want)
	}
}

func TestSumChained(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 301)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	want := refSum(b, 0)
	for split := 0; split <= len(b); split += 2 {
		if got := Sum(b[split:], Sum(b[:split], 0)); got != want {
			t.Fatalf("split at %d: %#x, want %#x", split, got, want)
		}
	}
}

func TestFoldFinish(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		fold uint16
	}{
		{0, 0},
		{1, 1},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1fffe, 0xffff},
		{0xffffffff, 0xffff},
		{0x12345678, 0x68ac},
	} {
		if got := Fold(tc.in); got != tc.fold {
			t.Errorf("Fold(%#x) = %#x, want %#x", tc.in, got, tc.fold)
		}
		if got := Finish(tc.in); got != ^tc.fold {
			t.Errorf("Finish(%#x) = %#x, want %#x", tc.in, got, ^tc.fold)
		}
	}
}

// TestRFC1071Example checks the worked example of RFC 1071 section 3.
func TestRFC1071Example(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Sum(b, 0); got != 0xddf2 {
		t.Fatalf("Sum = %#x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != 0x220d {
		t.Fatalf("Checksum = %#x, want 0x220d", got)
	}
}

func TestIPv4HeaderChecksum(t *testing.T) {
	// A real IPv4 header (from Wikipedia's checksum example) with its
	// checksum 0xb861 in place.
	h := []byte{
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	}
	if got := Checksum(h, 0); got != 0 {
		t.Fatalf("Checksum over valid header = %#x, want 0", got)
	}
	h[10], h[11] = 0, 0
	if got := Checksum(h, 0); got != 0xb861 {
		t.Fatalf("Checksum = %#x, want 0xb861", got)
	}
}

// refPseudoHeader builds the pseudo-header bytes literally.
func refPseudoHeader(proto uint8, src, dst []byte, length int) []byte {
	var p []byte
	p = append(p, src...)
	p = append(p, dst...)
	if len(src) == 4 {
		p = append(p, 0, proto)
		p = binary.BigEndian.AppendUint16(p, uint16(length))
	} else {
		p = binary.BigEndian.AppendUint32(p, uint32(length))
		p = append(p, 0, 0, 0, proto)
	}
	return p
}

func TestPseudoHeaderSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 2000; i++ {
		for _, alen := range []int{4, 16} {
			src := make([]byte, alen)
			dst := make([]byte, alen)
			for j := range src {
				src[j] = byte(rng.Uint32())
				dst[j] = byte(rng.Uint32())
			}
			if i%10 == 0 {
				for j := range src {
					src[j], dst[j] = 0xff, 0xff
				}
			}
			proto := uint8(rng.Uint32())
			length := rng.IntN(65536)
			if alen == 16 && i%3 == 0 {
				length = int(rng.Uint32()) // jumbogram lengths
			}
			want := refSum(refPseudoHeader(proto, src, dst, length), 0)
			if got := PseudoHeaderSum(proto, src, dst, length); got != want {
				t.Fatalf("PseudoHeaderSum(%d, %x, %x, %d) = %#x, want %#x", proto, src, dst, length, got, want)
			}
		}
	}
}

func TestIPVersionEtherType(t *testing.T) {
	if IPVersion(nil) != 0 || IPVersion([]byte{0x45}) != 4 || IPVersion([]byte{0x60, 0}) != 6 {
		t.Error("IPVersion")
	}
	f := make([]byte, 14)
	f[12], f[13] = 0x86, 0xdd
	if EtherType(f) != EtherTypeIPv6 || EtherType(f[:13]) != 0 {
		t.Error("EtherType")
	}
}

func TestNoAllocs(t *testing.T) {
	b := make([]byte, 1500)
	src, dst := make([]byte, 16), make([]byte, 16)
	var sink uint16
	if n := testing.AllocsPerRun(100, func() {
		sink += Checksum(b, PseudoHeaderSum(ProtoICMPv6, src, dst, len(b)))
	}); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
	_ = sink
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{0xff}, uint32(0xffffffff))
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, initial uint32) {
		if got, want := Sum(b, initial), refSum(b, initial); got != want {
			t.Fatalf("Sum = %#x, want %#x", got, want)
		}
		if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
			t.Fatalf("Checksum = %#x, want %#x", got, want)
		}
		// Chaining at an even split must not change the result.
		split := len(b) / 2 &^ 1
		if got, want := Sum(b[split:], Sum(b[:split], initial)), refSum(b, initial); got != want {
			t.Fatalf("chained Sum = %#x, want %#x", got, want)
		}
		// Storing the checksum makes the data verify.
		if len(b) >= 2 && len(b)%2 == 0 {
			c := append([]byte(nil), b...)
			c[0], c[1] = 0, 0
			binary.BigEndian.PutUint16(c, Checksum(c, initial))
			if v := Checksum(c, initial); v != 0 {
				t.Fatalf("checksum does not verify: %#x", v)
			}
		}
	})
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500, 65535} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var sink uint16
			for b.Loop() {
				sink += Checksum(buf, 0)
			}
			_ = sink
		})
	}
}

func BenchmarkReference(b *testing.B) {
	for _, n := range []int{64, 1500, 65535} {
		buf := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var sink uint16
			for b.Loop() {
				sink += refChecksum(buf, 0)
			}
			_ = sink
		})
	}
}
