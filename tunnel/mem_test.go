package tunnel

// The engine's logic in memory: devices, endpoints and the clock of
// internal/memnet, no kernel, no root, in parallel. The namespace tests
// (tunnel_test.go and the others in package tunnel_test) keep what meets
// the kernel: offloads, GSO and GRO, the path MTU's ICMP, real peers.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// memWorld is a network and a clock that several engines share.
type memWorld struct {
	net   *memnet.Network
	clock *memnet.Clock
	log   *slog.Logger // the engines' log; nil: memLog's
	// workers is Options.Workers for the engines started next; 0: they
	// take turns at 2 (workers, the readers write) and 4 (pipelines with
	// writers), so that every test runs both.
	workers int
	started int
}

func newMemWorld() *memWorld {
	w := &memWorld{net: memnet.NewNetwork(), clock: memnet.NewClock(time.Now())}
	w.clock.Settle(w.net.WaitIdle)
	return w
}

// memEnd is one engine in a memWorld: its device, its key, its underlay
// endpoint and its address inside the tunnel (TUN).
type memEnd struct {
	d     *Device
	dev   *memnet.Device
	key   protocol.Key
	under netip.AddrPort
	inner netip.Addr
}

func (e *memEnd) pub() protocol.Key { return e.key.PublicKey() }

