package tunnel

// Tests of issue 12's findings, in memory: each failed before its fix.

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// validInitiation returns an initiation from a stranger's key to e, with
// a valid mac1.
func validInitiation(t testing.TB, e *memEnd) []byte {
	t.Helper()
	stranger, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, protocol.InitiationSize)
	hs := protocol.NewHandshake(protocol.NewLocal(stranger), e.pub(), protocol.Key{})
	if _, err := hs.CreateInitiation(time.Now(), 1, msg); err != nil {
		t.Fatal(err)
	}
	protocol.NewCookieGenerator(e.pub()).AddMACs(msg)
	return msg
}

// Handshake messages wait in a bounded queue for the worker; when it is
// full they are dropped and counted, and the reader goes on.
func TestHandshakeQueueBounded(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	msg := validInitiation(t, a)
	src := netip.MustParseAddrPort("198.51.100.1:1000")
	// The worker blocks on the device's lock with the first message.
	a.d.mu.Lock()
	for range handshakeQueueLen + 100 {
		a.d.receive(msg, src, nil, nil)
	}
	if n := len(a.d.hsq.ch); n < underLoadDepth {
		t.Errorf("%d messages queued, want at least %d", n, underLoadDepth)
	}
	// Seconds later (no rate over underLoadRate then, and the load of the
	// burst over), the depth alone puts the device under load.
	if !a.d.underLoad(w.clock.Now().Add(3 * protocol.UnderLoadAfterTime)) {
		t.Error("a deep queue did not put the device under load")
	}
	a.d.mu.Unlock()
	if got := a.d.Stats().HandshakesDropped.Load(); got < 99 || got > 100 {
		t.Errorf("%d handshake messages dropped of %d over a queue of %d", got, handshakeQueueLen+100, handshakeQueueLen)
	}
	memnet.WaitZero(&a.d.hsq.pending, nil)
}

// Rate limits count an IPv6 /64 as one source, as the kernel does: a host
// has a /64 of addresses to send from.
func TestRateLimitIPv6Prefix(t *testing.T) {
	t.Parallel()
	r := newRateLimiter(20, 10)
	now := time.Now()
	base := netip.MustParseAddr("2001:db8:1:2::")
	allowed := 0
	for i := range 100 {
		a := base.As16()
		a[15], a[14] = byte(i), byte(i>>8)
		a[8] = byte(i * 7)
		if r.allow(netip.AddrFrom16(a), now) {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("%d of 100 messages from one /64 allowed at once, want the burst of 10", allowed)
	}
	if !r.allow(netip.MustParseAddr("2001:db8:1:3::1"), now) {
		t.Error("another /64 was limited too")
	}
	if !r.allow(netip.MustParseAddr("192.0.2.7"), now) || !r.allow(netip.MustParseAddr("192.0.2.8"), now) {
		t.Error("IPv4 addresses are each their own source")
	}
}

// Finding 2: the private key removed while initiations are handled: no
// panic, and once the key is back, the tunnel works.
func TestKeyRemovedUnderFlood(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	msg := validInitiation(t, a)
	src := netip.MustParseAddrPort("198.51.100.1:1000")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a.d.handleMessage(msg, src, nil, nil) // on this goroutine: races with Apply
			}
		}()
	}
	zero := protocol.Key{}
	for range 300 {
		if err := a.d.Apply(devconf.DeviceConfig{PrivateKey: &zero}); err != nil {
			t.Fatal(err)
		}
		if err := a.d.Apply(devconf.DeviceConfig{PrivateKey: &a.key}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	w.clock.Advance(time.Second) // a fresh second: the flood's load is over
	udpIn(t, b, a, "after the flood")
	expectUDP(t, a, "after the flood")
}

// Finding 3: Apply is all or nothing. A port that cannot be bound leaves the
// key, the port, the fwmark and the sessions as they were.
func TestApplyAllOrNothing(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	udpIn(t, a, b, "before")
	expectUDP(t, b, "before")
	busy, err := w.net.Host(a.under.Addr()).Listen(6000)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	newKey, _ := protocol.GeneratePrivateKey()
	port, mark := uint16(6000), uint32(7)
	err = a.d.Apply(devconf.DeviceConfig{PrivateKey: &newKey, ListenPort: &port, FwMark: &mark})
	var de *devconf.Error
	if !errors.As(err, &de) || de.Code() != syscall.EADDRINUSE {
		t.Fatalf("Apply with a busy port: %v, want EADDRINUSE", err)
	}
	st := a.d.Status()
	if !st.PrivateKey.Equal(a.key) || st.ListenPort != a.under.Port() || st.FwMark != 0 {
		t.Errorf("after a failed Apply: key changed %v, port %d, fwmark %d", !st.PrivateKey.Equal(a.key), st.ListenPort, st.FwMark)
	}
	p := a.peer(b)
	p.mu.Lock()
	current := p.current
	p.mu.Unlock()
	if current == nil {
		t.Error("a failed Apply dropped the session")
	}
	udpIn(t, a, b, "after")
	expectUDP(t, b, "after")
}

// Finding 7: a peer whose key makes no handshake (a low-order point, all
// zeros) is tried once per RekeyTimeout, not once per packet.
func TestLowOrderPeerTriedOncePerTimeout(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	bad := &memEnd{under: netip.MustParseAddrPort("192.0.2.9:51820"), inner: netip.MustParseAddr("10.9.0.9")}
	zeroPub := protocol.Key{} // the all-zero point: every DH with it fails
	if err := a.d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: zeroPub, Endpoint: &bad.under,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(bad.inner, 32)}}}}); err != nil {
		t.Fatal(err)
	}
	a.d.mu.RLock()
	p := a.d.peers[zeroPub]
	a.d.mu.RUnlock()
	if p == nil {
		t.Fatal("no peer with the zero key")
	}
	for range 50 {
		udpIn(t, a, bad, "x")
	}
	a.dev.WaitIdle()
	p.mu.Lock()
	sent := p.hsSent
	p.mu.Unlock()
	if !sent.Equal(w.clock.Now()) {
		t.Errorf("the failed attempt was not recorded (hsSent %v)", sent)
	}
	// Every packet after the first found the attempt recorded: the
	// warning is logged once. (Counting the log: hsSent is what gates it.)
	w.clock.Advance(protocol.RekeyTimeout + time.Second)
	udpIn(t, a, bad, "y")
	a.dev.WaitIdle()
	p.mu.Lock()
	again := p.hsSent
	p.mu.Unlock()
	if !again.After(sent) {
		t.Error("no new attempt after RekeyTimeout")
	}
}

