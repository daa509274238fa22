package route

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// packet returns a minimal IPv4 or IPv6 header from src to dst.
func packet(src, dst netip.Addr) []byte {
	if src.Is4() {
		b := make([]byte, 20)
		b[0] = 0x45
		s, d := src.As4(), dst.As4()
		copy(b[12:16], s[:])
		copy(b[16:20], d[:])
		return b
	}
	b := make([]byte, 40)
	b[0] = 0x60
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return b
}

func TestLookupTable(t *testing.T) {
	var tab Table[string]
	for _, e := range []struct{ p, v string }{
		{"0.0.0.0/0", "default4"},
		{"10.0.0.0/8", "ten"},
		{"10.1.0.0/16", "ten-one"},
		{"10.1.2.3/32", "host"},
		{"10.1.2.0/24", "ten-one-two"},
		{"192.168.1.77/24", "lan"}, // host bits cleared: 192.168.1.0/24
		{"::/0", "default6"},
		{"2001:db8::/32", "doc"},
		{"2001:db8:1::/48", "doc1"},
		{"2001:db8:1::1/128", "host6"},
		{"fd00::/8", "ula"},
		{"::ffff:0:0/96", "mapped"},
		{"::ffff:10.1.2.3/128", "mapped-host"},
	} {
		tab.Insert(pfx(e.p), e.v)
	}
	if got := tab.Len(); got != 13 {
		t.Fatalf("Len = %d, want 13", got)
	}
	for _, c := range []struct {
		a, want string
	}{
		{"10.1.2.3", "host"},
		{"10.1.2.4", "ten-one-two"},
		{"10.1.3.1", "ten-one"},
		{"10.2.0.1", "ten"},
		{"11.0.0.1", "default4"},
		{"0.0.0.0", "default4"},
		{"255.255.255.255", "default4"},
		{"192.168.1.1", "lan"},
		{"192.168.2.1", "default4"},
		{"2001:db8:1::1", "host6"},
		{"2001:db8:1::2", "doc1"},
		{"2001:db8:2::1", "doc"},
		{"fd12:3456::1", "ula"},
		{"fe80::1", "default6"},
		{"fe80::1%eth0", "default6"}, // zone ignored
		{"2001:db8:1::1%eth0", "host6"},
		{"::", "default6"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "default6"},
		// IPv4-mapped IPv6 addresses are IPv6: never an IPv4 prefix.
		{"::ffff:10.1.2.3", "mapped-host"},
		{"::ffff:10.1.2.4", "mapped"},
		{"::ffff:192.168.1.1", "mapped"},
	} {
		a := addr(c.a)
		got, ok := tab.Lookup(a)
		if !ok || got != c.want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", c.a, got, ok, c.want)
		}
		if a.Zone() != "" {
			continue
		}
		src := addr("10.9.9.9")
		if a.Is6() {
			src = addr("2001:db8:9::9")
		}
		if got, ok := tab.LookupDst(packet(src, a)); !ok || got != c.want {
			t.Errorf("LookupDst(->%s) = %q, %v; want %q", c.a, got, ok, c.want)
		}
		if got, ok := tab.LookupSrc(packet(a, src)); !ok || got != c.want {
			t.Errorf("LookupSrc(%s->) = %q, %v; want %q", c.a, got, ok, c.want)
		}
	}

	if got := tab.Prefixes("lan"); !slices.Equal(got, []netip.Prefix{pfx("192.168.1.0/24")}) {
		t.Errorf("Prefixes(lan) = %v", got)
	}
	var all []netip.Prefix
	for p := range tab.All() {
		all = append(all, p)
	}
	if !slices.IsSortedFunc(all, netip.Prefix.Compare) || len(all) != tab.Len() {
		t.Errorf("All not sorted or incomplete: %v", all)
	}
}

