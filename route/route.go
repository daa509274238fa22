// Package route maps IP addresses to peers by longest-prefix match, as
// WireGuard's allowed IPs do: on send, a packet's destination picks the peer
// to encrypt it for (LookupDst); on receive, a decrypted packet is accepted
// only if its source belongs to the peer it came from (LookupSrc).
//
// A Table holds one path-compressed binary trie per address family. Tries are
// persistent: a write copies the nodes on the path it changes, shares the
// rest, and publishes the new roots with one atomic pointer store. Readers
// therefore take no lock and never wait for a writer, and they allocate
// nothing; each lookup sees the table as it was after some complete write.
// Writes are serialized by a mutex and cost O(prefix length) allocations
// (RemoveValue walks the whole table).
//
// IPv4 and IPv6 are separate: an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
// is an IPv6 address and matches only IPv6 prefixes such as ::ffff:0:0/96,
// never an IPv4 prefix, as in WireGuard.
package route

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Table maps IP prefixes to values of type T (typically a peer) and finds the
// longest prefix containing an address. The zero value is an empty table
// ready to use. A Table is safe for concurrent use; it must not be copied
// after first use.
type Table[T comparable] struct {
	mu   sync.Mutex               // serializes writers
	root atomic.Pointer[tries[T]] // nil: empty
}

// tries is one immutable version of a table.
type tries[T comparable] struct {
	v4, v6 *node[T]
	n      int // number of prefixes
}

// node is a trie node: the prefix key/bits, a value if one is set for
// exactly that prefix, and up to two children with longer prefixes, chosen by
// the bit after the node's prefix. Nodes are never modified once published.
// IPv4 keys sit in the top 32 bits of hi.
type node[T comparable] struct {
	key   u128
	bits  uint8
	set   bool
	val   T
	child [2]*node[T]
}

// u128 is an address or prefix as a 128-bit big-endian number.
type u128 struct{ hi, lo uint64 }

// bit returns bit i counted from the most significant (0..127); 0 past 127.
func (a u128) bit(i uint8) uint8 {
	if i < 64 {
		return uint8(a.hi>>(63-i)) & 1
	}
	if i < 128 {
		return uint8(a.lo>>(127-i)) & 1
	}
	return 0
}

// masked keeps the first n bits of a.
func (a u128) masked(n uint8) u128 {
	switch {
	case n == 0:
		return u128{}
	case n < 64:
		return u128{a.hi &^ (^uint64(0) >> n), 0}
	case n == 64:
		return u128{a.hi, 0}
	case n < 128:
		return u128{a.hi, a.lo &^ (^uint64(0) >> (n - 64))}
	}
	return a
}

// common returns how many leading bits a and b share (0..128).
func common(a, b u128) uint8 {
	if x := a.hi ^ b.hi; x != 0 {
		return uint8(bits.LeadingZeros64(x))
	}
	return 64 + uint8(bits.LeadingZeros64(a.lo^b.lo))
}

func key4(b []byte) u128 { return u128{uint64(binary.BigEndian.Uint32(b)) << 32, 0} }
func key16(b []byte) u128 {
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

// addrKey returns a's key and whether it is IPv6 (IPv4-mapped included).
func addrKey(a netip.Addr) (k u128, v6 bool) {
	if a.Is4() {
		b := a.As4()
		return key4(b[:]), false
	}
	b := a.As16()
	return key16(b[:]), true
}

func (k u128) prefix(n uint8, v6 bool) netip.Prefix {
	if !v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.hi>>32))
		return netip.PrefixFrom(netip.AddrFrom4(b), int(n))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(n))
}

// lookup walks from n towards k, remembering the last node with a value.
func lookup[T comparable](n *node[T], k u128) (v T, ok bool) {
	for n != nil && common(n.key, k) >= n.bits {
		if n.set {
			v, ok = n.val, true
		}
		n = n.child[k.bit(n.bits)]
	}
	return v, ok
}

// lookup4 is lookup for IPv4, whose keys use only hi and at most 32 bits.
func lookup4[T comparable](n *node[T], k uint64) (v T, ok bool) {
	for n != nil && bits.LeadingZeros64(n.key.hi^k) >= int(n.bits) {
		if n.set {
			v, ok = n.val, true
		}
		n = n.child[(k>>(63-n.bits))&1]
	}
	return v, ok
}