func memLog(t testing.TB) *slog.Logger {
	if os.Getenv("TAPWIRE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs an engine of mode on a new in-memory device whose socket is
// bound to under ("192.0.2.1:51820"); inner is its tunnel address (TUN).
func (w *memWorld) start(t testing.TB, name string, mode tun.Mode, under, inner string) *memEnd {
	t.Helper()
	mtu := 1420
	if mode == tun.ModeTAP {
		mtu = 1500
	}
	e := &memEnd{dev: memnet.NewDevice(name, mode, mtu), under: netip.MustParseAddrPort(under)}
	w.clock.Settle(e.dev.WaitIdle)
	defer w.clock.Settle(func() bool { return memnet.WaitZero(&e.d.hsq.pending, e.d.closed) })
	if inner != "" {
		e.inner = netip.MustParseAddr(inner)
	}
	log := w.log
	if log == nil {
		log = memLog(t)
	}
	workers := w.workers
	if workers == 0 {
		workers = 2 + 2*(w.started%2)
	}
	w.started++
	d, err := New(e.dev, Options{Log: log, Network: w.net.Host(e.under.Addr()), Clock: w.clock, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e.d = d
	if e.key, err = protocol.GeneratePrivateKey(); err != nil {
		t.Fatal(err)
	}
	port := e.under.Port()
	if err := d.Apply(devconf.DeviceConfig{PrivateKey: &e.key, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	return e
}

// tunPair starts two TUN ends, a (192.0.2.1, 10.9.0.1) and b (192.0.2.2,
// 10.9.0.2), each the other's peer with its endpoint.
func (w *memWorld) tunPair(t testing.TB) (a, b *memEnd) {
	t.Helper()
	a = w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b = w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	connect(t, a, b, 0, false)
	connect(t, b, a, 0, false)
	return a, b
}

// connect makes b a peer of a: b's tunnel address (if any) as allowed IP,
// b's endpoint unless noEndpoint, a persistent keepalive (0: off).
func connect(t testing.TB, a, b *memEnd, keepalive uint16, noEndpoint bool) {
	t.Helper()
	pc := devconf.PeerConfig{PublicKey: b.pub(), PersistentKeepalive: &keepalive}
	if b.inner.IsValid() {
		pc.AllowedIPs = []netip.Prefix{netip.PrefixFrom(b.inner, b.inner.BitLen())}
	}
	if !noEndpoint {
		pc.Endpoint = &b.under
	}
	if err := a.d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{pc}}); err != nil {
		t.Fatal(err)
	}
}

func (e *memEnd) peer(other *memEnd) *Peer {
	e.d.mu.RLock()
	defer e.d.mu.RUnlock()
	return e.d.peers[other.pub()]
}

// testCtx bounds a wait: it fails the test when nothing happened in 10 s
// (a deadline for a hang, not a measure of speed).
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until cond holds, failing with what after 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// udpIn sends a UDP packet with payload from a's tunnel address to b's
// through a's device.
func udpIn(t testing.TB, a, b *memEnd, payload string) {
	t.Helper()
	pkt := memnet.UDP(netip.AddrPortFrom(a.inner, 1000), netip.AddrPortFrom(b.inner, 2000), []byte(payload))
	if err := a.dev.Send(testCtx(t), pkt); err != nil {
		t.Fatal(err)
	}
}

// expectUDP reads b's device until a UDP packet with payload arrives.
func expectUDP(t testing.TB, b *memEnd, payload string) {
	t.Helper()
	ctx := testCtx(t)
	for {
		pkt, err := b.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("%s: %q never arrived: %v", b.d.Name(), payload, err)
		}
		if string(memnet.Payload(pkt)) == payload {
			return
		}
	}
}

// expectNothing fails when b's device delivers a packet now (after what was
// sent before was processed: callers wait on a counter first).
func expectNothing(t testing.TB, b *memEnd, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if pkt, err := b.dev.Recv(ctx); err == nil {
		t.Errorf("%s: %s delivered a %d-byte packet", what, b.d.Name(), len(pkt))
	}
}

// watch counts the datagrams of each message type crossing the network.
type watch struct{ n [5]atomic.Int64 }

func (w *watch) filter(p *memnet.Packet) bool {
	if typ, ok := protocol.MessageType(p.Data); ok && typ >= 1 && typ <= 4 {
		w.n[typ].Add(1)
	}
	return true
}

func TestMemTunnelBothWays(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	udpIn(t, a, b, "hello b")
	expectUDP(t, b, "hello b")
	udpIn(t, b, a, "hello a")
	expectUDP(t, a, "hello a")
	st := a.d.Status()
	if len(st.Peers) != 1 || st.Peers[0].LastHandshake.IsZero() || st.Peers[0].TxBytes == 0 || st.Peers[0].RxBytes == 0 {
		t.Errorf("a's status after a handshake both ways: %+v", st.Peers)
	}
	if got := st.Peers[0].LastHandshake; !got.Equal(w.clock.Now()) {
		t.Errorf("last handshake %v, want the injected clock's %v", got, w.clock.Now())
	}
	// A packet to an address no peer has is dropped and counted.
	pkt := memnet.UDP(netip.MustParseAddrPort("10.9.0.1:1"), netip.MustParseAddrPort("10.9.9.9:2"), []byte("x"))
	before := a.d.Stats().NoRoute.Load()
	a.dev.Send(testCtx(t), pkt)
	eventually(t, "NoRoute counted", func() bool { return a.d.Stats().NoRoute.Load() > before })
	// A source outside b's allowed IPs, sent by b, is dropped at a.
	spoof := memnet.UDP(netip.MustParseAddrPort("10.9.0.77:1"), netip.AddrPortFrom(a.inner, 2), []byte("spoofed"))
	b.dev.Send(testCtx(t), spoof)
	eventually(t, "SourceMismatch counted", func() bool { return a.d.Stats().SourceMismatch.Load() > 0 })
	expectNothing(t, a, "a spoofed source")
}

// The initiator rekeys once its keypair is RekeyAfterTime old, and a
// persistent keepalive goes out every interval of silence: the injected
// clock moves, not the wall's.
func TestMemRekeyAndKeepalive(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	var seen watch
	w.net.SetFilter(seen.filter)
	a, b := w.tunPair(t)
	udpIn(t, a, b, "first")
	expectUDP(t, b, "first")
	if n := seen.n[protocol.TypeInitiation].Load(); n != 1 {
		t.Fatalf("%d initiations for one session", n)
	}
	first := b.peer(a).lastHS.Load()

	// Nothing happens while the clock stands still or moves a little.
	w.clock.Advance(time.Minute)
	if n := seen.n[protocol.TypeInitiation].Load(); n != 1 {
		t.Errorf("%d initiations after a quiet minute", n)
	}
	// Past RekeyAfterTime, the next packet sent starts a new handshake,
	// and still goes (with the old keypair).
	w.clock.Advance(protocol.RekeyAfterTime - time.Minute + time.Second)
	udpIn(t, a, b, "after rekey time")
	expectUDP(t, b, "after rekey time")
	eventually(t, "a new handshake", func() bool { return b.peer(a).lastHS.Load() != first })
	if n := seen.n[protocol.TypeInitiation].Load(); n != 2 {
		t.Errorf("%d initiations after RekeyAfterTime, want 2", n)
	}

	// A persistent keepalive of 25 s: one keepalive (an empty data
	// message, 32 bytes) per 25 s of silence.
	var keepalives atomic.Int64
	w.net.SetFilter(func(p *memnet.Packet) bool {
		if typ, _ := protocol.MessageType(p.Data); typ == protocol.TypeTransport && len(p.Data) == 32 && p.Src == a.under {
			keepalives.Add(1)
		}
		return true
	})
	connect(t, a, b, 25, false)
	w.clock.Advance(26 * time.Second)
	eventually(t, "a persistent keepalive", func() bool { return keepalives.Load() > 0 })
	w.clock.Advance(50 * time.Second)
	eventually(t, "three persistent keepalives", func() bool { return keepalives.Load() >= 3 })
	if got := keepalives.Load(); got > 4 {
		t.Errorf("%d keepalives in 76 s at 25 s intervals", got)
	}
}

// A peer's endpoint follows the source of authentic messages (roaming, a
// NAT's new mapping), and replies go to the new address.
func TestMemRoaming(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	server := w.start(t, "srv", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	client := w.start(t, "cli", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	connect(t, server, client, 0, true) // the server learns where the client is
	connect(t, client, server, 0, false)
	udpIn(t, client, server, "from home")
	expectUDP(t, server, "from home")
	if ep := server.peer(client).endpoint.Load(); ep == nil || *ep != client.under {
		t.Fatalf("server's endpoint for the client %v, want %v", ep, client.under)
	}
	// The client moves behind a NAT: its datagrams now come from nat.
	nat := netip.MustParseAddrPort("203.0.113.7:6000")
	w.net.SetFilter(func(p *memnet.Packet) bool {
		switch {
		case p.Src == client.under:
			p.Src = nat
		case p.Dst == nat:
			p.Dst = client.under
		}
		return true
	})
	udpIn(t, client, server, "from the cafe")
	expectUDP(t, server, "from the cafe")
	if ep := server.peer(client).endpoint.Load(); ep == nil || *ep != nat {
		t.Fatalf("server's endpoint for the client %v, want the NAT's %v", ep, nat)
	}
	udpIn(t, server, client, "reply")
	expectUDP(t, client, "reply")
	// A forged datagram from elsewhere moves nothing.
	junk := make([]byte, 64)
	binary.LittleEndian.PutUint32(junk, protocol.TypeTransport)
	c, err := w.net.Host(netip.MustParseAddr("198.51.100.66")).Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteTo(junk, server.under)
	eventually(t, "the forgery counted", func() bool {
		st := server.d.Stats()
		return st.UnknownIndex.Load()+st.BadPacket.Load() > 0
	})
	if ep := server.peer(client).endpoint.Load(); *ep != nat {
		t.Errorf("a forged datagram moved the endpoint to %v", *ep)
	}
}

// TestMemCrossingInitiations starts a handshake on both ends at the same
// moment, and gives each end the other's initiation before the response to
// its own: both handshakes complete at once, because a peer answers with a
// responder state of its own and keeps its initiation in flight (with one
// state, each answer would wipe the end's own initiation, both responses
// would fail, and both ends would wait RekeyTimeout to retry).
func TestMemCrossingInitiations(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	type end struct {
		*memEnd
		wire *memnet.Conn // stands in for the other end's socket: what this end sends lands here
	}
	mk := func(name, under, wire string) *end {
		e := &end{memEnd: w.start(t, name, tun.ModeTUN, under, "")}
		var err error
		if e.wire, err = w.net.Host(netip.MustParseAddr(wire)).Listen(51820); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.wire.Close() })
		return e
	}
	a, b := mk("x0", "192.0.2.1:51820", "198.51.100.1"), mk("x1", "192.0.2.2:51820", "198.51.100.2")
	for _, pair := range [][2]*end{{a, b}, {b, a}} {
		ep := pair[0].wire.Addr()
		if err := pair[0].d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pair[1].pub(), Endpoint: &ep}}}); err != nil {
			t.Fatal(err)
		}
	}
	// read returns the next message of size n that e sent.
	read := func(e *end, n int) []byte {
		t.Helper()
		ctx := testCtx(t)
		for {
			p, err := e.wire.ReadFrom(ctx)
			if err != nil {
				t.Fatalf("%s sent no %d-byte message: %v", e.d.Name(), n, err)
			}
			if len(p.Data) == n {
				return p.Data
			}
		}
	}
	now := w.clock.Now()
	a.peer(b.memEnd).initiate(now, false)
	b.peer(a.memEnd).initiate(now, false)
	initA, initB := read(a, protocol.InitiationSize), read(b, protocol.InitiationSize)
	// Each end answers the other's initiation while its own is in flight.
	a.d.handleMessage(initB, a.wire.Addr(), nil, nil)
	b.d.handleMessage(initA, b.wire.Addr(), nil, nil)
	respA, respB := read(a, protocol.ResponseSize), read(b, protocol.ResponseSize)
	// Each response completes the initiation it answers.
	a.d.handleMessage(respB, a.wire.Addr(), nil, nil)
	b.d.handleMessage(respA, b.wire.Addr(), nil, nil)
	for _, e := range []*end{a, b} {
		st := e.d.Stats()
		if n := st.BadHandshake.Load() + st.UnknownIndex.Load(); n != 0 {
			t.Errorf("%s: %d handshake messages refused", e.d.Name(), n)
		}
	}
	for _, pair := range [][2]*end{{a, b}, {b, a}} {
		p := pair[0].peer(pair[1].memEnd)
		p.mu.Lock()
		current, hsIndex := p.current, p.hsIndex
		p.mu.Unlock()
		if current == nil || !current.Initiator || hsIndex != 0 || p.lastHS.Load() == 0 {
			t.Errorf("%s: its own handshake did not complete (keypair %v, initiation in flight %d)", pair[0].d.Name(), current != nil, hsIndex)
		}
	}
}

