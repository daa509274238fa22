package l2switch

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MAC is an Ethernet (EUI-48) address.
type MAC [6]byte

// String formats m as six lower-case hex octets separated by colons.
func (m MAC) String() string {
	var b [17]byte
	for i, o := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		hex.Encode(b[i*3:i*3+2], []byte{o})
	}
	return string(b[:])
}

// IsGroup reports whether m is a multicast or broadcast address (I/G bit).
func (m MAC) IsGroup() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// ParseMAC parses an EUI-48 address in any form accepted by net.ParseMAC
// (aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff).
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, err
	}
	if len(hw) != 6 {
		return MAC{}, fmt.Errorf("l2switch: %q is not a 48-bit MAC address", s)
	}
	return MAC(hw), nil
}

// Options configure a Table.
type Options struct {
	// Ageing forgets a MAC not seen as a source for this long; 0 = 300 s.
	Ageing time.Duration
	// MaxPerPort bounds the MACs learned per port; 0 = 1024. When a port is
	// at its limit, frames from new sources on it are dropped (CapHit).
	MaxPerPort int
}

// Defaults applied for zero Options fields.
const (
	DefaultAgeing     = 300 * time.Second
	DefaultMaxPerPort = 1024
)

// Verdict says what to do with a frame.
type Verdict int

const (
	// Drop: do not forward the frame.
	Drop Verdict = iota
	// Unicast: send the frame to the returned port only.
	Unicast
	// Flood: send the frame to every port except the one it arrived on.
	Flood
)

