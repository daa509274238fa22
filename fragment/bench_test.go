package fragment

import "testing"

// BenchmarkReassemble puts a full-size frame (1514 bytes) back together from
// the two pieces a 1500-byte IPv4 path makes of it.
func BenchmarkReassemble(b *testing.B) {
	ra := NewReassembler(Options{MaxSize: 1518})
	out := make([]byte, 1518)
	pieces := split(KindFrame, 1, make([]byte, 1514), 1438)
	hs := make([]Header, len(pieces))
	data := make([][]byte, len(pieces))
	for i, p := range pieces {
		hs[i], data[i], _ = Parse(p)
	}
	b.SetBytes(1514)
	b.ReportAllocs()
	for i := range b.N {
		for j := range hs {
			hs[j].ID = uint32(i)
			if _, err := ra.Add(hs[j], data[j], t0, out); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkParse reads one piece's header.
func BenchmarkParse(b *testing.B) {
	p := split(KindFrame, 1, make([]byte, 1514), 1438)[0]
	b.ReportAllocs()
	for range b.N {
		if _, _, err := Parse(p); err != nil {
			b.Fatal(err)
		}
	}
}
