package tunnel

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// hubConfig returns a `wg setconf` of n peers, each with one IPv4 /32 and
// one IPv6 /128 in 10.0.0.0/8 and fd00::/64, as a road-warrior hub has.
func hubConfig(tb testing.TB, n int) devconf.DeviceConfig {
	tb.Helper()
	c := devconf.DeviceConfig{ReplacePeers: true}
	for i := range n {
		k, err := protocol.GeneratePrivateKey()
		if err != nil {
			tb.Fatal(err)
		}
		v4 := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0: 0xfd, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		c.Peers = append(c.Peers, devconf.PeerConfig{
			PublicKey:         k.PublicKey(),
			ReplaceAllowedIPs: true,
			AllowedIPs:        []netip.Prefix{netip.PrefixFrom(v4, 32), netip.PrefixFrom(v6, 128)},
		})
	}
	return c
}

// BenchmarkScale times one `wg setconf` of N peers into a running engine
// and one `wg show` of them; both should grow linearly with N.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		cfg := hubConfig(b, n)
		b.Run(fmt.Sprintf("apply/peers=%d", n), func(b *testing.B) {
			w := newMemWorld()
			e := w.start(b, "hub", tun.ModeTUN, "192.0.2.1:51820", "")
			for b.Loop() {
				if err := e.d.Apply(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("status/peers=%d", n), func(b *testing.B) {
			w := newMemWorld()
			e := w.start(b, "hub", tun.ModeTUN, "192.0.2.1:51820", "")
			if err := e.d.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if got := len(e.d.Status().Peers); got != n {
					b.Fatalf("%d peers, want %d", got, n)
				}
			}
		})
	}
}

// TestAllowedIPsKept checks the per-peer lists of allowed IPs that Status
// reports against the route table itself (which is walked here, as Status
// no longer does) through a random run of `wg set` transactions: prefixes
// added, taken from another peer, removed, replaced, peers removed and the
// whole set replaced.
func TestAllowedIPsKept(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	e := w.start(t, "hub", tun.ModeTUN, "192.0.2.1:51820", "")
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]protocol.Key, 6)
	for i := range keys {
		k, err := protocol.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k.PublicKey()
	}
	prefix := func() netip.Prefix {
		if rng.IntN(2) == 0 {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), 0}), 22+rng.IntN(3))
		}
		return netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 7: byte(rng.IntN(4))}), 62+rng.IntN(3))
	}
	prefixes := func() []netip.Prefix {
		ps := make([]netip.Prefix, rng.IntN(4))
		for i := range ps {
			ps[i] = prefix()
		}
		return ps
	}
	for step := range 400 {
		var c devconf.DeviceConfig
		c.ReplacePeers = rng.IntN(40) == 0
		for range 1 + rng.IntN(3) {
			pc := devconf.PeerConfig{PublicKey: keys[rng.IntN(len(keys))]}
			switch rng.IntN(6) {
			case 0:
				pc.Remove = true
			case 1:
				pc.ReplaceAllowedIPs = true
				pc.AllowedIPs = prefixes()
			case 2:
				pc.RemoveAllowedIPs = prefixes()
			default:
				pc.AllowedIPs = prefixes()
			}
			c.Peers = append(c.Peers, pc)
		}
		if err := e.d.Apply(c); err != nil {
			t.Fatal(err)
		}
		st := e.d.Status()
		// The table as the routes have it, read under the lock (and
		// compared after it, so that a failure leaves the device free).
		e.d.mu.RLock()
		want := map[protocol.Key][]netip.Prefix{}
		for _, ps := range st.Peers {
			want[ps.PublicKey] = e.d.routes.Prefixes(e.d.peers[ps.PublicKey])
		}
		total := e.d.routes.Len()
		e.d.mu.RUnlock()
		n := 0
		for _, ps := range st.Peers {
			if !slices.Equal(ps.AllowedIPs, want[ps.PublicKey]) {
				t.Fatalf("step %d: peer %s reports %v, the routes have %v", step, ps.PublicKey, ps.AllowedIPs, want[ps.PublicKey])
			}
			n += len(ps.AllowedIPs)
		}
		if n != total {
			t.Fatalf("step %d: the peers report %d allowed IPs, the routes hold %d", step, n, total)
		}
		if !slices.IsSortedFunc(st.Peers, func(a, b devconf.PeerStatus) int {
			return strings.Compare(a.PublicKey.String(), b.PublicKey.String())
		}) {
			t.Fatalf("step %d: peers not sorted by key", step)
		}
	}
}

