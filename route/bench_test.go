package route

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

// benchTable returns a table of n random prefixes of one family, with
// lengths spread as in real allowed-IPs lists (IPv4 mostly /16../32, IPv6
// mostly /32../128), and 4096 addresses to look up: half inside inserted
// prefixes, half random.
func benchTable(n int, v6 bool) (*Table[int], []netip.Addr) {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	randAddr := func() netip.Addr {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if v6 {
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	tab := new(Table[int])
	ps := make([]netip.Prefix, 0, n)
	for tab.Len() < n {
		a := randAddr()
		var bits int
		if v6 {
			bits = []int{32, 48, 56, 64, 64, 96, 128, 128}[r.IntN(8)]
		} else {
			bits = []int{8, 16, 20, 24, 24, 24, 28, 32, 32, 32}[r.IntN(10)]
		}
		p := netip.PrefixFrom(a, bits).Masked()
		tab.Insert(p, tab.Len())
		ps = append(ps, p)
	}
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		a := randAddr()
		if i%2 == 0 { // inside a prefix: its bits, then random host bits
			p := ps[r.IntN(len(ps))]
			pb, ab := p.Addr().AsSlice(), a.AsSlice()
			for j := range p.Bits() {
				m := byte(0x80 >> (j % 8))
				ab[j/8] = ab[j/8]&^m | pb[j/8]&m
			}
			a, _ = netip.AddrFromSlice(ab)
		}
		addrs[i] = a
	}
	return tab, addrs
}

func BenchmarkLookup(b *testing.B) {
	for _, fam := range []string{"v4", "v6"} {
		for _, n := range []int{1, 1000, 100000} {
			b.Run(fmt.Sprintf("%s/n=%d", fam, n), func(b *testing.B) {
				tab, addrs := benchTable(n, fam == "v6")
				b.ReportAllocs()
				hits := 0
				i := 0
				for b.Loop() {
					if _, ok := tab.Lookup(addrs[i&4095]); ok {
						hits++
					}
					i++
				}
				_ = hits
			})
		}
	}
}

func BenchmarkLookupDst(b *testing.B) {
	for _, fam := range []string{"v4", "v6"} {
		for _, n := range []int{1000, 100000} {
			b.Run(fmt.Sprintf("%s/n=%d", fam, n), func(b *testing.B) {
				tab, addrs := benchTable(n, fam == "v6")
				pkts := make([][]byte, len(addrs))
				for i, a := range addrs {
					pkts[i] = packet(a, a)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					tab.LookupDst(pkts[i&4095])
					i++
				}
			})
		}
	}
}

// BenchmarkLookupParallel compares the lock-free lookup with the same lookup
// under a sync.RWMutex read lock, the alternative design, with every
// processor looking up at once.
func BenchmarkLookupParallel(b *testing.B) {
	tab, addrs := benchTable(1000, false)
	b.Run("atomic", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				tab.Lookup(addrs[i&4095])
				i++
			}
		})
	})
	b.Run("rwmutex", func(b *testing.B) {
		var mu sync.RWMutex
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				mu.RLock()
				tab.Lookup(addrs[i&4095])
				mu.RUnlock()
				i++
			}
		})
	})
}

// BenchmarkInsert measures a write (insert, then remove again) into a table
// of n prefixes: a copy of the changed path plus a new root.
func BenchmarkInsert(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("v4/n=%d", n), func(b *testing.B) {
			tab, addrs := benchTable(n, false)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := netip.PrefixFrom(addrs[i&4095], 32)
				tab.Insert(p, -1)
				tab.Remove(p)
				i++
			}
		})
	}
}

// BenchmarkRemoveValue measures removing one peer's prefix from a table of
// 100000 (a full walk).
func BenchmarkRemoveValue(b *testing.B) {
	tab, _ := benchTable(100000, false)
	b.ReportAllocs()
	for b.Loop() {
		tab.Insert(netip.MustParsePrefix("10.99.0.0/16"), -1)
		tab.RemoveValue(-1)
	}
}
