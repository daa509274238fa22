package tunnel_test

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

// udpFrom opens a UDP socket in ns for sending crafted datagrams.
func udpFrom(t *testing.T, ns *nstest.NS) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() (err error) { c, err = net.ListenUDP("udp", nil); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectSilence fails if anything arrives on c within d.
func expectSilence(t *testing.T, c *net.UDPConn, d time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 2048)
	if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("%s: got a %d-byte answer from %v; garbage must never be answered", what, n, from)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: read: %v", what, err)
	}
}

// TestGarbageDroppedAndCounted sends garbage, truncated, forged and replayed
// messages to a tapwire listen port: each is dropped, counted, never
// answered, and the tunnel keeps working.
func TestGarbageDroppedAndCounted(t *testing.T) {
	a, b := pair(t)
	transfer(t, a, b, false, 64<<10)
	// Let a's path MTU probes to b finish: the initiation from b's key
	// below moves b's endpoint to the test's socket, where a probe would
	// arrive unasked.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p := peerInfo(t, a, b.pub()); p.Tapwire && p.PathMTUSource == "probe" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's probes of b did not settle: %+v", peerInfo(t, a, b.pub()))
		}
	}

	st := a.dev.Stats()
	c := udpFrom(t, b.ns)
	to := netip.AddrPortFrom(a.under, a.port)
	sendTo := func(msg []byte) {
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	before := *snapshot(st)

	// Random garbage of every size, and truncated messages of each type.
	for n := 0; n < 200; n += 7 {
		g := make([]byte, n)
		rand.Read(g)
		sendTo(g)
	}
	for typ := uint32(1); typ <= 4; typ++ {
		m := make([]byte, 20)
		binary.LittleEndian.PutUint32(m, typ)
		sendTo(m)
	}
	// An initiation with a bad mac1.
	forged := make([]byte, protocol.InitiationSize)
	rand.Read(forged)
	binary.LittleEndian.PutUint32(forged, protocol.TypeInitiation)
	sendTo(forged)
	// A transport message for an index that does not exist, and one for a
	// live index with a forged tag.
	tr := make([]byte, 64)
	rand.Read(tr)
	binary.LittleEndian.PutUint32(tr, protocol.TypeTransport)
	sendTo(tr)
	// A valid initiation from a key the device does not know.
	stranger := protocol.NewLocal(newKey(t))
	hs := protocol.NewHandshake(stranger, a.pub(), protocol.Key{})
	init := make([]byte, protocol.InitiationSize)
	if _, err := hs.CreateInitiation(time.Now(), 1234, init); err != nil {
		t.Fatal(err)
	}
	protocol.NewCookieGenerator(a.pub()).AddMACs(init)
	sendTo(init)
	// A valid initiation from b's key, sent twice: the replay is refused.
	bl := protocol.NewLocal(b.key)
	hs2 := protocol.NewHandshake(bl, a.pub(), protocol.Key{})
	init2 := make([]byte, protocol.InitiationSize)
	if _, err := hs2.CreateInitiation(time.Now(), 5678, init2); err != nil {
		t.Fatal(err)
	}
	protocol.NewCookieGenerator(a.pub()).AddMACs(init2)
	sendTo(init2)
	time.Sleep(100 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(time.Second))
	resp := make([]byte, 256)
	if n, _, err := c.ReadFromUDPAddrPort(resp); err != nil || n != protocol.ResponseSize {
		t.Fatalf("a valid initiation from a known key was not answered: %d, %v", n, err)
	}
	sendTo(init2) // replayed: same timestamp
	expectSilence(t, c, 500*time.Millisecond, "garbage, forgeries and a replayed initiation")

	after := snapshot(st)
	if after.Malformed-before.Malformed < 20 {
		t.Errorf("malformed counted %d", after.Malformed-before.Malformed)
	}
	if after.BadMAC-before.BadMAC < 1 {
		t.Errorf("bad mac1 not counted: %+v", after)
	}
	if after.UnknownPeer-before.UnknownPeer != 1 {
		t.Errorf("unknown peer counted %d", after.UnknownPeer-before.UnknownPeer)
	}
	if after.BadHandshake-before.BadHandshake < 1 {
		t.Errorf("replayed initiation not counted: %+v", after)
	}
	if after.UnknownIndex-before.UnknownIndex < 1 {
		t.Errorf("unknown index not counted: %+v", after)
	}
	// The forged initiation from b's key made a responder keypair that b
	// never uses; the real tunnel still works.
	transfer(t, a, b, false, 256<<10)
	transfer(t, b, a, false, 256<<10)
}

type counters struct {
	Malformed, BadMAC, UnknownPeer, BadHandshake, UnknownIndex, BadPacket, Replayed uint64
}