// floodInitiations sends n initiations with a valid mac1 to e from c, each
// from a stranger's key (what anyone who knows e's public key can make).
func floodInitiations(t testing.TB, c *memnet.Conn, e *memEnd, now time.Time, n int) {
	t.Helper()
	stranger, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	hs := protocol.NewHandshake(protocol.NewLocal(stranger), e.pub(), protocol.Key{})
	msg := make([]byte, protocol.InitiationSize)
	if _, err := hs.CreateInitiation(now, 1, msg); err != nil {
		t.Fatal(err)
	}
	protocol.NewCookieGenerator(e.pub()).AddMACs(msg)
	for range n { // one message, over and over: each costs the device as much as a fresh one
		c.WriteTo(msg, e.under)
	}
}

// Under a flood of initiations (valid mac1, from a stranger) the device
// answers with cookie replies instead of doing the handshake's work, and a
// real peer still completes its handshake: its retry carries the cookie's
// mac2. The injected clock keeps the whole flood in one second, however
// slow the machine.
func TestMemCookiesUnderLoad(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	attacker, err := w.net.Host(netip.MustParseAddr("198.51.100.66")).Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()

	st := a.d.Stats()
	handled := func() uint64 {
		return st.UnknownPeer.Load() + st.CookiesSent.Load() + st.RateLimited.Load() + st.HandshakesDropped.Load()
	}
	const flood = underLoadRate + 100
	floodInitiations(t, attacker, a, w.clock.Now(), flood)
	eventually(t, "the flood handled", func() bool { return handled() >= flood })
	if st.CookiesSent.Load() == 0 || st.UnknownPeer.Load() > underLoadRate {
		t.Fatalf("a flood of %d in one second: %d cookies, %d handshakes done for a stranger",
			flood, st.CookiesSent.Load(), st.UnknownPeer.Load())
	}
	if st.CookiesSent.Load() > cookieBurst+1 {
		t.Errorf("%d cookie replies to one source in one second, want at most %d", st.CookiesSent.Load(), cookieBurst+1)
	}
	reply, err := attacker.ReadFrom(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := protocol.MessageType(reply.Data); typ != protocol.TypeCookieReply {
		t.Errorf("the flood was answered with type %d, want a cookie reply", typ)
	}

	// b starts a handshake while a is under load: b gets a cookie, and its
	// retry (RekeyTimeout later) passes mac2 while the flood goes on.
	cookiesBefore := st.CookiesSent.Load()
	udpIn(t, b, a, "through the flood")
	eventually(t, "b's initiation answered with a cookie", func() bool { return st.CookiesSent.Load() > cookiesBefore })
	for i := 0; b.peer(a).lastHS.Load() == 0; i++ {
		if i == 200 {
			t.Fatalf("no handshake for b after %v of flood", 200*100*time.Millisecond)
		}
		floodInitiations(t, attacker, a, w.clock.Now(), underLoadRate/6) // over underLoadRate a second
		w.clock.Advance(100 * time.Millisecond)
		time.Sleep(time.Millisecond) // let a read the flood before the next tick
	}
	expectUDP(t, a, "through the flood")
	if st.RateLimited.Load() == 0 {
		t.Error("the flood's cookie replies were not rate limited")
	}
}

// Garbage, truncated, forged and replayed messages are dropped, counted and
// never answered, and the tunnel keeps working.
func TestMemHostileInput(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	var last atomic.Pointer[[]byte] // the last data message a received from b
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	w.net.SetFilter(func(p *memnet.Packet) bool {
		if typ, _ := protocol.MessageType(p.Data); typ == protocol.TypeTransport && p.Src == b.under && len(p.Data) > 32 {
			c := bytes.Clone(p.Data)
			last.Store(&c)
		}
		return true
	})
	connect(t, a, b, 0, false)
	connect(t, b, a, 0, false)
	udpIn(t, b, a, "hello")
	expectUDP(t, a, "hello")

	c, err := w.net.Host(netip.MustParseAddr("198.51.100.66")).Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := a.d.Stats()
	send := func(msg []byte) { c.WriteTo(msg, a.under) }
	for n := 0; n < 200; n += 7 {
		g := make([]byte, n)
		rand.Read(g)
		send(g)
	}
	for typ := uint32(1); typ <= 4; typ++ {
		m := make([]byte, 20)
		binary.LittleEndian.PutUint32(m, typ)
		send(m)
	}
	forged := make([]byte, protocol.InitiationSize)
	rand.Read(forged)
	binary.LittleEndian.PutUint32(forged, protocol.TypeInitiation)
	send(forged)
	tr := make([]byte, 64)
	rand.Read(tr)
	binary.LittleEndian.PutUint32(tr, protocol.TypeTransport)
	send(tr)
	// A real message of b's, replayed, and the same with a flipped bit.
	data := *last.Load()
	send(data)
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1
	send(bad)
	counted := func() bool {
		return st.Malformed.Load() >= 20 && st.BadMAC.Load() >= 1 && st.UnknownIndex.Load() >= 1 &&
			st.Replayed.Load() >= 1 && st.BadPacket.Load() >= 1
	}
	for deadline := time.Now().Add(10 * time.Second); !counted(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not everything counted: malformed %d, bad mac %d, unknown index %d, replayed %d, bad packet %d",
				st.Malformed.Load(), st.BadMAC.Load(), st.UnknownIndex.Load(), st.Replayed.Load(), st.BadPacket.Load())
		}
	}
	if _, err := func() (memnet.Packet, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return c.ReadFrom(ctx)
	}(); err == nil {
		t.Error("garbage was answered")
	}
	if ep := a.peer(b).endpoint.Load(); *ep != b.under {
		t.Errorf("a replay from elsewhere moved b's endpoint to %v", *ep)
	}
	expectNothing(t, a, "a replayed message")
	udpIn(t, b, a, "still here")
	expectUDP(t, a, "still here")
}