// Finding 8: replay protection of initiations survives a change of the
// private key and back: a captured initiation is refused after it.
func TestReplayProtectionSurvivesKeyChange(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a := w.start(t, "a", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "b", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	var captured []byte
	var mu sync.Mutex
	w.net.SetFilter(func(p *memnet.Packet) bool {
		if typ, _ := protocol.MessageType(p.Data); typ == protocol.TypeInitiation && p.Dst == a.under {
			mu.Lock()
			captured = append([]byte(nil), p.Data...)
			mu.Unlock()
		}
		return true
	})
	connect(t, a, b, 0, false)
	connect(t, b, a, 0, false)
	udpIn(t, b, a, "hello")
	expectUDP(t, a, "hello")
	mu.Lock()
	replay := captured
	mu.Unlock()
	for _, k := range []protocol.Key{{}, a.key} { // removed, then restored
		if err := a.d.Apply(devconf.DeviceConfig{PrivateKey: &k}); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Advance(time.Second)
	before := a.d.Stats().BadHandshake.Load()
	a.d.handleMessage(replay, b.under, nil, nil)
	if a.d.Stats().BadHandshake.Load() == before {
		t.Error("a replayed initiation was accepted after the key changed and changed back")
	}
}

// Finding 9: a responder's keypair that the initiator never confirmed is
// dropped once RejectAfterTime old, even when no handshake ever completed.
func TestUnconfirmedKeypairExpires(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	// a's responses never reach b: b's handshake never completes, and a
	// holds an unconfirmed keypair.
	w.net.SetFilter(func(p *memnet.Packet) bool { return p.Src != a.under })
	w.clock.Advance(0)
	b.peer(a).initiate(w.clock.Now(), false)
	eventually(t, "a's responder keypair", func() bool {
		p := a.peer(b)
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.next != nil
	})
	if a.peer(b).lastHS.Load() != 0 {
		t.Fatal("a handshake completed")
	}
	b.d.Close() // no more initiations
	w.clock.Advance(protocol.RejectAfterTime + time.Second)
	p := a.peer(b)
	p.mu.Lock()
	next := p.next
	p.mu.Unlock()
	if next != nil {
		t.Error("an unconfirmed keypair outlived RejectAfterTime")
	}
}

// Finding 10: Close lets go of the device, the socket and the keys even
// after the device disappeared (the engine stopped on its own first).
func TestCloseAfterDeviceGone(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	a, b := w.tunPair(t)
	udpIn(t, a, b, "hello")
	expectUDP(t, b, "hello")
	a.dev.Close() // ip link del, as the engine sees it
	select {
	case <-a.d.Done():
	case <-testCtx(t).Done():
		t.Fatal("the engine did not stop when its device went")
	}
	a.d.Close()
	p := a.peer(b)
	p.mu.Lock()
	current := p.current
	p.mu.Unlock()
	if current != nil {
		t.Error("Close after the device went kept the keys")
	}
	c, err := w.net.Host(a.under.Addr()).Listen(a.under.Port())
	if err != nil {
		t.Errorf("Close after the device went kept the socket: %v", err)
	} else {
		c.Close()
	}
}

// Finding 11: a removed peer's frames learn nothing, however late they
// come: its MACs (and its AllowedMACs) go with it.
func TestRemovedPeerLearnsNoMAC(t *testing.T) {
	t.Parallel()
	w := newMemWorld()
	hub := w.start(t, "hub", tun.ModeTAP, "192.0.2.1:51820", "")
	s := w.start(t, "s", tun.ModeTAP, "192.0.2.2:51820", "")
	connect(t, hub, s, 0, false)
	connect(t, s, hub, 0, false)
	p := hub.peer(s)
	if err := hub.d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: s.pub(), Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	// A frame of s's that was on its way when s was removed.
	frame := memnet.Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macOf(5), 0x88b5, []byte("late"))
	out := hub.d.newL2Out(nil, 4)
	wr := newTUNWriter(hub.dev, 4)
	hub.d.switchFrame(frame, p, w.clock.Now(), wr, out)
	wr.flush()
	if v, port := hub.d.sw.Decide(memnet.Frame(macOf(5), macOf(6), 0x88b5, nil), nil, w.clock.Now()); v == l2switch.Unicast && port == p {
		t.Error("the removed peer's MAC was learned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := hub.dev.Recv(ctx); err == nil {
		t.Error("a removed peer's frame was delivered")
	}
}
