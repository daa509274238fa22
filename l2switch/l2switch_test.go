package l2switch

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func mac(b byte) MAC { return MAC{0x02, 0, 0, 0, 0, b} }

var bcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func frame(dst, src MAC) []byte {
	f := make([]byte, 60)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	f[12], f[13] = 0x08, 0x00
	return f
}

type step struct {
	name   string
	frame  []byte
	in     int
	dt     time.Duration // advance the clock before the frame
	want   Verdict
	wantTo int
}

func TestDecideTable(t *testing.T) {
	A, B, C := mac(1), mac(2), mac(3)
	cases := []struct {
		name  string
		opts  Options
		setup func(*Table[int])
		steps []step
		stats Stats
	}{
		{
			name:  "malformed",
			steps: []step{{frame: make([]byte, 13), in: 1, want: Drop}, {frame: nil, in: 1, want: Drop}},
			stats: Stats{Malformed: 2},
		},
		{
			name: "exactly a header",
			steps: []step{
				{frame: frame(bcast, A)[:14], in: 1, want: Flood},
			},
			stats: Stats{Learned: 1},
		},
		{
			name: "bad source",
			steps: []step{
				{frame: frame(B, bcast), in: 1, want: Drop},
				{frame: frame(B, MAC{0x01, 0, 0x5e, 0, 0, 1}), in: 1, want: Drop},
				{frame: frame(B, MAC{}), in: 1, want: Drop},
				{frame: frame(bcast, B), in: 2, want: Flood},
			},
			stats: Stats{BadSource: 3, Learned: 1},
		},
		{
			name: "broadcast multicast unknown flood, known unicast",
			steps: []step{
				{frame: frame(bcast, A), in: 1, want: Flood},
				{frame: frame(MAC{0x33, 0x33, 0, 0, 0, 1}, A), in: 1, want: Flood},
				{frame: frame(B, A), in: 1, want: Flood},
				{frame: frame(A, B), in: 2, want: Unicast, wantTo: 1},
				{frame: frame(B, A), in: 1, want: Unicast, wantTo: 2},
				{frame: frame(bcast, B), in: 2, want: Flood},
			},
			stats: Stats{Learned: 2},
		},
		{
			name: "split horizon",
			steps: []step{
				{frame: frame(bcast, A), in: 1, want: Flood},
				{frame: frame(A, B), in: 1, want: Drop},
				{frame: frame(B, A), in: 1, want: Drop},
				{frame: frame(C, A), in: 1, want: Flood},
			},
			stats: Stats{Learned: 2, Hairpin: 2},
		},
		{
			name: "move follows at once",
			steps: []step{
				{frame: frame(bcast, A), in: 1, want: Flood},
				{frame: frame(A, B), in: 2, want: Unicast, wantTo: 1},
				{frame: frame(B, A), in: 3, want: Unicast, wantTo: 2}, // A moved to 3
				{frame: frame(A, B), in: 2, want: Unicast, wantTo: 3},
				{frame: frame(A, C), in: 3, want: Drop},               // C on 3, A on 3: hairpin
				{frame: frame(B, A), in: 1, want: Unicast, wantTo: 2}, // back to 1
				{frame: frame(A, C), in: 3, want: Unicast, wantTo: 1},
			},
			stats: Stats{Learned: 3, Moved: 2, Hairpin: 1},
		},
		{
			name: "ageing",
			opts: Options{Ageing: 10 * time.Second},
			steps: []step{
				{frame: frame(bcast, A), in: 1, want: Flood},
				{frame: frame(A, B), in: 2, dt: 9 * time.Second, want: Unicast, wantTo: 1},
				{frame: frame(A, B), in: 2, dt: time.Second, want: Flood}, // A aged out (10 s)
				{frame: frame(B, A), in: 1, dt: 9 * time.Second, want: Unicast, wantTo: 2},
				{frame: frame(B, A), in: 1, dt: 10 * time.Second, want: Flood}, // A relearned (counted Aged + Learned)
			},
			stats: Stats{Learned: 4, Aged: 2},
		},
		{
			name: "refresh keeps alive",
			opts: Options{Ageing: 10 * time.Second},
			steps: []step{
				{frame: frame(bcast, A), in: 1, want: Flood},
				{frame: frame(bcast, A), in: 1, dt: 8 * time.Second, want: Flood},
				{frame: frame(A, B), in: 2, dt: 8 * time.Second, want: Unicast, wantTo: 1},
			},
			stats: Stats{Learned: 2},
		},
		{
			name: "per-port cap",
			opts: Options{MaxPerPort: 2},
			steps: []step{
				{frame: frame(bcast, mac(10)), in: 1, want: Flood},
				{frame: frame(bcast, mac(11)), in: 1, want: Flood},
				{frame: frame(bcast, mac(12)), in: 1, want: Drop},    // new on a full port
				{frame: frame(bcast, mac(10)), in: 1, want: Flood},   // known: fine
				{frame: frame(mac(12), mac(20)), in: 2, want: Flood}, // other port unaffected; 12 not learned
				{frame: frame(bcast, mac(21)), in: 2, want: Flood},
				{frame: frame(bcast, mac(22)), in: 2, want: Drop},
				{frame: frame(bcast, mac(20)), in: 1, want: Drop}, // a move into a full port is capped too
				{frame: frame(mac(20), mac(10)), in: 1, want: Unicast, wantTo: 2},
			},
			stats: Stats{Learned: 4, CapHit: 3},
		},
		{
			name: "cap frees when entries age",
			opts: Options{MaxPerPort: 1, Ageing: 10 * time.Second},
			steps: []step{
				{frame: frame(bcast, mac(10)), in: 1, want: Flood},
				{frame: frame(bcast, mac(11)), in: 1, dt: 5 * time.Second, want: Drop},
				{frame: frame(bcast, mac(11)), in: 1, dt: 5 * time.Second, want: Flood},
			},
			stats: Stats{Learned: 2, CapHit: 1, Aged: 1},
		},
		{
			name: "allowed list",
			setup: func(tb *Table[int]) {
				tb.SetAllowed(1, []MAC{A})
			},
			steps: []step{
				{frame: frame(bcast, B), in: 1, want: Drop},
				{frame: frame(bcast, A), in: 1, want: Flood},
				{frame: frame(A, B), in: 2, want: Unicast, wantTo: 1}, // port 2 unrestricted
				{frame: frame(A, C), in: 1, want: Drop},
			},
			stats: Stats{Learned: 2, NotAllowed: 2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := New[int](c.opts)
			if c.setup != nil {
				c.setup(tb)
			}
			now := t0
			for i, s := range c.steps {
				now = now.Add(s.dt)
				v, to := tb.Decide(s.frame, s.in, now)
				if v != s.want || (v == Unicast && to != s.wantTo) || (v != Unicast && to != 0) {
					t.Fatalf("step %d: got %v,%d want %v,%d", i, v, to, s.want, s.wantTo)
				}
			}
			if got := tb.Stats(); got != c.stats {
				t.Fatalf("stats %+v, want %+v", got, c.stats)
			}
		})
	}
}