func (v Verdict) String() string {
	switch v {
	case Drop:
		return "drop"
	case Unicast:
		return "unicast"
	case Flood:
		return "flood"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Stats are cumulative counters of a Table.
type Stats struct {
	Learned    uint64 // new entries (a previously unknown or expired MAC)
	Moved      uint64 // live entries that moved to another port
	Aged       uint64 // entries forgotten because they expired
	CapHit     uint64 // frames dropped: new source on a port at MaxPerPort
	NotAllowed uint64 // frames dropped: source not in the port's allowed list
	BadSource  uint64 // frames dropped: multicast/broadcast or zero source
	Hairpin    uint64 // frames dropped: destination is on the arrival port
	Malformed  uint64 // frames dropped: shorter than an Ethernet header
	Pinned     uint64 // frames dropped: source pinned to another port (Pin)
}

// Entry is one learned or pinned address, for status output.
type Entry[P comparable] struct {
	MAC    MAC
	Port   P
	Age    time.Duration // time since the MAC was last seen as a source (pinned: since Pin, if never)
	Pinned bool          // bound to Port by Pin: never ages, never moves
}

type entry[P comparable] struct {
	mac    MAC
	port   P            // written under the write lock only
	pinned bool         // set when made (by Pin), never changed
	seen   atomic.Int64 // unix ns; refreshed under the read lock
}

type portState[P comparable] struct {
	macs    map[MAC]*entry[P]
	minSeen int64 // lower bound of seen over macs, to skip useless sweeps
	allowed map[MAC]struct{}
}

// Table is the MAC learning table of a hub. It is safe for concurrent use.
type Table[P comparable] struct {
	ageing int64 // ns
	max    int

	mu    sync.RWMutex
	macs  map[MAC]*entry[P]
	ports map[P]*portState[P]

	learned, moved, aged, capHit, notAllowed, badSource, hairpin, malformed, pinned atomic.Uint64
}

// New returns an empty table.
func New[P comparable](o Options) *Table[P] {
	if o.Ageing <= 0 {
		o.Ageing = DefaultAgeing
	}
	if o.MaxPerPort <= 0 {
		o.MaxPerPort = DefaultMaxPerPort
	}
	return &Table[P]{
		ageing: int64(o.Ageing),
		max:    o.MaxPerPort,
		macs:   make(map[MAC]*entry[P]),
		ports:  make(map[P]*portState[P]),
	}
}

func (t *Table[P]) expired(seen, now int64) bool { return now-seen >= t.ageing }

// live reports whether e holds at now: pinned, or seen within Ageing.
func (t *Table[P]) live(e *entry[P], now int64) bool {
	return e.pinned || !t.expired(e.seen.Load(), now)
}

// Decide learns the source MAC of frame, which arrived on port in, and says
// where the frame goes. For Unicast the returned port is the destination;
// otherwise it is the zero P. now is the arrival time (time.Now() in the
// engine). See the package documentation for the rules.
func (t *Table[P]) Decide(frame []byte, in P, now time.Time) (Verdict, P) {
	var zero P
	if len(frame) < 14 {
		t.malformed.Add(1)
		return Drop, zero
	}
	dst := MAC(frame[0:6])
	src := MAC(frame[6:12])
	if src.IsGroup() || src.IsZero() {
		t.badSource.Add(1)
		return Drop, zero
	}
	ns := now.UnixNano()

	// Fast path: source already live (or pinned) on this port.
	t.mu.RLock()
	if e := t.macs[src]; e != nil && e.port == in && t.live(e, ns) {
		e.seen.Store(ns)
		v, p := t.forward(dst, in, ns)
		t.mu.RUnlock()
		return v, p
	}
	t.mu.RUnlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.macs[src]
	if e != nil && e.pinned && e.port != in {
		t.pinned.Add(1)
		return Drop, zero
	}
	if e != nil && !t.live(e, ns) {
		t.remove(e)
		t.aged.Add(1)
		e = nil
	}
	if e != nil && e.port == in {
		// Learned by a concurrent Decide in between.
		e.seen.Store(ns)
		return t.forward(dst, in, ns)
	}
	ps := t.ports[in]
	if ps != nil && ps.allowed != nil {
		if _, ok := ps.allowed[src]; !ok {
			t.notAllowed.Add(1)
			return Drop, zero
		}
	}
	if ps != nil && len(ps.macs) >= t.max {
		if t.expired(ps.minSeen, ns) {
			t.sweep(ps, ns)
		}
		if len(ps.macs) >= t.max {
			t.capHit.Add(1)
			return Drop, zero
		}
	}
	if ps == nil {
		ps = &portState[P]{}
		t.ports[in] = ps
	}
	if ps.macs == nil {
		ps.macs = make(map[MAC]*entry[P])
	}
	if e != nil {
		t.remove(e)
		t.moved.Add(1)
	} else {
		e = &entry[P]{mac: src}
		t.learned.Add(1)
	}
	e.port = in
	e.seen.Store(ns)
	if len(ps.macs) == 0 || ns < ps.minSeen {
		ps.minSeen = ns
	}
	ps.macs[src] = e
	t.macs[src] = e
	return t.forward(dst, in, ns)
}

// forward decides for dst; called with t.mu held (read or write).
func (t *Table[P]) forward(dst MAC, in P, ns int64) (Verdict, P) {
	var zero P
	if dst.IsGroup() {
		return Flood, zero
	}
	d := t.macs[dst]
	if d == nil || !t.live(d, ns) {
		return Flood, zero
	}
	if d.port == in {
		t.hairpin.Add(1)
		return Drop, zero
	}
	return Unicast, d.port
}

// remove unlinks the learned entry e from the table; called with t.mu
// write-locked.
func (t *Table[P]) remove(e *entry[P]) {
	delete(t.macs, e.mac)
	if ps := t.ports[e.port]; ps != nil {
		delete(ps.macs, e.mac)
		if len(ps.macs) == 0 && ps.allowed == nil {
			delete(t.ports, e.port)
		}
	}
}

// sweep removes the expired entries of one port and recomputes its minSeen;
// called with t.mu write-locked.
func (t *Table[P]) sweep(ps *portState[P], ns int64) {
	min := ns
	for mac, e := range ps.macs {
		s := e.seen.Load()
		if t.expired(s, ns) {
			delete(ps.macs, mac)
			delete(t.macs, mac)
			t.aged.Add(1)
		} else if s < min {
			min = s
		}
	}
	ps.minSeen = min
}

// SetAllowed restricts the source MACs accepted on port to macs; nil or
// empty allows any source. Entries of the port not in the new list are
// forgotten at once.
func (t *Table[P]) SetAllowed(port P, macs []MAC) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.ports[port]
	if len(macs) == 0 {
		if ps != nil {
			ps.allowed = nil
			if len(ps.macs) == 0 {
				delete(t.ports, port)
			}
		}
		return
	}
	allowed := make(map[MAC]struct{}, len(macs))
	for _, m := range macs {
		allowed[m] = struct{}{}
	}
	if ps == nil {
		ps = &portState[P]{}
		t.ports[port] = ps
	}
	ps.allowed = allowed
	for mac := range ps.macs {
		if _, ok := allowed[mac]; !ok {
			delete(ps.macs, mac)
			delete(t.macs, mac)
		}
	}
}

// Pin binds mac to port for good, as a switch's static entry: it never
// ages and never moves, frames to it go to port, and a frame from any
// other port with mac as its source is dropped (counted Pinned), so no
// port learns it. A hub pins its own interface's address, which a peer
// must not take over. An entry learned for mac elsewhere goes at once.
// Pinned addresses count towards no port's MaxPerPort and stay through
// SetAllowed, RemovePort and Expire, until Unpin. A group or zero mac is
// ignored.
func (t *Table[P]) Pin(mac MAC, port P, now time.Time) {
	if mac.IsGroup() || mac.IsZero() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.macs[mac]; e != nil {
		if e.pinned && e.port == port {
			return
		}
		if !e.pinned {
			t.remove(e)
		}
	}
	e := &entry[P]{mac: mac, port: port, pinned: true}
	e.seen.Store(now.UnixNano())
	t.macs[mac] = e
}

// Unpin releases an address bound by Pin: it is unknown until learned
// again. An address not pinned is left alone.
func (t *Table[P]) Unpin(mac MAC) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.macs[mac]; e != nil && e.pinned {
		delete(t.macs, mac)
	}
}

