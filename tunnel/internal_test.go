package tunnel

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// setEndpoint runs for every received data packet: it must not allocate
// when the endpoint is unchanged.
func TestSetEndpointNoAlloc(t *testing.T) {
	p := &Peer{dev: &Device{}}
	ep := netip.MustParseAddrPort("192.0.2.1:51820")
	p.setEndpoint(ep)
	if n := testing.AllocsPerRun(1000, func() { p.setEndpoint(ep) }); n != 0 {
		t.Errorf("setEndpoint with an unchanged endpoint: %v allocations", n)
	}
}

// An IPv6 endpoint on an IPv4-only socket is refused, not a crash.
func TestIPv6EndpointOnIPv4Socket(t *testing.T) {
	b := &udpBatch{v4: true}
	if b.add([]byte{4}, netip.MustParseAddrPort("[2001:db8::1]:51820")) {
		t.Error("an IPv6 destination was queued on an IPv4 socket")
	}
	if !b.add([]byte{4}, netip.MustParseAddrPort("192.0.2.1:51820")) {
		t.Error("an IPv4 destination was refused")
	}
}

// A packet that the TUN reader had already routed to a peer when the peer
// was removed starts nothing: no handshake, no index entry, nothing staged.
func TestRemovedPeerStartsNothing(t *testing.T) {
	ns := nstest.New(t)
	dev, err := tun.Open(tun.Config{Name: "twr0", NetNS: ns.Name, MTU: 1420})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(dev, Options{NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	priv, _ := protocol.GeneratePrivateKey()
	other, _ := protocol.GeneratePrivateKey()
	pk := other.PublicKey()
	ep := netip.MustParseAddrPort("192.0.2.99:51820")
	if err := d.Apply(devconf.DeviceConfig{PrivateKey: &priv, Peers: []devconf.PeerConfig{{PublicKey: pk, Endpoint: &ep,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32")}}}}); err != nil {
		t.Fatal(err)
	}
	d.mu.RLock()
	p := d.peers[pk]
	d.mu.RUnlock()
	if err := d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pk, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, tun.Headroom+tun.MaxPacket)
	buf[protocol.TransportHeaderSize] = 0x45
	p.sendPacket(buf, 20, nil)
	d.indices.mu.RLock()
	n := len(d.indices.m)
	d.indices.mu.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n != 0 || p.hsIndex != 0 || len(p.staged) != 0 {
		t.Errorf("after removal: %d index entries, hsIndex %d, %d packets staged", n, p.hsIndex, len(p.staged))
	}
}

// TestCrossingInitiations starts a handshake on both ends at the same
// moment, and gives each end the other's initiation before the response to
// its own: both handshakes complete at once, because a peer answers with a
// responder state of its own and keeps its initiation in flight (with one
// state, each answer would wipe the end's own initiation, both responses
// would fail, and both ends would wait RekeyTimeout to retry).
func TestCrossingInitiations(t *testing.T) {
	ns := nstest.New(t)
	ns.Run("ip", "link", "set", "lo", "up")
	type end struct {
		d    *Device
		key  protocol.Key
		wire *net.UDPConn // stands in for the other end's socket: what this end sends lands here
	}
	mk := func(name string) *end {
		d, k := testDevice(t, ns, name, tun.ModeTUN, 1420)
		e := &end{d: d, key: k}
		if err := ns.Do(func() (err error) {
			e.wire, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.wire.Close() })
		return e
	}
	a, b := mk("twx0"), mk("twx1")
	for _, pair := range [][2]*end{{a, b}, {b, a}} {
		ep := pair[0].wire.LocalAddr().(*net.UDPAddr).AddrPort()
		if err := pair[0].d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pair[1].key.PublicKey(), Endpoint: &ep}}}); err != nil {
			t.Fatal(err)
		}
	}
	peerOf := func(e, other *end) *Peer {
		e.d.mu.RLock()
		defer e.d.mu.RUnlock()
		return e.d.peers[other.key.PublicKey()]
	}
	// read returns the next message of size n that e sent.
	read := func(e *end, n int) []byte {
		t.Helper()
		buf := make([]byte, 2048)
		e.wire.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			m, _, err := e.wire.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%s sent no %d-byte message: %v", e.d.Name(), n, err)
			}
			if m == n {
				return append([]byte(nil), buf[:m]...)
			}
		}
	}
	src := func(e *end) netip.AddrPort { return e.wire.LocalAddr().(*net.UDPAddr).AddrPort() }

	now := time.Now()
	peerOf(a, b).initiate(now, false)
	peerOf(b, a).initiate(now, false)
	initA, initB := read(a, protocol.InitiationSize), read(b, protocol.InitiationSize)
	// Each end answers the other's initiation while its own is in flight.
	a.d.handleMessage(initB, src(a), nil, nil)
	b.d.handleMessage(initA, src(b), nil, nil)
	respA, respB := read(a, protocol.ResponseSize), read(b, protocol.ResponseSize)
	// Each response completes the initiation it answers.
	a.d.handleMessage(respB, src(a), nil, nil)
	b.d.handleMessage(respA, src(b), nil, nil)
	for _, e := range []*end{a, b} {
		st := e.d.Stats()
		if n := st.BadHandshake.Load() + st.UnknownIndex.Load(); n != 0 {
			t.Errorf("%s: %d handshake messages refused", e.d.Name(), n)
		}
	}
	for _, pair := range [][2]*end{{a, b}, {b, a}} {
		p := peerOf(pair[0], pair[1])
		p.mu.Lock()
		current, hsIndex := p.current, p.hsIndex
		p.mu.Unlock()
		if current == nil || !current.Initiator || hsIndex != 0 || p.lastHS.Load() == 0 {
			t.Errorf("%s: its own handshake did not complete (keypair %v, initiation in flight %d)", pair[0].d.Name(), current != nil, hsIndex)
		}
	}
}

// Messages built in a batch's scratch space leave intact and in order even
// when the batch fills up between them: the scratch space is never handed
// out again before the messages in it were sent.
func TestScratchSurvivesFullBatch(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	kc, err := newKernelConn(send)
	if err != nil {
		t.Fatal(err)
	}
	sb := newUDPBatch(kc, 2, 0)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	const want = "abcdefg"
	for i := range len(want) {
		buf := sb.scratch(100)
		if buf == nil {
			sb.flush()
			if buf = sb.scratch(100); buf == nil {
				t.Fatal("no scratch space after a flush")
			}
		}
		buf[0] = want[i]
		sb.add(buf[:1], to)
	}
	sb.flush()
	got := make([]byte, 0, len(want))
	b := make([]byte, 16)
	recv.SetReadDeadline(time.Now().Add(2 * time.Second))
	for len(got) < len(want) {
		n, _, err := recv.ReadFromUDPAddrPort(b)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, b[:n]...)
	}
	if string(got) != want {
		t.Errorf("received %q, sent %q", got, want)
	}
}

// testDevice starts a Device on a new TUN or TAP device in ns, with a new
// private key and a socket on a random port, closed when the test ends.
func testDevice(t *testing.T, ns *nstest.NS, name string, mode tun.Mode, mtu int) (*Device, protocol.Key) {
	t.Helper()
	dev, err := tun.Open(tun.Config{Name: name, Mode: mode, NetNS: ns.Name, MTU: mtu})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(dev, Options{NetNS: ns.Name})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(devconf.DeviceConfig{PrivateKey: &k}); err != nil {
		t.Fatal(err)
	}
	return d, k
}