// A pinned address stays on its port: a frame from another port with it as
// source is dropped and counted, frames to it go to its port even before
// it was seen, and it outlives ageing, Expire and RemovePort until Unpin.
func TestPin(t *testing.T) {
	tb := New[string](Options{Ageing: 10 * time.Second})
	own := mac(9)
	tb.Decide(frame(bcast, own), "spoke", t0) // learned on a spoke first
	tb.Pin(own, "tap", t0)
	if v, _ := tb.Decide(frame(bcast, own), "spoke", t0); v != Drop || tb.Stats().Pinned != 1 {
		t.Fatalf("a spoke sending from the pinned address: %v, stats %+v", v, tb.Stats())
	}
	if v, p := tb.Decide(frame(own, mac(1)), "other", t0); v != Unicast || p != "tap" {
		t.Fatalf("to the pinned address: %v %q, want unicast to tap", v, p)
	}
	if v, _ := tb.Decide(frame(bcast, own), "tap", t0); v != Flood {
		t.Fatalf("from the pinned address on its port: %v", v)
	}
	late := t0.Add(time.Hour)
	tb.Expire(late)
	tb.RemovePort("tap")
	if v, p := tb.Decide(frame(own, mac(1)), "other", late); v != Unicast || p != "tap" {
		t.Fatalf("after an hour, Expire and RemovePort: %v %q", v, p)
	}
	if e := tb.Entries(late); len(e) != 2 || e[1].MAC != own || !e[1].Pinned || e[0].Pinned {
		t.Fatalf("entries %v", e)
	}
	tb.Unpin(own)
	if v, _ := tb.Decide(frame(bcast, own), "spoke", late); v != Flood {
		t.Fatalf("after Unpin, a spoke learns it again: %v", v)
	}
	tb.Pin(bcast, "tap", late) // ignored
	if v, _ := tb.Decide(frame(bcast, mac(1)), "other", late); v != Flood {
		t.Fatalf("after pinning broadcast: %v", v)
	}
}