// RemovePort forgets every MAC learned on port and its allowed list (a
// peer was removed); what is pinned to it stays.
func (t *Table[P]) RemovePort(port P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.ports[port]
	if ps == nil {
		return
	}
	for mac := range ps.macs {
		delete(t.macs, mac)
	}
	delete(t.ports, port)
}

// Expire removes the entries not seen for Ageing (counted Aged). Decide
// already ignores such entries; Expire releases their memory.
func (t *Table[P]) Expire(now time.Time) {
	ns := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.macs {
		if !t.live(e, ns) {
			t.remove(e)
			t.aged.Add(1)
		}
	}
}

// Entries returns the live and pinned entries sorted by MAC, for status
// output.
func (t *Table[P]) Entries(now time.Time) []Entry[P] {
	ns := now.UnixNano()
	t.mu.RLock()
	out := make([]Entry[P], 0, len(t.macs))
	for _, e := range t.macs {
		if t.live(e, ns) {
			out = append(out, Entry[P]{MAC: e.mac, Port: e.port, Age: time.Duration(ns - e.seen.Load()), Pinned: e.pinned})
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry[P]) int { return bytes.Compare(a.MAC[:], b.MAC[:]) })
	return out
}

// Ageing returns how long an address not seen as a source stays known.
func (t *Table[P]) Ageing() time.Duration { return time.Duration(t.ageing) }

// Stats returns the counters.
func (t *Table[P]) Stats() Stats {
	return Stats{
		Learned:    t.learned.Load(),
		Moved:      t.moved.Load(),
		Aged:       t.aged.Load(),
		CapHit:     t.capHit.Load(),
		NotAllowed: t.notAllowed.Load(),
		BadSource:  t.badSource.Load(),
		Hairpin:    t.hairpin.Load(),
		Malformed:  t.malformed.Load(),
		Pinned:     t.pinned.Load(),
	}
}

// portLen returns the number of entries held for port (live or not yet
// removed); for tests.
func (t *Table[P]) portLen(port P) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if ps := t.ports[port]; ps != nil {
		return len(ps.macs)
	}
	return 0
}
