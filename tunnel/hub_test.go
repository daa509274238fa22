package tunnel

// A TAP hub's protections against its own peers (issue 12, finding 14):
// the tap's own address pinned, the warning about peers that may send from
// any address, and the limit on the frames a peer has flooded.

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

var broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// hub is a TAP hub whose tap has the address tapMAC, and spokes, each a
// peer of the hub and the hub a peer of each.
func (w *memWorld) hub(t *testing.T, tapMAC [6]byte, spokes int) (*memEnd, []*memEnd) {
	t.Helper()
	hub := w.start(t, "hub", tun.ModeTAP, "192.0.2.1:51820", "")
	if err := hub.dev.SetHardwareAddr(net.HardwareAddr(tapMAC[:])); err != nil {
		t.Fatal(err)
	}
	// The hub reads its tap's address again every second.
	w.clock.Advance(time.Second)
	var s []*memEnd
	for i := range spokes {
		e := w.start(t, "s"+string(rune('1'+i)), tun.ModeTAP, "192.0.2."+string(rune('1'+i))+"1:51820", "")
		connect(t, hub, e, 0, false)
		connect(t, e, hub, 0, false)
		s = append(s, e)
	}
	return hub, s
}

// sendFrame makes e's host send a frame from src to dst.
func sendFrame(t *testing.T, e *memEnd, dst, src [6]byte, payload string) {
	t.Helper()
	if err := e.dev.Send(testCtx(t), memnet.Frame(dst, src, 0x88b5, []byte(payload))); err != nil {
		t.Fatal(err)
	}
}

// switchStats returns the hub's switch counters.
func switchStats(e *memEnd) l2switch.Stats { return *e.d.Info().(Info).Switch }

// A spoke that sends from the hub tap's own address takes nothing over:
// its frames are dropped and counted, and frames to that address still
// reach the tap. When the tap's address changes, the new one is pinned and
// the old one released.
func TestMemHubPinsTapMAC(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	own := macOf(0xaa)
	hub, s := w.hub(t, own, 2)
	// s1 forges the tap's address.
	sendFrame(t, s[0], broadcast, own, "I am the hub")
	eventually(t, "the forgery counted", func() bool { return switchStats(hub).Pinned == 1 })
	// s2's host writes to the hub's host: the tap gets it, s1 does not.
	sendFrame(t, s[1], own, macOf(2), "to the hub")
	expectFrame(t, hub, "to the hub")
	expectNothing(t, s[0], "a frame to the hub's tap")
	var found bool
	for _, m := range hub.d.Info().(Info).MACs {
		if m.MAC == l2switch.MAC(own).String() {
			found = m.Peer == "" && m.Pinned
		}
	}
	if !found {
		t.Errorf("the tap's address is not pinned to the tap in %+v", hub.d.Info().(Info).MACs)
	}

	// The tap's address changes: within a second the new one is pinned,
	// and the old one is anybody's.
	moved := macOf(0xbb)
	if err := hub.dev.SetHardwareAddr(net.HardwareAddr(moved[:])); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Second)
	sendFrame(t, s[0], broadcast, moved, "I am the hub now")
	eventually(t, "the second forgery counted", func() bool { return switchStats(hub).Pinned == 2 })
	sendFrame(t, s[0], broadcast, own, "the old address")
	expectFrame(t, hub, "the old address")
	for _, m := range hub.d.Info().(Info).MACs {
		if m.MAC == l2switch.MAC(own).String() && (m.Pinned || m.Peer != s[0].pub().String()) {
			t.Errorf("the tap's old address: %+v, want learned at s1", m)
		}
	}
}

// setFloodLimit gives e's device a flood limit, as tapwire_flood_limit does.
func setFloodLimit(t *testing.T, e *memEnd, limit uint32) {
	t.Helper()
	if err := e.d.Apply(devconf.DeviceConfig{FloodLimit: &limit}); err != nil {
		t.Fatal(err)
	}
}