func TestExpireAndEntries(t *testing.T) {
	tb := New[string](Options{Ageing: 10 * time.Second})
	tb.Decide(frame(bcast, mac(3)), "b", t0)
	tb.Decide(frame(bcast, mac(1)), "a", t0.Add(5*time.Second))
	tb.Decide(frame(bcast, mac(2)), "a", t0.Add(6*time.Second))
	got := tb.Entries(t0.Add(8 * time.Second))
	want := []Entry[string]{
		{mac(1), "a", 3 * time.Second, false},
		{mac(2), "a", 2 * time.Second, false},
		{mac(3), "b", 8 * time.Second, false},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	// At 10 s mac(3) is expired: not listed, not forwarded to, though held.
	if e := tb.Entries(t0.Add(10 * time.Second)); len(e) != 2 {
		t.Fatalf("entries %v", e)
	}
	if v, _ := tb.Decide(frame(mac(3), mac(1)), "a", t0.Add(10*time.Second)); v != Flood {
		t.Fatalf("to expired: %v", v)
	}
	if tb.portLen("b") != 1 {
		t.Fatal("expected entry held until Expire")
	}
	tb.Expire(t0.Add(10 * time.Second))
	if tb.portLen("b") != 0 || tb.Stats().Aged != 1 {
		t.Fatalf("after Expire: len %d stats %+v", tb.portLen("b"), tb.Stats())
	}
	tb.Expire(t0.Add(16 * time.Second)) // mac(2) (seen at 6 s); mac(1) refreshed at 10 s
	if e := tb.Entries(t0.Add(16 * time.Second)); len(e) != 1 || e[0].MAC != mac(1) || tb.Stats().Aged != 2 {
		t.Fatalf("entries %v stats %+v", e, tb.Stats())
	}
}

func TestRemovePortAndSetAllowed(t *testing.T) {
	tb := New[int](Options{})
	for i := byte(1); i <= 3; i++ {
		tb.Decide(frame(bcast, mac(i)), 1, t0)
	}
	tb.Decide(frame(bcast, mac(9)), 2, t0)
	tb.SetAllowed(1, []MAC{mac(1), mac(2)}) // evicts mac(3)
	if e := tb.Entries(t0); len(e) != 3 {
		t.Fatalf("entries %v", e)
	}
	if v, _ := tb.Decide(frame(mac(3), mac(9)), 2, t0); v != Flood {
		t.Fatalf("evicted MAC still known: %v", v)
	}
	tb.RemovePort(1)
	if v, _ := tb.Decide(frame(mac(1), mac(9)), 2, t0); v != Flood {
		t.Fatalf("removed port's MAC still known: %v", v)
	}
	// Allowed list is gone too.
	if v, _ := tb.Decide(frame(bcast, mac(3)), 1, t0); v != Flood {
		t.Fatalf("allowed list survived RemovePort: %v", v)
	}
	tb.SetAllowed(1, nil) // any again; no-op here
	tb.SetAllowed(5, []MAC{mac(7)})
	tb.SetAllowed(5, nil)
	if v, _ := tb.Decide(frame(bcast, mac(8)), 5, t0); v != Flood {
		t.Fatalf("SetAllowed nil did not lift restriction: %v", v)
	}
	if s := tb.Stats(); s.NotAllowed != 0 || s.Learned != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMACParseString(t *testing.T) {
	for _, s := range []string{"02:00:5e:10:00:ff", "02-00-5E-10-00-FF", "0200.5e10.00ff"} {
		m, err := ParseMAC(s)
		if err != nil || m.String() != "02:00:5e:10:00:ff" {
			t.Fatalf("ParseMAC(%q) = %v, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "02:00:5e:10:00", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "zz:00:5e:10:00:ff"} {
		if _, err := ParseMAC(s); err == nil {
			t.Fatalf("ParseMAC(%q) accepted", s)
		}
	}
	if Flood.String() != "flood" || Verdict(7).String() != "Verdict(7)" {
		t.Fatal("Verdict.String")
	}
}

func TestConcurrentDecide(t *testing.T) {
	tb := New[int](Options{MaxPerPort: 8, Ageing: time.Second})
	const G = 8
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			now := t0
			for range 20000 {
				now = now.Add(time.Duration(r.IntN(1000)) * time.Microsecond)
				src := mac(byte(r.IntN(24)))
				src[4] = byte(r.IntN(2)) // some MACs shared between goroutines: moves
				if src[4] == 0 {
					src[3] = byte(g)
				}
				dst := mac(byte(r.IntN(24)))
				if r.IntN(8) == 0 {
					dst = bcast
				}
				v, to := tb.Decide(frame(dst, src), g, now)
				if v == Unicast && to == g {
					t.Errorf("unicast back to in port %d", g)
					return
				}
				switch r.IntN(500) {
				case 0:
					tb.Expire(now)
				case 1:
					tb.Entries(now)
				case 2:
					tb.SetAllowed(g, nil)
				}
			}
		}()
	}
	wg.Wait()
	for p := range G {
		if n := tb.portLen(p); n > 8 {
			t.Fatalf("port %d holds %d > cap", p, n)
		}
	}
	if s := tb.Stats(); s.Learned == 0 || s.Moved == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDecideAllocs(t *testing.T) {
	tb := New[int](Options{})
	A, B := mac(1), mac(2)
	tb.Decide(frame(bcast, A), 1, t0)
	tb.Decide(frame(bcast, B), 2, t0)
	for _, c := range []struct {
		name string
		f    []byte
		want Verdict
	}{
		{"known", frame(B, A), Unicast},
		{"unknown", frame(mac(3), A), Flood},
		{"broadcast", frame(bcast, A), Flood},
		{"hairpin", frame(A, A), Drop},
	} {
		if v, _ := tb.Decide(c.f, 1, t0); v != c.want {
			t.Fatalf("%s: %v", c.name, v)
		}
		if n := testing.AllocsPerRun(1000, func() { tb.Decide(c.f, 1, t0) }); n != 0 {
			t.Errorf("%s: %v allocs per Decide", c.name, n)
		}
	}
}

// ---- reference model ----

type mEntry struct {
	port   int
	seen   time.Time
	pinned bool
}

type model struct {
	ageing  time.Duration
	max     int
	e       map[MAC]mEntry
	allowed map[int]map[MAC]bool
	st      Stats // Aged is not modelled (it depends on when entries are swept)
}

func (m *model) live(x mEntry, now time.Time) bool { return x.pinned || now.Sub(x.seen) < m.ageing }

func (m *model) decide(f []byte, in int, now time.Time) (Verdict, int) {
	if len(f) < 14 {
		m.st.Malformed++
		return Drop, 0
	}
	dst, src := MAC(f[0:6]), MAC(f[6:12])
	if src[0]&1 != 0 || src == (MAC{}) {
		m.st.BadSource++
		return Drop, 0
	}
	x, ok := m.e[src]
	if ok && x.pinned && x.port != in {
		m.st.Pinned++
		return Drop, 0
	}
	if ok && !m.live(x, now) {
		delete(m.e, src)
		ok = false
	}
	if !ok || x.port != in {
		if al := m.allowed[in]; al != nil && !al[src] {
			m.st.NotAllowed++
			return Drop, 0
		}
		n := 0
		for _, y := range m.e {
			if y.port == in && m.live(y, now) && !y.pinned {
				n++
			}
		}
		if n >= m.max {
			m.st.CapHit++
			return Drop, 0
		}
		if ok {
			m.st.Moved++
		} else {
			m.st.Learned++
		}
	}
	m.e[src] = mEntry{in, now, x.pinned && ok}
	if dst[0]&1 != 0 {
		return Flood, 0
	}
	d, ok := m.e[dst]
	if !ok || !m.live(d, now) {
		return Flood, 0
	}
	if d.port == in {
		m.st.Hairpin++
		return Drop, 0
	}
	return Unicast, d.port
}

func (m *model) entries(now time.Time) []Entry[int] {
	var out []Entry[int]
	for k, x := range m.e {
		if m.live(x, now) {
			out = append(out, Entry[int]{MAC: k, Port: x.port, Age: now.Sub(x.seen), Pinned: x.pinned})
		}
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry[int]) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && bytes.Compare(es[j].MAC[:], es[j-1].MAC[:]) < 0; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

func TestAgainstModel(t *testing.T) {
	macs := []MAC{mac(1), mac(2), mac(3), mac(4), mac(5), mac(6), mac(7), mac(8), bcast, {}, {0x01, 0, 0x5e, 0, 0, 1}}
	var total Stats
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 42))
		o := Options{Ageing: time.Duration(1+r.IntN(20)) * time.Second, MaxPerPort: 1 + r.IntN(4)}
		tb := New[int](o)
		m := &model{ageing: o.Ageing, max: o.MaxPerPort, e: map[MAC]mEntry{}, allowed: map[int]map[MAC]bool{}}
		now := t0
		for i := range 400 {
			now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			in := r.IntN(4)
			switch op := r.IntN(100); {
			case op < 3:
				tb.Expire(now)
				for k, x := range m.e {
					if !m.live(x, now) {
						delete(m.e, k)
					}
				}
			case op < 5:
				tb.RemovePort(in)
				for k, x := range m.e {
					if x.port == in && !x.pinned {
						delete(m.e, k)
					}
				}
				delete(m.allowed, in)
			case op < 7:
				var list []MAC
				al := map[MAC]bool{}
				for range r.IntN(4) {
					x := macs[r.IntN(8)]
					list = append(list, x)
					al[x] = true
				}
				tb.SetAllowed(in, list)
				if len(list) == 0 {
					delete(m.allowed, in)
				} else {
					m.allowed[in] = al
					for k, x := range m.e {
						if x.port == in && !al[k] && !x.pinned {
							delete(m.e, k)
						}
					}
				}
			case op < 8:
				x := macs[r.IntN(len(macs))]
				tb.Pin(x, in, now)
				if y, ok := m.e[x]; !x.IsGroup() && !x.IsZero() && !(ok && y.pinned && y.port == in) {
					m.e[x] = mEntry{in, now, true}
				}
			case op < 9:
				x := macs[r.IntN(len(macs))]
				tb.Unpin(x)
				if m.e[x].pinned {
					delete(m.e, x)
				}
			default:
				var f []byte
				if r.IntN(30) == 0 {
					f = make([]byte, r.IntN(14))
				} else {
					src := macs[r.IntN(len(macs))]
					if r.IntN(4) != 0 {
						src = macs[r.IntN(8)]
					}
					f = frame(macs[r.IntN(len(macs))], src)
				}
				gv, gp := tb.Decide(f, in, now)
				wv, wp := m.decide(f, in, now)
				if gv != wv || gp != wp {
					t.Fatalf("seed %d step %d: Decide(%x, %d) = %v,%d; model %v,%d", seed, i, f[:min(12, len(f))], in, gv, gp, wv, wp)
				}
			}
			got, want := tb.Entries(now), m.entries(now)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d step %d: entries\n got %v\nwant %v", seed, i, got, want)
			}
			s := tb.Stats()
			s.Aged = 0
			if s != m.st {
				t.Fatalf("seed %d step %d: stats %+v, model %+v", seed, i, s, m.st)
			}
			for p := range 4 {
				if n := tb.portLen(p); n > o.MaxPerPort {
					t.Fatalf("seed %d step %d: port %d holds %d", seed, i, p, n)
				}
			}
		}
		s := tb.Stats()
		total.Learned += s.Learned
		total.Moved += s.Moved
		total.Aged += s.Aged
		total.CapHit += s.CapHit
		total.NotAllowed += s.NotAllowed
		total.BadSource += s.BadSource
		total.Hairpin += s.Hairpin
		total.Malformed += s.Malformed
		total.Pinned += s.Pinned
	}
	t.Logf("totals %+v", total)
	if total.Learned == 0 || total.Moved == 0 || total.Aged == 0 || total.CapHit == 0 ||
		total.NotAllowed == 0 || total.BadSource == 0 || total.Hairpin == 0 || total.Malformed == 0 || total.Pinned == 0 {
		t.Fatalf("model test does not exercise every rule: %+v", total)
	}
}