func TestNoMatch(t *testing.T) {
	var tab Table[int]
	if _, ok := tab.Lookup(addr("10.0.0.1")); ok {
		t.Error("zero table matched")
	}
	if _, ok := tab.LookupDst(packet(addr("1.1.1.1"), addr("10.0.0.1"))); ok {
		t.Error("zero table matched a packet")
	}
	if tab.Len() != 0 || tab.Prefixes(0) != nil || tab.Remove(pfx("10.0.0.0/8")) {
		t.Error("zero table not empty")
	}
	tab.RemoveValue(0)

	tab.Insert(pfx("10.0.0.0/8"), 1)
	tab.Insert(pfx("::ffff:0:0/96"), 2)
	tab.Insert(pfx("2001:db8::/32"), 3)
	for _, s := range []string{"11.0.0.1", "9.255.255.255", "2001:db9::1", "::1", "fe80::1"} {
		if v, ok := tab.Lookup(addr(s)); ok {
			t.Errorf("Lookup(%s) = %d, want no match", s, v)
		}
	}
	if v, ok := tab.Lookup(netip.Addr{}); ok {
		t.Errorf("Lookup(invalid) = %d", v)
	}
	// An IPv4 prefix does not match an IPv4-mapped address, nor the reverse.
	var t4 Table[int]
	t4.Insert(pfx("10.0.0.0/8"), 1)
	t4.Insert(pfx("0.0.0.0/0"), 2)
	if v, ok := t4.Lookup(addr("::ffff:10.0.0.1")); ok {
		t.Errorf("IPv4 prefixes matched ::ffff:10.0.0.1 (%d)", v)
	}
	var t6 Table[int]
	t6.Insert(pfx("::ffff:10.0.0.0/104"), 1)
	if v, ok := t6.Lookup(addr("10.0.0.1")); ok {
		t.Errorf("::ffff:10.0.0.0/104 matched 10.0.0.1 (%d)", v)
	}

	// Packets: short, other versions, empty.
	p4 := packet(addr("10.0.0.1"), addr("10.0.0.2"))
	p6 := packet(addr("2001:db8::1"), addr("2001:db8::2"))
	for name, pkt := range map[string][]byte{
		"nil":        nil,
		"empty":      {},
		"short v4":   p4[:19],
		"short v6":   p6[:39],
		"version 5":  append([]byte{0x50}, p4[1:]...),
		"version 0":  make([]byte, 40),
		"one byte 4": {0x45},
	} {
		if v, ok := tab.LookupDst(pkt); ok {
			t.Errorf("LookupDst(%s) = %d, want no match", name, v)
		}
		if v, ok := tab.LookupSrc(pkt); ok {
			t.Errorf("LookupSrc(%s) = %d, want no match", name, v)
		}
	}
	if _, ok := tab.LookupDst(p4); !ok {
		t.Error("LookupDst of a 20-byte IPv4 header: no match")
	}
	if v, ok := tab.LookupDst(p6); !ok || v != 3 {
		t.Errorf("LookupDst of a 40-byte IPv6 header = %d, %v", v, ok)
	}

	// Invalid prefixes are ignored.
	tab.Insert(netip.Prefix{}, 9)
	if tab.Remove(netip.Prefix{}) || tab.Len() != 3 {
		t.Error("invalid prefix changed the table")
	}
}

func TestExtremes(t *testing.T) {
	var tab Table[int]
	tab.Insert(pfx("0.0.0.0/0"), 1)
	tab.Insert(pfx("255.255.255.255/32"), 2)
	tab.Insert(pfx("0.0.0.0/32"), 3)
	tab.Insert(pfx("::/0"), 4)
	tab.Insert(pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 5)
	tab.Insert(pfx("::/128"), 6)
	tab.Insert(pfx("8000::/1"), 7)
	tab.Insert(pfx("0:0:0:1::/64"), 8)
	tab.Insert(pfx("0:0:0:1::/65"), 9)
	for s, want := range map[string]int{
		"255.255.255.255": 2,
		"255.255.255.254": 1,
		"0.0.0.0":         3,
		"0.0.0.1":         1,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 5,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe": 7,
		"::":                    6,
		"::1":                   4,
		"0:0:0:1::1":            9,
		"0:0:0:1:8000::1":       8,
		"0:0:0:1:7fff:ffff::":   9,
		"7fff:ffff:ffff:ffff::": 4,
	} {
		if v, ok := tab.Lookup(addr(s)); !ok || v != want {
			t.Errorf("Lookup(%s) = %d, %v; want %d", s, v, ok, want)
		}
	}
}