// A spoke flooding the hub (broadcast, multicast, unknown unicast) gets
// FloodLimit of its frames a second through, the rest dropped and counted, while another spoke's
// frames (unicast, and broadcasts of its own) still arrive. The injected
// clock keeps the whole storm in one second.
func TestMemHubFloodLimit(t *testing.T) {
	t.Parallel()
	const limit, storm = 100, 300
	w := newMemWorld()
	own := macOf(0xaa)
	hub, s := w.hub(t, own, 2)
	setFloodLimit(t, hub, limit)
	// Both sessions up: a unicast to the hub's host each (not flooded).
	for i, e := range s {
		sendFrame(t, e, own, macOf(byte(i+1)), "hello")
		expectFrame(t, hub, "hello")
	}
	// Broadcast, multicast and unknown unicast: all flooded, all limited.
	kinds := [][6]byte{broadcast, {0x01, 0x00, 0x5e, 0, 0, 1}, macOf(0x77)}
	for i := range storm {
		sendFrame(t, s[0], kinds[i%len(kinds)], macOf(1), "storm")
	}
	st := hub.d.Stats()
	eventually(t, "the storm handled", func() bool { return st.FloodLimited.Load() == storm-limit })
	sendFrame(t, s[1], own, macOf(2), "unicast from s2")
	sendFrame(t, s[1], broadcast, macOf(2), "broadcast from s2")
	got := 0
	for ctx := testCtx(t); ; {
		f, err := hub.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("the hub's tap got %d frames of the storm and not s2's: %v", got, err)
		}
		if payload := string(f[14:]); payload == "storm" {
			got++
		} else if payload == "unicast from s2" {
			break
		}
	}
	expectFrame(t, hub, "broadcast from s2")
	if got != limit {
		t.Errorf("the hub's tap got %d frames of a storm of %d, want the limit, %d", got, storm, limit)
	}
	var peer PeerInfo
	for _, p := range hub.d.Info().(Info).Peers {
		if p.PublicKey == s[0].pub().String() {
			peer = p
		}
	}
	if in := hub.d.Info().(Info); peer.FloodLimited != storm-limit || in.FloodLimit != limit || in.Counters["flood_limited"] != storm-limit {
		t.Errorf("info: peer %+v, device flood limit %d, counters %v", peer, in.FloodLimit, in.Counters)
	}
	// A second later the storm's sender has a second's worth again.
	w.clock.Advance(time.Second)
	sendFrame(t, s[0], broadcast, macOf(1), "after a second")
	expectFrame(t, hub, "after a second")
	// Limit 0 lifts it.
	setFloodLimit(t, hub, 0)
	for range storm {
		sendFrame(t, s[0], broadcast, macOf(1), "no limit")
	}
	sendFrame(t, s[0], own, macOf(1), "last")
	got = 0
	for ctx := testCtx(t); ; {
		f, err := hub.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("without a limit the tap got %d frames of %d: %v", got, storm, err)
		}
		if payload := string(f[14:]); payload == "no limit" {
			got++
		} else if payload == "last" {
			break
		}
	}
	if got != storm || st.FloodLimited.Load() != storm-limit {
		t.Errorf("without a limit: %d frames of %d through, %d limited in all", got, storm, st.FloodLimited.Load())
	}
}

// Dropping a frame over the flood limit allocates nothing. (Not parallel:
// AllocsPerRun counts the whole process's allocations.)
func TestMemHubFloodLimitAllocs(t *testing.T) {
	w := newMemWorld()
	hub, s := w.hub(t, macOf(0xaa), 1)
	setFloodLimit(t, hub, 1)
	p := hub.peer(s[0])
	out, wr := hub.d.newL2Out(nil, 4), newTUNWriter(hub.dev, 4)
	frame := memnet.Frame(broadcast, macOf(1), 0x88b5, []byte("x"))
	now := w.clock.Now()
	hub.d.switchFrame(frame, p, now, wr, out) // learns the source, takes the second's token
	before := hub.d.Stats().FloodLimited.Load()
	if n := testing.AllocsPerRun(100, func() { hub.d.switchFrame(frame, p, now, wr, out) }); n != 0 {
		t.Errorf("%v allocations per frame dropped over the flood limit", n)
	}
	if got := hub.d.Stats().FloodLimited.Load() - before; got < 100 {
		t.Errorf("%d frames limited of the 101 sent", got)
	}
}