// Lookup returns the value of the longest prefix containing a. An
// IPv4-mapped IPv6 address matches IPv6 prefixes only; an IPv6 zone is
// ignored. It does not allocate.
func (t *Table[T]) Lookup(a netip.Addr) (v T, ok bool) {
	r := t.root.Load()
	if r == nil {
		return v, false
	}
	switch {
	case a.Is4():
		b := a.As4()
		return lookup4(r.v4, key4(b[:]).hi)
	case a.Is6():
		b := a.As16()
		return lookup(r.v6, key16(b[:]))
	}
	return v, false
}

// LookupDst returns the value for the destination address of the IPv4 or
// IPv6 packet pkt (by its version nibble). It reports false for an empty
// table, a packet shorter than its fixed header (20 or 40 bytes) or of
// another version. It does not validate the rest of the header and does not
// allocate.
func (t *Table[T]) LookupDst(pkt []byte) (v T, ok bool) {
	return t.lookupPacket(pkt, 16, 24)
}

// LookupSrc is LookupDst for the packet's source address.
func (t *Table[T]) LookupSrc(pkt []byte) (v T, ok bool) {
	return t.lookupPacket(pkt, 12, 8)
}

func (t *Table[T]) lookupPacket(pkt []byte, off4, off6 int) (v T, ok bool) {
	if len(pkt) == 0 {
		return v, false
	}
	r := t.root.Load()
	if r == nil {
		return v, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return v, false
		}
		return lookup4(r.v4, key4(pkt[off4:off4+4]).hi)
	case 6:
		if len(pkt) < 40 {
			return v, false
		}
		return lookup(r.v6, key16(pkt[off6:off6+16]))
	}
	return v, false
}

// Len returns the number of prefixes in the table.
func (t *Table[T]) Len() int {
	if r := t.root.Load(); r != nil {
		return r.n
	}
	return 0
}

// load returns the current version for a writer (t.mu held).
func (t *Table[T]) load() tries[T] {
	if r := t.root.Load(); r != nil {
		return *r
	}
	return tries[T]{}
}

// Insert maps prefix p (its host bits cleared) to v. If p is already in the
// table it changes owner to v, as an allowed IP does in WireGuard when
// another peer claims it. An invalid p is ignored.
func (t *Table[T]) Insert(p netip.Prefix, v T) { t.Swap(p, v) }

// Swap is Insert that also returns the value p had before, if it was in the
// table (ok): the owner an allowed IP is taken from. It costs the depth of
// the trie, whatever the table's size.
func (t *Table[T]) Swap(p netip.Prefix, v T) (old T, ok bool) {
	if !p.IsValid() {
		return old, false
	}
	k, v6 := addrKey(p.Addr())
	n := uint8(p.Bits())
	k = k.masked(n)

	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.load()
	root := &r.v4
	if v6 {
		root = &r.v6
	}
	nr, prev, had, changed := insert(*root, k, n, v)
	if !changed {
		return prev, had
	}
	*root = nr
	if !had {
		r.n++
	}
	t.root.Store(&r)
	return prev, had
}

// insert returns n with k/bits mapped to v, copying the path it changes;
// prev and had are the value k/bits had before (had: it was set), changed
// reports any change at all.
func insert[T comparable](n *node[T], k u128, nbits uint8, v T) (_ *node[T], prev T, had, changed bool) {
	if n == nil {
		return &node[T]{key: k, bits: nbits, set: true, val: v}, prev, false, true
	}
	c := min(common(n.key, k), n.bits, nbits)
	switch {
	case c == n.bits && c == nbits: // this very prefix
		if n.set {
			prev, had = n.val, true
		}
		if n.set && n.val == v {
			return n, prev, had, false
		}
		m := *n
		m.set, m.val = true, v
		return &m, prev, had, true
	case c == n.bits: // below n
		b := k.bit(n.bits)
		ch, prev, had, changed := insert(n.child[b], k, nbits, v)
		if !changed {
			return n, prev, had, false
		}
		m := *n
		m.child[b] = ch
		return &m, prev, had, true
	case c == nbits: // above n: the new prefix becomes n's parent
		m := &node[T]{key: k, bits: nbits, set: true, val: v}
		m.child[n.key.bit(nbits)] = n
		return m, prev, false, true
	default: // n and the new prefix diverge at bit c: join them under a glue node
		g := &node[T]{key: k.masked(c), bits: c}
		g.child[k.bit(c)] = &node[T]{key: k, bits: nbits, set: true, val: v}
		g.child[n.key.bit(c)] = n
		return g, prev, false, true
	}
}