// timedPeers returns how many peers the timers will look at: woken, or
// scheduled in their heap.
func timedPeers(d *Device) int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, p := range d.peers {
		if p.queued.Load() || p.dueAt.Load() != 0 {
			n++
		}
	}
	return n
}

// TestTimersVisitBusyPeersOnly checks that a hub's timers visit only the
// peers that have something to follow: none of a thousand configured
// peers that never connect, one that makes a session until its keys are
// forgotten, and it again when it comes back; and that a peer the timers
// let go of still retries its handshake and keeps its keepalives.
func TestTimersVisitBusyPeersOnly(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	if err := a.d.Apply(hubConfig(t, 1000)); err != nil { // replaces b
		t.Fatal(err)
	}
	connect(t, a, b, 0, false)
	w.clock.Advance(time.Second)
	if n := timedPeers(a.d); n != 0 {
		t.Fatalf("the timers visit %d peers of 1001 that have nothing to do", n)
	}
	udpIn(t, a, b, "hello")
	expectUDP(t, b, "hello")
	w.clock.Advance(time.Second)
	if n := timedPeers(a.d); n != 1 {
		t.Fatalf("the timers visit %d peers, want the one with a session", n)
	}
	// Keys are forgotten after three times RejectAfterTime: then nothing is left.
	for range 3 * 180 / 10 {
		w.clock.Advance(10 * time.Second)
	}
	if n := timedPeers(a.d); n != 0 {
		t.Fatalf("the timers still visit %d peers after the keys were forgotten", n)
	}
	udpIn(t, a, b, "again")
	expectUDP(t, b, "again")
	if n := timedPeers(a.d); n != 1 {
		t.Fatalf("the timers visit %d peers after a new session, want 1", n)
	}
	// A handshake that gets no answer is retried by the timers.
	for range 3 * 180 / 10 {
		w.clock.Advance(10 * time.Second)
	}
	if n := timedPeers(a.d); n != 0 {
		t.Fatalf("the timers still visit %d peers after the keys were forgotten", n)
	}
	var sent atomic.Int32
	w.net.SetFilter(func(d *memnet.Packet) bool {
		if d.Src.Addr() == a.under.Addr() && len(d.Data) == protocol.InitiationSize && d.Data[0] == protocol.TypeInitiation {
			sent.Add(1)
		}
		return false
	})
	udpIn(t, a, b, "lost")
	w.clock.Advance(time.Second)
	for range 4 {
		w.clock.Advance(protocol.RekeyTimeout + time.Second)
	}
	if n := sent.Load(); n < 4 {
		t.Fatalf("%d initiations while b was cut off, want the first and retries", n)
	}
	// A persistent keepalive keeps a peer visited.
	w.net.SetFilter(nil)
	connect(t, a, b, 5, false)
	for range 60 {
		w.clock.Advance(10 * time.Second)
	}
	if n := timedPeers(a.d); n != 1 {
		t.Fatalf("the timers visit %d peers, want the one with a keepalive", n)
	}
	if last := a.peer(b).lastHS.Load(); last == 0 || w.clock.Now().Sub(time.Unix(0, last)) > 3*time.Minute {
		t.Fatal("the keepalive peer has no fresh session")
	}
}