// macOf returns a locally administered MAC ending in n.
func macOf(n byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, n} }

// expectFrame reads e's device until a frame with payload arrives.
func expectFrame(t testing.TB, e *memEnd, payload string) {
	t.Helper()
	ctx := testCtx(t)
	for {
		f, err := e.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("%s: frame %q never arrived: %v", e.d.Name(), payload, err)
		}
		if len(f) >= 14 && string(f[14:]) == payload {
			return
		}
	}
}

// A TAP hub switches frames between spokes like a learning switch: an
// unknown destination is flooded to every other port, a learned one goes
// to its port alone; frames of the other mode are counted, not delivered.
func TestMemTapHub(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	hub := w.start(t, "hub", tun.ModeTAP, "192.0.2.1:51820", "")
	s := []*memEnd{
		w.start(t, "s1", tun.ModeTAP, "192.0.2.11:51820", ""),
		w.start(t, "s2", tun.ModeTAP, "192.0.2.12:51820", ""),
		w.start(t, "s3", tun.ModeTAP, "192.0.2.13:51820", ""),
	}
	for _, e := range s {
		connect(t, hub, e, 0, false)
		connect(t, e, hub, 0, false)
	}
	send := func(from *memEnd, dst, src [6]byte, payload string) {
		t.Helper()
		if err := from.dev.Send(testCtx(t), memnet.Frame(dst, src, 0x88b5, []byte(payload))); err != nil {
			t.Fatal(err)
		}
	}
	m1, m2 := macOf(1), macOf(2)
	// s1's host to m2, unknown yet: flooded to the hub's tap, s2 and s3.
	send(s[0], m2, m1, "who is m2")
	for _, e := range []*memEnd{hub, s[1], s[2]} {
		expectFrame(t, e, "who is m2")
	}
	// m2 answers from s2: the hub learned m1 at s1, so only s1 gets it.
	send(s[1], m1, m2, "m2 here")
	expectFrame(t, s[0], "m2 here")
	// Now m2 is learned too: s1 -> m2 goes to s2 alone.
	send(s[0], m2, m1, "unicast")
	expectFrame(t, s[1], "unicast")
	eventually(t, "the hub's table", func() bool { return len(hub.d.Info().(Info).MACs) == 2 })
	expectNothing(t, s[2], "a learned unicast")
	expectNothing(t, hub, "a learned unicast")
	// A broadcast from the hub's own host reaches every spoke.
	send(hub, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macOf(9), "to all")
	for _, e := range s {
		expectFrame(t, e, "to all")
	}

	// A TUN peer of a TAP device: its packets are counted as the other
	// mode and never reach the tap.
	tunPeer := w.start(t, "tun", tun.ModeTUN, "192.0.2.20:51820", "10.9.0.20")
	hub.inner = netip.MustParseAddr("10.9.0.1")
	connect(t, hub, tunPeer, 0, true)
	connect(t, tunPeer, hub, 0, false)
	udpIn(t, tunPeer, hub, "an IP packet")
	eventually(t, "the mismatch counted", func() bool { return hub.d.Stats().ModeMismatch.Load() > 0 })
	expectNothing(t, hub, "a packet of the other mode")
}