func TestOwnerMovesAndRemove(t *testing.T) {
	var tab Table[string]
	tab.Insert(pfx("10.0.0.0/24"), "a")
	tab.Insert(pfx("10.0.1.0/24"), "a")
	tab.Insert(pfx("fd00::/64"), "a")
	tab.Insert(pfx("10.0.0.0/24"), "b") // moves to the last peer that claims it
	tab.Insert(pfx("10.0.0.0/16"), "b")
	if tab.Len() != 4 {
		t.Fatalf("Len = %d, want 4", tab.Len())
	}
	if v, _ := tab.Lookup(addr("10.0.0.1")); v != "b" {
		t.Errorf("10.0.0.1 -> %q, want b", v)
	}
	if got, want := tab.Prefixes("a"), []netip.Prefix{pfx("10.0.1.0/24"), pfx("fd00::/64")}; !slices.Equal(got, want) {
		t.Errorf("Prefixes(a) = %v, want %v", got, want)
	}
	if got, want := tab.Prefixes("b"), []netip.Prefix{pfx("10.0.0.0/16"), pfx("10.0.0.0/24")}; !slices.Equal(got, want) {
		t.Errorf("Prefixes(b) = %v, want %v", got, want)
	}
	if tab.Remove(pfx("10.0.2.0/24")) || tab.Remove(pfx("10.0.0.0/15")) || tab.Remove(pfx("10.0.0.0/25")) {
		t.Error("Remove of an absent prefix reported true")
	}
	if !tab.Remove(pfx("10.0.0.77/24")) { // masked like Insert
		t.Error("Remove(10.0.0.0/24) = false")
	}
	if v, _ := tab.Lookup(addr("10.0.0.1")); v != "b" { // now via /16
		t.Errorf("after Remove 10.0.0.1 -> %q, want b", v)
	}
	tab.RemoveValue("a")
	if tab.Len() != 1 || tab.Prefixes("a") != nil {
		t.Errorf("after RemoveValue(a): Len %d, Prefixes(a) %v", tab.Len(), tab.Prefixes("a"))
	}
	if _, ok := tab.Lookup(addr("fd00::1")); ok {
		t.Error("fd00::1 still matches after RemoveValue(a)")
	}
	tab.RemoveValue("b")
	if tab.Len() != 0 {
		t.Errorf("Len = %d after removing everything", tab.Len())
	}
	if _, ok := tab.Lookup(addr("10.0.0.1")); ok {
		t.Error("empty table matched")
	}
}