// Remove removes prefix p (its host bits cleared) and reports whether it
// was in the table.
func (t *Table[T]) Remove(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	k, v6 := addrKey(p.Addr())
	n := uint8(p.Bits())
	k = k.masked(n)

	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.load()
	root := &r.v4
	if v6 {
		root = &r.v6
	}
	nr, ok := remove(*root, k, n)
	if !ok {
		return false
	}
	*root = nr
	r.n--
	t.root.Store(&r)
	return true
}

func remove[T comparable](n *node[T], k u128, nbits uint8) (*node[T], bool) {
	if n == nil || n.bits > nbits || common(n.key, k) < n.bits {
		return n, false
	}
	if n.bits == nbits {
		if !n.set {
			return n, false
		}
		return compact(n, false, n.child[0], n.child[1]), true
	}
	b := k.bit(n.bits)
	ch, ok := remove(n.child[b], k, nbits)
	if !ok {
		return n, false
	}
	c := n.child
	c[b] = ch
	return compact(n, n.set, c[0], c[1]), true
}

// compact returns a node like n with value set or not and children c0, c1,
// dropping it if a node without a value would have fewer than two children.
func compact[T comparable](n *node[T], set bool, c0, c1 *node[T]) *node[T] {
	if !set {
		if c0 == nil {
			return c1
		}
		if c1 == nil {
			return c0
		}
	}
	m := &node[T]{key: n.key, bits: n.bits, set: set, child: [2]*node[T]{c0, c1}}
	if set {
		m.val = n.val
	}
	return m
}

// RemoveValue removes every prefix mapped to v, as when a peer is removed.
// It walks the whole table: a caller that knows v's prefixes removes them
// one by one instead (Remove costs the trie's depth).
func (t *Table[T]) RemoveValue(v T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.load()
	var n4, n6 int
	r.v4, n4 = removeValue(r.v4, v)
	r.v6, n6 = removeValue(r.v6, v)
	if n4+n6 == 0 {
		return
	}
	r.n -= n4 + n6
	t.root.Store(&r)
}

// removeValue returns n without the prefixes mapped to v and how many there
// were, sharing every subtree that has none.
func removeValue[T comparable](n *node[T], v T) (*node[T], int) {
	if n == nil {
		return nil, 0
	}
	c0, r0 := removeValue(n.child[0], v)
	c1, r1 := removeValue(n.child[1], v)
	set, removed := n.set, r0+r1
	if set && n.val == v {
		set = false
		removed++
	}
	if removed == 0 {
		return n, 0
	}
	return compact(n, set, c0, c1), removed
}

// walk calls yield for the prefixes under n in order: by address, and a
// prefix before the longer ones it contains.
func walk[T comparable](n *node[T], v6 bool, yield func(netip.Prefix, T) bool) bool {
	for n != nil {
		if n.set && !yield(n.key.prefix(n.bits, v6), n.val) {
			return false
		}
		if !walk(n.child[0], v6, yield) {
			return false
		}
		n = n.child[1]
	}
	return true
}

// All returns the table's prefixes and their values in the order of
// netip.Prefix.Compare: IPv4 first, then by address, then by prefix length. It iterates over the table as it
// was when All was called; writes during the iteration do not affect it.
func (t *Table[T]) All() iter.Seq2[netip.Prefix, T] {
	r := t.root.Load()
	return func(yield func(netip.Prefix, T) bool) {
		if r == nil {
			return
		}
		if walk(r.v4, false, yield) {
			walk(r.v6, true, yield)
		}
	}
}

// Prefixes returns the prefixes mapped to v, sorted as netip.Prefix.Compare
// sorts them (IPv4 first, then by address and prefix length), or nil if there
// are none. It walks the whole table: a caller listing every value's
// prefixes keeps them beside the values instead (Swap reports the owner an
// Insert takes a prefix from).
func (t *Table[T]) Prefixes(v T) []netip.Prefix {
	var ps []netip.Prefix
	for p, pv := range t.All() {
		if pv == v {
			ps = append(ps, p)
		}
	}
	return ps
}