// A packet that b sends before it knows where a is waits; when a's
// handshake and first data message confirm the session at b, b sends what
// waited (as wireguard-go does).
func TestMemStagedSentWhenResponderConfirms(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	connect(t, a, b, 0, false) // a knows b's endpoint
	connect(t, b, a, 0, true)  // b does not know a's
	udpIn(t, b, a, "early from b")
	eventually(t, "b's packet staged", func() bool {
		p := b.peer(a)
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.staged) > 0
	})
	udpIn(t, a, b, "from a")
	expectUDP(t, b, "from a")
	expectUDP(t, a, "early from b")
}

// A packet that the TUN reader had already routed to a peer when the peer
// was removed starts nothing: no handshake, no index entry, nothing staged.
func TestMemRemovedPeerStartsNothing(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	connect(t, a, b, 0, false)
	p := a.peer(b)
	if err := a.d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: b.pub(), Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, tun.Headroom+tun.MaxPacket)
	buf[protocol.TransportHeaderSize] = 0x45
	p.sendPacket(buf, 20, nil)
	a.d.indices.mu.RLock()
	n := len(a.d.indices.m)
	a.d.indices.mu.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n != 0 || p.hsIndex != 0 || len(p.staged) != 0 {
		t.Errorf("after removal: %d index entries, hsIndex %d, %d packets staged", n, p.hsIndex, len(p.staged))
	}
}