// TestTimersLeaveIdlePeers checks that the timers let go of peers that
// have a state they can do nothing about: packets staged for a peer with
// no endpoint, an ICMP report about a peer without a session that probes
// would check, a persistent keepalive with no endpoint yet.
func TestTimersLeaveIdlePeers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		mode tun.Mode
		set  func(t *testing.T, w *memWorld, a, b *memEnd)
	}{
		{"staged, no path", tun.ModeTUN, func(t *testing.T, w *memWorld, a, b *memEnd) {
			connect(t, a, b, 0, true)
			udpIn(t, a, b, "to nowhere")
		}},
		{"ICMP report, no session", tun.ModeTAP, func(t *testing.T, w *memWorld, a, b *memEnd) {
			connect(t, a, b, 0, false)
			w.clock.Advance(time.Second)
			a.d.pathTooBig(pathError{dst: b.under.Addr(), mtu: 1000})
		}},
		{"keepalive, no path", tun.ModeTUN, func(t *testing.T, w *memWorld, a, b *memEnd) {
			connect(t, a, b, 25, true)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newMemWorld()
			inner := func(s string) string {
				if c.mode == tun.ModeTAP {
					return ""
				}
				return s
			}
			a := w.start(t, "a", c.mode, "192.0.2.1:51820", inner("10.9.0.1"))
			b := w.start(t, "b", c.mode, "192.0.2.2:51820", inner("10.9.0.2"))
			c.set(t, w, a, b)
			for range 40 {
				w.clock.Advance(time.Minute)
			}
			if n := timedPeers(a.d); n != 0 {
				t.Fatalf("the timers still look at %d peer(s) that have nothing to do", n)
			}
		})
	}
}

// TestIdleSessionEvaluatedRarely checks that a peer with a session and no
// traffic is evaluated when something of its falls due, not every tick:
// over ten minutes of 100 ms ticks (6000), a few dozen evaluations at most
// (the backstop looks every 30 s), and its persistent keepalive still goes
// out every 25 s.
func TestIdleSessionEvaluatedRarely(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	connect(t, a, b, 25, false)
	udpIn(t, a, b, "hello")
	expectUDP(t, b, "hello")
	w.clock.Advance(time.Second)
	var keepalives atomic.Int32
	w.net.SetFilter(func(d *memnet.Packet) bool {
		if d.Src.Addr() == a.under.Addr() && len(d.Data) == protocol.TransportOverhead {
			keepalives.Add(1)
		}
		return true
	})
	before := a.d.evaluations.Load()
	for range 6000 {
		w.clock.Advance(100 * time.Millisecond)
	}
	evals := a.d.evaluations.Load() - before
	if evals > 60 {
		t.Errorf("%d evaluations of one idle peer in 6000 ticks", evals)
	}
	if n := keepalives.Load(); n < 600/25-1 {
		t.Errorf("%d keepalives in 10 minutes, want one every 25 s", n)
	}
	t.Logf("%d evaluations, %d keepalives in 10 minutes", evals, keepalives.Load())
}

// TestUnconfirmedResponderNotInLoop checks that a responder's keypair the
// initiator never confirms (its data lost) gets the peer looked at when
// that keypair expires and when the backstop says, not at every tick.
func TestUnconfirmedResponderNotInLoop(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	w.net.SetFilter(func(d *memnet.Packet) bool {
		return !(d.Src.Addr() == a.under.Addr() && len(d.Data) > 0 && d.Data[0] == protocol.TypeTransport)
	})
	udpIn(t, a, b, "lost")
	w.clock.Advance(time.Second)
	if p := b.peer(a); p.lastHS.Load() != 0 {
		t.Fatal("b confirmed a session whose data was dropped")
	}
	before := b.d.evaluations.Load()
	for range 600 {
		w.clock.Advance(100 * time.Millisecond)
	}
	if evals := b.d.evaluations.Load() - before; evals > 30 {
		t.Errorf("%d evaluations of a peer with an unconfirmed keypair in 600 ticks", evals)
	}
}