func TestZeroAllocs(t *testing.T) {
	var tab Table[*int]
	vals := make([]int, 64)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		tab.Insert(randPrefix(r), &vals[i%len(vals)])
	}
	a4, a6 := addr("10.1.2.3"), addr("2001:db8::1")
	p4 := packet(addr("10.1.2.3"), addr("192.0.2.1"))
	p6 := packet(addr("2001:db8::1"), addr("fd00::1"))
	var sink bool
	for name, f := range map[string]func(){
		"Lookup4":    func() { _, sink = tab.Lookup(a4) },
		"Lookup6":    func() { _, sink = tab.Lookup(a6) },
		"LookupDst4": func() { _, sink = tab.LookupDst(p4) },
		"LookupSrc4": func() { _, sink = tab.LookupSrc(p4) },
		"LookupDst6": func() { _, sink = tab.LookupDst(p6) },
		"LookupSrc6": func() { _, sink = tab.LookupSrc(p6) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
	_ = sink
	// A table of a value type too.
	var ti Table[[2]uint64]
	ti.Insert(pfx("10.0.0.0/8"), [2]uint64{1, 2})
	if n := testing.AllocsPerRun(1000, func() { ti.Lookup(a4) }); n != 0 {
		t.Errorf("Table[[2]uint64].Lookup: %v allocs", n)
	}
}

// ref is the reference: a map of (masked) prefixes, looked up at every
// prefix length from the longest, so a lookup costs the same whatever the
// map holds (a linear scan made the fuzz target's work grow with the square
// of its input).
type ref map[netip.Prefix]int

func (r ref) lookup(a netip.Addr) (int, bool) {
	for bits := a.BitLen(); bits >= 0; bits-- {
		p, err := a.Prefix(bits)
		if err != nil {
			break
		}
		if v, ok := r[p]; ok {
			return v, true
		}
	}
	return 0, false
}

func (r ref) prefixes(v int) []netip.Prefix {
	var ps []netip.Prefix
	for p, pv := range r {
		if pv == v {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

// bases cluster random prefixes so that they nest and overlap.
var bases = []netip.Addr{
	addr("10.0.0.0"), addr("10.1.0.0"), addr("192.168.0.0"), addr("0.0.0.0"), addr("255.255.255.0"),
	addr("2001:db8::"), addr("2001:db8:0:1::"), addr("fd00::"), addr("::ffff:10.0.0.0"), addr("::"), addr("ffff::"),
}

// randAddr returns an address near a random base: the base with some of its
// trailing bits randomized.
func randAddr(r *rand.Rand) netip.Addr {
	b := bases[r.IntN(len(bases))]
	var k [16]byte
	if b.Is4() {
		a := b.As4()
		copy(k[:], a[:])
	} else {
		k = b.As16()
	}
	n := b.BitLen()
	keep := r.IntN(n + 1)
	for i := keep; i < n; i++ {
		if r.IntN(2) == 1 {
			k[i/8] ^= 0x80 >> (i % 8)
		}
	}
	if b.Is4() {
		return netip.AddrFrom4([4]byte(k[:4]))
	}
	return netip.AddrFrom16(k)
}

func randPrefix(r *rand.Rand) netip.Prefix {
	a := randAddr(r)
	var bits int
	switch n := a.BitLen(); r.IntN(4) {
	case 0:
		bits = r.IntN(n + 1)
	case 1:
		bits = n
	default:
		bits = n - r.IntN(n/4+1)
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// check compares the table with the reference for addrs and for the edges of
// the reference's prefixes (at most maxEdges of them, chosen at random).
func check(t *testing.T, tab *Table[int], rf ref, addrs []netip.Addr, nvals, maxEdges int) {
	t.Helper()
	probe := func(a netip.Addr) {
		t.Helper()
		wv, wok := rf.lookup(a)
		gv, gok := tab.Lookup(a)
		if gv != wv || gok != wok {
			t.Fatalf("Lookup(%s) = %d, %v; reference %d, %v", a, gv, gok, wv, wok)
		}
		other := addr("192.0.2.1")
		if a.Is6() {
			other = addr("2001:db8:ffff::1")
		}
		if gv, gok := tab.LookupDst(packet(other, a)); gv != wv || gok != wok {
			t.Fatalf("LookupDst(->%s) = %d, %v; reference %d, %v", a, gv, gok, wv, wok)
		}
		if gv, gok := tab.LookupSrc(packet(a, other)); gv != wv || gok != wok {
			t.Fatalf("LookupSrc(%s->) = %d, %v; reference %d, %v", a, gv, gok, wv, wok)
		}
	}
	for _, a := range addrs {
		probe(a)
	}
	edges := 0
	for p := range rf { // map order is random
		if edges++; edges > maxEdges {
			break
		}
		probe(p.Addr())
		probe(lastAddr(p))
		if prev := p.Addr().Prev(); prev.IsValid() {
			probe(prev)
		}
		if next := lastAddr(p).Next(); next.IsValid() {
			probe(next)
		}
	}
	if tab.Len() != len(rf) {
		t.Fatalf("Len = %d, reference %d", tab.Len(), len(rf))
	}
	for v := range nvals {
		if got, want := tab.Prefixes(v), rf.prefixes(v); !slices.Equal(got, want) {
			t.Fatalf("Prefixes(%d) = %v, reference %v", v, got, want)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := off + p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

func TestRandomAgainstReference(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			var tab Table[int]
			rf := ref{}
			const nvals = 64 // RemoveValue removes about 1/64 of the table
			addrs := make([]netip.Addr, 1000)
			for i := range addrs {
				addrs[i] = randAddr(r)
			}
			inserts, removes := 0, 0
			for round := range 5 {
				for range 2000 {
					switch op := r.IntN(100); {
					case op < 75:
						p, v := randPrefix(r), r.IntN(nvals)
						tab.Insert(p, v)
						rf[p] = v
						inserts++
					case op < 99:
						p := randPrefix(r)
						if len(rf) > 0 && r.IntN(2) == 0 { // an existing one
							for q := range rf {
								p = q
								break
							}
						}
						_, want := rf[p]
						delete(rf, p)
						if got := tab.Remove(p); got != want {
							t.Fatalf("Remove(%s) = %v, reference %v", p, got, want)
						}
						removes++
					default:
						v := r.IntN(nvals)
						tab.RemoveValue(v)
						for p, pv := range rf {
							if pv == v {
								delete(rf, p)
							}
						}
					}
				}
				check(t, &tab, rf, addrs, nvals, 400)
				t.Logf("round %d: %d prefixes in the table", round, len(rf))
			}
			t.Logf("%d inserts, %d removes", inserts, removes)
		})
	}
}

// TestConcurrent runs lookups while writers change the table. A /8 stays
// mapped to 1 throughout; writers add and remove more specific prefixes with
// values 2..9 inside it, so every lookup in the /8 must find one of 1..9.
// Run with -race.
func TestConcurrent(t *testing.T) {
	var tab Table[int]
	tab.Insert(pfx("10.0.0.0/8"), 1)
	tab.Insert(pfx("2001:db8::/32"), 1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; !stop.Load() && i < 20000; i++ {
				p4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), 0}), 9+r.IntN(24)).Masked()
				p6 := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4))}), 33+r.IntN(96)).Masked()
				switch r.IntN(3) {
				case 0:
					tab.Insert(p4, 2+r.IntN(8))
					tab.Insert(p6, 2+r.IntN(8))
				case 1:
					tab.Remove(p4)
					tab.Remove(p6)
				default:
					tab.RemoveValue(2 + r.IntN(8))
				}
			}
		})
	}
	var bad atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for i := 0; i < 50000; i++ {
				a4 := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
				a6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4)), 15: byte(r.IntN(256))})
				for _, a := range []netip.Addr{a4, a6} {
					if v, ok := tab.Lookup(a); !ok || v < 1 || v > 9 {
						bad.Add(1)
					}
				}
				if _, ok := tab.Lookup(addr("11.0.0.1")); ok {
					bad.Add(1)
				}
				_ = tab.Prefixes(1)
				_ = tab.Len()
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d inconsistent lookups", n)
	}
	if got := tab.Prefixes(1); !slices.Equal(got, []netip.Prefix{pfx("10.0.0.0/8"), pfx("2001:db8::/32")}) {
		t.Fatalf("Prefixes(1) = %v", got)
	}
}