func snapshot(s *tunnel.Stats) *counters {
	return &counters{s.Malformed.Load(), s.BadMAC.Load(), s.UnknownPeer.Load(), s.BadHandshake.Load(),
		s.UnknownIndex.Load(), s.BadPacket.Load(), s.Replayed.Load()}
}

// TestReplayedTransportDropped captures a real data message on the wire and
// sends it again: it is counted as replayed and not delivered.
func TestReplayedTransportDropped(t *testing.T) {
	a, b := pair(t)
	transfer(t, b, a, false, 1024) // handshake done

	data := captureData(t, a, b, protocol.TypeTransport)
	before := a.dev.Stats().Replayed.Load()
	c := udpFrom(t, b.ns)
	c.WriteToUDPAddrPort(data, netip.AddrPortFrom(a.under, a.port))
	time.Sleep(200 * time.Millisecond)
	if got := a.dev.Stats().Replayed.Load() - before; got != 1 {
		t.Errorf("replayed data message counted %d times", got)
	}
}

// captureData captures on a's veth, and returns, one data message of type
// typ (protocol.TypeTransport or TypeFrame, not a keepalive) that b sends
// while it moves a little TCP to a.
func captureData(t *testing.T, a, b *host, typ uint32) []byte {
	t.Helper()
	fd := packetSocket(t, a.ns, "twva")
	go func() {
		time.Sleep(100 * time.Millisecond)
		transfer(t, b, a, false, 1024)
	}()
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if payload, ok := udpPayload(buf[:n], a.port); ok && len(payload) > protocol.TransportOverhead {
			if got, _ := protocol.MessageType(payload); got == typ {
				time.Sleep(200 * time.Millisecond) // the transfer ends
				return append([]byte(nil), payload...)
			}
		}
	}
	t.Fatalf("captured no data message of type %#x", typ)
	return nil
}

// packetSocket opens a cooked AF_PACKET socket (IP packets) on link in ns.
func packetSocket(t *testing.T, ns *nstest.NS, link string) int {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd
}

// udpPayload returns the payload of an IPv4 UDP packet to port.
func udpPayload(p []byte, port uint16) ([]byte, bool) {
	if len(p) < 28 || p[0]>>4 != 4 || p[9] != 17 {
		return nil, false
	}
	ihl := int(p[0]&15) * 4
	if len(p) < ihl+8 || binary.BigEndian.Uint16(p[ihl+2:]) != port {
		return nil, false
	}
	return p[ihl+8:], true
}

// TestKeepalivesOnTheWire sets a persistent keepalive of one second and
// counts the 32-byte keepalive messages on the wire of an idle tunnel.
func TestKeepalivesOnTheWire(t *testing.T) {
	na, nb := wire(t)
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	peer(t, b, a, protocol.Key{}, 0, false)
	peer(t, a, b, protocol.Key{}, 1, false) // handshake and keepalives start now
	fd := packetSocket(t, nb, "twvb")
	keepalives := 0
	for end := time.Now().Add(3500 * time.Millisecond); time.Now().Before(end); {
		buf := make([]byte, 2048)
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if payload, ok := udpPayload(buf[:n], b.port); ok && len(payload) == protocol.TransportOverhead && payload[0] == protocol.TypeTransport {
			keepalives++
		}
	}
	if keepalives < 2 {
		t.Errorf("%d keepalives in 3.5 s with a 1 s persistent keepalive", keepalives)
	}
}

// TestRoamingBehindNAT puts b behind a masquerading middle namespace that a
// cannot reach, and changes b's NAT mapping mid-transfer (b moves to another
// port, so the NAT picks a new one): a follows b's authenticated packets to
// the new endpoint and the transfer completes intact.
func TestRoamingBehindNAT(t *testing.T) {
	if _, err := execLookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables; the README's test command installs it)")
	}
	na, nm, nb := nstest.New(t), nstest.New(t), nstest.New(t)
	na.Link(nm, "twva", "twvm", []string{"192.0.2.1/24"}, []string{"192.0.2.254/24"})
	nm.Link(nb, "twvn", "twvb", []string{"10.99.0.1/24"}, []string{"10.99.0.2/24"})
	nm.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	nm.Run("nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname twvm masquerade random")
	nb.Run("ip", "route", "add", "default", "via", "10.99.0.1")

	a := startTapwire(t, na, "twa0", netip.MustParseAddr("192.0.2.1"), 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", netip.MustParseAddr("10.99.0.2"), 51002, tunnel.Timers{}, inB4)
	peer(t, a, b, protocol.Key{}, 0, true) // a cannot know b's address
	peer(t, b, a, protocol.Key{}, 1, false)
	transfer(t, b, a, false, 64<<10)
	ep1 := a.dev.Status().Peers[0].Endpoint
	if ep1.Addr() != netip.MustParseAddr("192.0.2.254") {
		t.Fatalf("a sees b at %v, want the NAT's address", ep1)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		port := uint16(51003)
		if err := b.dev.Apply(devconf.DeviceConfig{ListenPort: &port}); err != nil {
			t.Error(err)
		}
	}()
	transfer(t, a, b, false, 32<<20) // a sends to b during the move
	<-done
	transfer(t, a, b, false, 1<<20)
	ep2 := a.dev.Status().Peers[0].Endpoint
	if ep2 == ep1 {
		t.Errorf("a still sends to %v after b moved", ep1)
	}
	t.Logf("b's endpoint as a sees it: %v, then %v", ep1, ep2)
}