// maxFuzzInput bounds the bytes of an input FuzzDecide reads (a dozen
// frames or more; the rest is ignored). Go's minimizer runs an input that
// found new coverage once per candidate, of which there are O(n²) for n
// bytes, and counts none of those runs in the fuzzer's execs/s until it is
// done: inputs of a few KiB stalled FuzzDecide at 0 execs/s for many
// seconds. Bytes it ignores, the minimizer cuts first.
const maxFuzzInput = 256

// FuzzDecide feeds a sequence of frames: each record is
// [port, clock step (100 ms units), length, frame bytes...].
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 1, 14, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) { decideFrames(t, data) })
}

// decideFrames runs FuzzDecide's records in data (its first maxFuzzInput
// bytes) through a table, checking each verdict, and returns how many
// bytes it read.
func decideFrames(t *testing.T, data []byte) int {
	const max = 3
	data = data[:min(len(data), maxFuzzInput)]
	read := len(data)
	tb := New[uint8](Options{MaxPerPort: max, Ageing: 5 * time.Second})
	now := t0
	for len(data) >= 3 {
		in, dt, n := data[0]%4, data[1], int(data[2])
		data = data[3:]
		n = min(n, len(data))
		fr := data[:n]
		data = data[n:]
		now = now.Add(time.Duration(dt) * 100 * time.Millisecond)
		if dt == 255 {
			tb.Expire(now)
		}
		v, to := tb.Decide(fr, in, now)
		switch v {
		case Unicast:
			if to == in {
				t.Fatalf("unicast to in port %d", in)
			}
			found := false
			for _, e := range tb.Entries(now) {
				if e.MAC == MAC(fr[0:6]) && e.Port == to {
					found = true
				}
			}
			if !found {
				t.Fatalf("unicast to %d but %x not learned there", to, fr[0:6])
			}
		case Flood, Drop:
			if to != 0 {
				t.Fatalf("%v with port %d", v, to)
			}
		default:
			t.Fatalf("verdict %v", v)
		}
		for p := range uint8(4) {
			if c := tb.portLen(p); c > max {
				t.Fatalf("port %d holds %d > %d", p, c, max)
			}
		}
	}
	return read
}