// fuzzOps interprets data as operations on a table and the reference.
type fuzzReader struct{ b []byte }

func (f *fuzzReader) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

// addr reads a header byte (bit 0: IPv6; bits 1-5: how many address bytes
// follow, at most 4 or 16, the rest being zero) and the address bytes.
func (f *fuzzReader) addr() netip.Addr {
	h := f.byte()
	var k [16]byte
	n := min(int(h>>1)&31, 16)
	if h&1 == 0 {
		n = min(n, 4)
	}
	for i := range n {
		k[i] = f.byte()
	}
	if h&1 == 0 {
		return netip.AddrFrom4([4]byte(k[:4]))
	}
	return netip.AddrFrom16(k)
}

func (f *fuzzReader) prefix() netip.Prefix {
	a := f.addr()
	return netip.PrefixFrom(a, int(f.byte())%(a.BitLen()+1)).Masked()
}

// maxFuzzInput bounds the bytes of an input runOps reads (about a hundred
// operations; the rest is ignored). An operation's cost grows with the
// table (RemoveValue walks it, check probes every prefix's edges), and Go's
// minimizer runs an input that found new coverage once per candidate, of
// which there are O(n²) for n bytes, counting none of those runs in the
// fuzzer's execs/s until it is done: a long input stalled FuzzLookup at
// 0 execs/s for many seconds. Bytes it ignores, the minimizer cuts first.
const maxFuzzInput = 256