// lockedBuffer is a log's output that a test reads while the device writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A hub with two peers or more warns, once per peer, about each peer
// without AllowedMACs, and its Info marks them; a peer given AllowedMACs
// before Apply adds it (as tapwire up does) is never warned about. The
// tap's address is pinned from New on.
func TestMemHubWarnsAboutAnyMAC(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	dev := memnet.NewDevice("hub", tun.ModeTAP, 1500)
	own := macOf(0xaa)
	if err := dev.SetHardwareAddr(net.HardwareAddr(own[:])); err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	d, err := New(dev, Options{Log: slog.New(slog.NewTextHandler(&log, nil)), Network: w.net.Host(netip.MustParseAddr("192.0.2.1")), Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if in := d.Info().(Info); in.TapMAC != l2switch.MAC(own).String() {
		t.Errorf("tap mac %q after New, want %v pinned", in.TapMAC, l2switch.MAC(own))
	}
	keys := make([]protocol.Key, 3)
	for i := range keys {
		k, err := protocol.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k.PublicKey()
	}
	add := func(ks ...protocol.Key) {
		t.Helper()
		var c devconf.DeviceConfig
		for _, k := range ks {
			c.Peers = append(c.Peers, devconf.PeerConfig{PublicKey: k})
		}
		if err := d.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	warnings := func(k protocol.Key) int { // lines warning about k
		n := 0
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, "without AllowedMACs") && strings.Contains(line, k.String()) {
				n++
			}
		}
		return n
	}
	anyMAC := func() map[protocol.Key]bool {
		m := map[protocol.Key]bool{}
		for _, p := range d.Info().(Info).Peers {
			k, err := protocol.ParseKey(p.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			m[k] = p.AnyMAC
		}
		return m
	}
	add(keys[0])
	if n := warnings(keys[0]); n != 0 || anyMAC()[keys[0]] {
		t.Errorf("one peer: %d warnings, any mac %v; want none (nothing to take over)", n, anyMAC())
	}
	d.SetAllowedMACs(keys[1], []l2switch.MAC{macOf(2)}) // before the peer exists, as tapwire up does
	add(keys[1], keys[2])
	add(keys[0], keys[1], keys[2]) // wg syncconf sends them all again
	for i, want := range []int{1, 0, 1} {
		if n := warnings(keys[i]); n != want {
			t.Errorf("peer %d: %d warnings, want %d:\n%s", i, n, want, log.String())
		}
	}
	if m := anyMAC(); !m[keys[0]] || m[keys[1]] || !m[keys[2]] {
		t.Errorf("any mac %v, want peers 0 and 2", m)
	}
	// Given AllowedMACs, a peer is no longer marked; losing them warns again.
	d.SetAllowedMACs(keys[2], []l2switch.MAC{macOf(3)})
	if anyMAC()[keys[2]] {
		t.Error("peer 2 still marked with AllowedMACs")
	}
	d.SetAllowedMACs(keys[2], nil)
	if n := warnings(keys[2]); n != 2 || !anyMAC()[keys[2]] {
		t.Errorf("peer 2 after losing its AllowedMACs: %d warnings, marked %v", n, anyMAC()[keys[2]])
	}
	if !strings.Contains(log.String(), "level=WARN") {
		t.Errorf("the warnings are not at level WARN:\n%s", log.String())
	}
}

// A TUN device floods nothing: no warning, whatever its peers.
func TestMemTunNoAnyMACWarning(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	var log lockedBuffer
	d, err := New(memnet.NewDevice("tun", tun.ModeTUN, 1420), Options{Log: slog.New(slog.NewTextHandler(&log, nil)), Network: w.net.Host(netip.MustParseAddr("192.0.2.1")), Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var c devconf.DeviceConfig
	for range 3 {
		k, err := protocol.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		c.Peers = append(c.Peers, devconf.PeerConfig{PublicKey: k.PublicKey()})
	}
	if err := d.Apply(c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "AllowedMACs") {
		t.Errorf("a TUN device warned:\n%s", log.String())
	}
}