// FuzzDecide's work per input is bounded: a 64 KiB input is read no
// further than a 1 KiB one.
func TestFuzzInputBounded(t *testing.T) {
	records := func(n int) []byte {
		var b []byte
		for i := 0; len(b) < n; i++ {
			b = append(b, byte(i), 1, 14, 2, 0, 0, 0, 0, byte(i+1), 2, 0, 0, 0, 0, byte(i), 8, 0)
		}
		return b
	}
	if short, long := decideFrames(t, records(1<<10)), decideFrames(t, records(64<<10)); long != short || long > maxFuzzInput {
		t.Errorf("decideFrames read %d bytes of a 1 KiB input and %d of a 64 KiB one, want both %d", short, long, maxFuzzInput)
	}
}

func BenchmarkDecide(b *testing.B) {
	tb := New[int](Options{})
	// A populated table: 4 ports x 256 MACs.
	for p := range 4 {
		for i := range 256 {
			m := MAC{0x02, 0, 0, 0, byte(p), byte(i)}
			tb.Decide(frame(bcast, m), p, t0)
		}
	}
	src, dst := MAC{0x02, 0, 0, 0, 1, 7}, MAC{0x02, 0, 0, 0, 2, 9}
	for _, c := range []struct {
		name string
		f    []byte
	}{
		{"KnownUnicast", frame(dst, src)},
		{"UnknownFlood", frame(mac(0xee), src)},
		{"BroadcastFlood", frame(bcast, src)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tb.Decide(c.f, 1, t0)
			}
		})
		b.Run(c.name+"Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tb.Decide(c.f, 1, t0)
				}
			})
		})
	}
}