// A peer that stopped answering (its host gone) costs the others nothing:
// its retries go on by the clock while traffic to another peer flows.
func TestMemSilentPeerBlocksNoOne(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	var seen watch
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	gone := &memEnd{under: netip.MustParseAddrPort("192.0.2.99:51820"), inner: netip.MustParseAddr("10.9.0.99")}
	gone.key, _ = protocol.GeneratePrivateKey() // a peer whose host is gone: nothing listens at its endpoint
	var toGone atomic.Int64                     // initiations to the silent peer
	w.net.SetFilter(func(p *memnet.Packet) bool {
		if typ, _ := protocol.MessageType(p.Data); typ == protocol.TypeInitiation && p.Dst == gone.under {
			toGone.Add(1)
		}
		return seen.filter(p)
	})
	connect(t, a, b, 0, false)
	connect(t, b, a, 0, false)
	connect(t, a, gone, 0, false)
	udpIn(t, a, gone, "into the void")
	eventually(t, "an initiation to the silent peer", func() bool { return seen.n[protocol.TypeInitiation].Load() >= 1 })
	for range 5 {
		w.clock.Advance(protocol.RekeyTimeout + time.Second)
		udpIn(t, a, b, "still flowing")
		expectUDP(t, b, "still flowing")
	}
	if n := toGone.Load(); n < 5 {
		t.Errorf("%d initiations to the silent peer in 5 RekeyTimeouts: its retries stopped", n)
	}
	if w.net.Lost.Load() == 0 {
		t.Error("nothing was sent to the silent peer's address")
	}
}