// runOps applies the operations in data (its first maxFuzzInput bytes) to
// a table and the reference, comparing as it goes and at the end. It
// returns how many bytes it read.
func runOps(t *testing.T, data []byte) int {
	const nvals = 4
	var tab Table[int]
	rf := ref{}
	var probes []netip.Addr
	data = data[:min(len(data), maxFuzzInput)]
	f := &fuzzReader{data}
	for len(f.b) > 0 {
		switch op := f.byte() % 5; op {
		case 0:
			p, v := f.prefix(), int(f.byte()%nvals)
			tab.Insert(p, v)
			rf[p] = v
		case 1:
			p := f.prefix()
			_, want := rf[p]
			delete(rf, p)
			if got := tab.Remove(p); got != want {
				t.Fatalf("Remove(%s) = %v, reference %v", p, got, want)
			}
		case 2:
			v := int(f.byte() % nvals)
			tab.RemoveValue(v)
			for p, pv := range rf {
				if pv == v {
					delete(rf, p)
				}
			}
		case 3, 4:
			a := f.addr()
			if op == 4 && a.Is4() {
				a = netip.AddrFrom16(a.As16()) // IPv4-mapped
			}
			probes = append(probes, a)
			wv, wok := rf.lookup(a)
			if gv, gok := tab.Lookup(a); gv != wv || gok != wok {
				t.Fatalf("Lookup(%s) = %d, %v; reference %d, %v", a, gv, gok, wv, wok)
			}
		}
	}
	check(t, &tab, rf, probes, nvals, len(rf))
	return len(data)
}

func FuzzLookup(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 8, 10, 8, 1, 3, 8, 10, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) { runOps(t, data) })
}

// TestFuzzOpsRandom feeds runOps random operation streams, so the fuzz
// target's decoder and checks are exercised by plain `go test` too.
func TestFuzzOpsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		b := make([]byte, r.IntN(400))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		runOps(t, b)
	}
}

// fuzzInserts returns about n bytes of runOps operations inserting
// distinct host prefixes (IPv4 /32 or IPv6 /128), the input whose checks
// cost the most per byte.
func fuzzInserts(n int, v6 bool) []byte {
	var b []byte
	for i := uint64(0); len(b) < n; i++ {
		if v6 {
			b = append(b, 0, 1|16<<1)
			b = binary.BigEndian.AppendUint64(b, i*0xbf58476d1ce4e5b9)
			b = binary.BigEndian.AppendUint64(b, i*0x9e3779b97f4a7c15)
			b = append(b, 128, byte(i))
		} else {
			b = append(b, 0, 4<<1)
			b = binary.BigEndian.AppendUint32(b, uint32(i*2654435761))
			b = append(b, 32, byte(i))
		}
	}
	return b
}

// FuzzLookup's work per input is bounded: a 64 KiB input is read no
// further than a 1 KiB one.
func TestFuzzInputBounded(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		short, long := runOps(t, fuzzInserts(1<<10, v6)), runOps(t, fuzzInserts(64<<10, v6))
		if long != short || long > maxFuzzInput {
			t.Errorf("IPv6 %v: runOps read %d bytes of a 1 KiB input and %d of a 64 KiB one, want both %d", v6, short, long, maxFuzzInput)
		}
	}
}

// TestSwap checks that Swap reports the owner a prefix is taken from, and
// nothing for a new prefix or one above or below an existing one.
func TestSwap(t *testing.T) {
	t.Parallel()
	var tab Table[string]
	for _, c := range []struct {
		p, v, old string
		ok        bool
	}{
		{"10.0.0.0/16", "a", "", false},
		{"10.0.0.0/24", "b", "", false}, // below a's
		{"10.0.0.0/8", "c", "", false},  // above both
		{"10.0.0.0/16", "b", "a", true}, // taken from a
		{"10.0.0.0/16", "b", "b", true}, // already b's
		{"10.0.0.7/16", "c", "b", true}, // host bits cleared
		{"fd00::/64", "a", "", false},
		{"fd00::/64", "c", "a", true},
	} {
		old, ok := tab.Swap(pfx(c.p), c.v)
		if old != c.old || ok != c.ok {
			t.Errorf("Swap(%s, %s) = %q, %v; want %q, %v", c.p, c.v, old, ok, c.old, c.ok)
		}
	}
	if n := tab.Len(); n != 4 {
		t.Errorf("Len = %d, want 4", n)
	}
	if old, ok := tab.Swap(netip.Prefix{}, "x"); ok || old != "" {
		t.Errorf("Swap(invalid) = %q, %v", old, ok)
	}
}