func execLookPath(name string) (string, error) {
	for _, dir := range strings.Split(os.Getenv("PATH")+":/usr/sbin:/sbin", ":") {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(name + " not found")
}

// TestPeersAddedAndRemovedUnderTraffic adds a second peer and removes it
// with wg set while data flows to the first.
func TestPeersAddedAndRemovedUnderTraffic(t *testing.T) {
	requireWG(t)
	na, nb := wire(t)
	nc := nstest.New(t)
	na.Link(nc, "twvc", "twvd", []string{"203.0.113.1/24"}, []string{"203.0.113.2/24"})
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	c := startTapwire(t, nc, "twc0", netip.MustParseAddr("203.0.113.2"), 51003, tunnel.Timers{}, netip.MustParsePrefix("198.51.100.3/24"))
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 0, false)
	aForC := *a
	aForC.under = netip.MustParseAddr("203.0.113.1")
	peer(t, c, &aForC, protocol.Key{}, 0, false)

	flowing := make(chan struct{})
	go func() {
		defer close(flowing)
		transfer(t, a, b, false, 24<<20)
	}()
	time.Sleep(100 * time.Millisecond)
	na.Run("wg", "set", "twa0", "peer", c.pub().String(), "allowed-ips", "198.51.100.3/32", "endpoint", "203.0.113.2:51003")
	transfer(t, a, c, false, 256<<10)
	na.Run("wg", "set", "twa0", "peer", c.pub().String(), "remove")
	<-flowing
	if peers := a.dev.Status().Peers; len(peers) != 1 || !peers[0].PublicKey.Equal(b.pub()) {
		t.Errorf("after removing c: %d peers", len(peers))
	}
	if _, err := na.Output("ping", "-c", "1", "-W", "1", "198.51.100.3"); err == nil {
		t.Error("c still reachable after its removal")
	}
	_ = strconv.Itoa
}

// TestCookiesUnderLoad floods a tapwire listen port with initiations that
// carry a valid mac1 (anyone who knows the public key can make them): the
// device goes under load and answers with cookie replies instead of
// spending Curve25519 work, and a real peer still gets through by echoing
// its cookie in mac2.
func TestCookiesUnderLoad(t *testing.T) {
	a, b := pair(t)
	c := udpFrom(t, b.ns)
	to := netip.AddrPortFrom(a.under, a.port)
	stranger := protocol.NewLocal(newKey(t))
	hs := protocol.NewHandshake(stranger, a.pub(), protocol.Key{})
	gen := protocol.NewCookieGenerator(a.pub())
	msg := make([]byte, protocol.InitiationSize)
	// Bursts of 300 until the device is under load (more than it takes a
	// second) and a cookie reply comes back to the flooder: on a loaded
	// machine one burst may be spread over two seconds.
	buf := make([]byte, 256)
	var n int
	var err error
	for burst := 0; ; burst++ {
		for i := 0; i < 300; i++ {
			if _, err := hs.CreateInitiation(time.Now(), uint32(burst*300+i+1), msg); err != nil {
				t.Fatal(err)
			}
			gen.AddMACs(msg)
			c.WriteToUDPAddrPort(msg, to)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _, err = c.ReadFromUDPAddrPort(buf); err == nil || burst == 9 {
			break
		}
	}
	if err != nil || n != protocol.CookieReplySize || buf[0] != protocol.TypeCookieReply {
		t.Fatalf("no cookie reply under load after ten bursts: %d bytes, %v", n, err)
	}
	if a.dev.Stats().CookiesSent.Load() == 0 {
		t.Error("CookiesSent not counted")
	}
	// Keep the device under load while b makes its first handshake: b gets
	// a cookie, and its retry with mac2 is accepted.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			hs.CreateInitiation(time.Now(), 7, msg)
			gen.AddMACs(msg)
			c.WriteToUDPAddrPort(msg, to)
		}
	}()
	transfer(t, b, a, false, 64<<10)
	if got := b.dev.Status().Peers[0].LastHandshake; got.IsZero() {
		t.Error("b has no handshake")
	}
}