// With only persistent keepalives flowing, the initiator still rekeys at
// RekeyAfterTime (keepalives keep keys fresh, as in wireguard-go): by the
// time the clock stands one keepalive interval past it, a new handshake
// was made.
func TestMemKeepalivesAloneRekey(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	connect(t, b, a, 0, true)
	connect(t, a, b, 25, false) // a's persistent keepalive starts the handshake
	eventually(t, "the first handshake", func() bool { return a.peer(b).lastHS.Load() != 0 })
	first := a.peer(b).lastHS.Load()
	w.clock.Advance(protocol.RekeyAfterTime + 26*time.Second)
	for deadline := time.Now().Add(10 * time.Second); a.peer(b).lastHS.Load() == first; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no rekey with only keepalives flowing; a: %+v; b: %+v; lost %d", a.d.Info().(Info).Counters, b.d.Info().(Info).Counters, w.net.Lost.Load())
		}
	}
	if got := time.Duration(a.peer(b).lastHS.Load() - first); got < protocol.RekeyAfterTime {
		t.Errorf("rekeyed %v after the first handshake, before RekeyAfterTime", got)
	}
}

// Every counter of Stats is in Info's counters, under the names status
// and scripts have always read.
func TestStatsMap(t *testing.T) {
	t.Parallel()
	var s Stats
	s.GSOSends.Add(3)
	m := s.Map()
	for _, name := range []string{"malformed", "bad_mac", "cookies_sent", "rate_limited", "unknown_peer", "bad_handshake",
		"unknown_index", "bad_packet", "replayed", "source_mismatch", "no_route", "no_endpoint", "mode_mismatch", "too_big",
		"mss_clamped", "gso_sends", "gro_receives", "frag_malformed", "frag_duplicate", "frag_overlap", "frag_mismatch",
		"frag_timed_out", "fragmented", "fragments_sent", "reassembled", "icmp_too_big", "ip_fragmented", "probes_sent",
		"probe_replies", "streams_accepted", "streams_dialed", "stream_junk", "stream_dropped"} {
		if _, ok := m[name]; !ok {
			t.Errorf("no counter %q in %v", name, m)
		}
	}
	if n := reflect.TypeFor[Stats]().NumField(); len(m) != n {
		t.Errorf("%d counters for %d fields of Stats", len(m), n)
	}
	if m["gso_sends"] != 3 {
		t.Errorf("gso_sends = %d, want 3", m["gso_sends"])
	}
}
