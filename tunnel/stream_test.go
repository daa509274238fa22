//go:build linux

package tunnel_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

// listenTCP makes h accept tunnel streams on port.
func listenTCP(t testing.TB, h *host, port uint16) {
	t.Helper()
	if err := h.dev.Apply(devconf.DeviceConfig{ListenTCP: &port}); err != nil {
		t.Fatal(err)
	}
}

// setTransport sets how h reaches its peer other.
func setTransport(t testing.TB, h, other *host, transport string) {
	t.Helper()
	tr, err := devconf.ParseTransport(transport)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.dev.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: other.pub(), UpdateOnly: true, Transport: &tr}}}); err != nil {
		t.Fatal(err)
	}
}

// waitStream waits up to 15 s for h's peer other to be reached by a stream
// (want true) or over UDP (false), and returns the peer's status.
func waitStream(t testing.TB, h, other *host, want bool) tunnel.PeerInfo {
	t.Helper()
	var p tunnel.PeerInfo
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p = peerInfo(t, h, other.pub()); (p.Stream != "") == want {
			return p
		}
	}
	t.Fatalf("%s: peer reached by %q, want a stream: %v", h.name, p.Stream, want)
	return p
}

// TestStreamTransport runs a tunnel over TCP only: the client dials the
// server's ListenTCP at its endpoint, both ends reach each other by the
// stream, and ping and TCP go through, both families.
func TestStreamTransport(t *testing.T) {
	pingtest.Require(t)
	a, b := pair(t)
	listenTCP(t, b, b.port)
	setTransport(t, a, b, "tcp")
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
	pa, pb := waitStream(t, a, b, true), waitStream(t, b, a, true)
	if !strings.HasPrefix(pa.Stream, "tcp to ") || !strings.HasPrefix(pb.Stream, "tcp from ") || pa.Transport != "tcp" {
		t.Errorf("streams: a %q (%s), b %q", pa.Stream, pa.Transport, pb.Stream)
	}
	transfer(t, a, b, false, 8<<20)
	transfer(t, b, a, false, 8<<20)
	pingtest.Ping(t, b.ns, inA4.Addr().String(), 3, 1392)
	if in := info(t, b); in.ListenTCP != b.port || in.Counters["streams_accepted"] == 0 {
		t.Errorf("server: listen_tcp %d, counters %v", in.ListenTCP, in.Counters)
	}
	if n := info(t, a).Counters["streams_dialed"]; n != 1 {
		t.Errorf("client dialed %d streams, want 1", n)
	}
}

// udpBlocker makes the router rns able to drop the UDP it forwards
// (nftables), and returns a function that blocks (true) or unblocks it.
func udpBlocker(t *testing.T, rns *nstest.NS) func(bool) {
	rns.Run("nft", "add table inet twblock; add chain inet twblock twfwd { type filter hook forward priority 0; }")
	return func(block bool) {
		if block {
			rns.Run("nft", "add rule inet twblock twfwd meta l4proto udp drop")
		} else {
			rns.Run("nft", "flush chain inet twblock twfwd")
		}
	}
}

// TestAutoTransport blocks UDP between a client whose Transport is auto and
// its server: the client moves to TCP on the same address and port and the
// tunnel works; UDP allowed again, it moves back to UDP, keeping the
// session; blocked again, it moves to TCP again; and it does not flap
// while nothing changes.
func TestAutoTransport(t *testing.T) {
	pingtest.Require(t)
	timers := tunnel.Timers{TransportFallback: 2 * time.Second, UDPRetry: time.Second}
	na, rns, nb := nstest.New(t), nstest.New(t), nstest.New(t)
	rns.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	na.Link(rns, "ar", "ra", []string{"198.18.40.2/24"}, []string{"198.18.40.1/24"})
	rns.Link(nb, "rb", "vb", []string{"198.18.41.1/24"}, []string{"198.18.41.2/24"})
	na.Run("ip", "route", "add", "default", "via", "198.18.40.1")
	nb.Run("ip", "route", "add", "default", "via", "198.18.41.1")
	block := udpBlocker(t, rns)
	block(true)
	a := startTapwire(t, na, "twa0", netip.MustParseAddr("198.18.40.2"), 51001, timers, inA4)
	b := startTapwire(t, nb, "twb0", netip.MustParseAddr("198.18.41.2"), 51002, timers, inB4)
	listenTCP(t, b, b.port)
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 0, true)
	setTransport(t, a, b, "auto")

	pingUntil(t, a.ns, inB4.Addr().String(), 30*time.Second) // the fallback
	pa := waitStream(t, a, b, true)
	if pa.ToTCP != 1 {
		t.Errorf("moves to TCP %d, want 1", pa.ToTCP)
	}
	transfer(t, a, b, false, 4<<20)
	iperf3(t, na, nb, inB4.Addr())
	hs := peerInfo(t, a, b.pub()).LastHandshake

	block(false)
	pa = waitStream(t, a, b, false)
	waitStream(t, b, a, false)
	if pa.ToUDP != 1 {
		t.Errorf("moves back to UDP %d, want 1", pa.ToUDP)
	}
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
	transfer(t, b, a, false, 1<<20)
	if now := peerInfo(t, a, b.pub()).LastHandshake; now != hs {
		t.Errorf("a new handshake came with the move back (%d, was %d): the session should survive it", now, hs)
	}
	// Nothing changes for a while: no move either way.
	time.Sleep(3 * time.Second)
	if p := peerInfo(t, a, b.pub()); p.ToTCP != 1 || p.ToUDP != 1 || p.Stream != "" {
		t.Errorf("flapping: %d moves to TCP, %d back, stream %q", p.ToTCP, p.ToUDP, p.Stream)
	}

	block(true)
	pingUntil(t, a.ns, inB4.Addr().String(), 60*time.Second) // traffic finds UDP gone, and moves
	if p := waitStream(t, a, b, true); p.ToTCP != 2 {
		t.Errorf("moves to TCP %d, want 2", p.ToTCP)
	}
}

// pingUntil pings dst from ns, once every 200 ms, until an answer comes,
// and fails the test if none came within d.
func pingUntil(t *testing.T, ns *nstest.NS, dst string, d time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		if _, err := ns.Output("ping", "-n", "-c", "1", "-W", "1", dst); err == nil {
			t.Logf("%s answered after %v", dst, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > d {
			t.Fatalf("no answer from %s within %v", dst, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStreamsHostileClients opens streams to a server's ListenTCP that
// send garbage, half a message, or nothing: each is closed within the
// bound, and a real client's stream works all the while.
func TestStreamsHostileClients(t *testing.T) {
	pingtest.Require(t)
	a, b := pair(t)
	listenTCP(t, b, b.port)
	setTransport(t, a, b, "tcp")
	var conns []net.Conn
	dial := func() net.Conn {
		var c net.Conn
		if err := a.ns.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(b.under, b.port).String(), 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		t.Cleanup(func() { c.Close() })
		return c
	}
	garbage := make([]byte, 3000)
	rand.Read(garbage)
	dial().Write(garbage)                                // garbage
	dial().Write([]byte{0x05, 0xdc, 1, 2, 3})            // half of a 1500-byte message
	dial()                                               // nothing
	dial().Write([]byte{0, 148, 1, 0, 0, 0, 7, 7, 7, 7}) // the start of an initiation
	start := time.Now()
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
	transfer(t, a, b, false, 2<<20)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("a hostile stream is still open after %v", time.Since(start))
				}
				break
			}
		}
	}
	t.Logf("hostile streams closed within %v", time.Since(start).Round(100*time.Millisecond))
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := info(t, b).Counters["stream_junk"]
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("stream_junk %d, want the 4 hostile streams counted", n)
			break
		}
	}
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
}

// TestStreamManyClients runs three clients over TCP into one server's
// ListenTCP, all at once.
func TestStreamManyClients(t *testing.T) {
	pingtest.Require(t)
	sns := nstest.New(t)
	srv := startTapwire(t, sns, "twsrv", netip.MustParseAddr("198.18.50.1"), 51000, tunnel.Timers{}, netip.MustParsePrefix("198.51.100.1/24"))
	listenTCP(t, srv, srv.port)
	var clients []*host
	for i := 1; i <= 3; i++ {
		cns := nstest.New(t)
		sAddr, cAddr := netip.MustParseAddr(fmt.Sprintf("198.18.5%d.1", i)), netip.MustParseAddr(fmt.Sprintf("198.18.5%d.2", i))
		sns.Link(cns, fmt.Sprintf("sv%d", i), fmt.Sprintf("cv%d", i), []string{sAddr.String() + "/24"}, []string{cAddr.String() + "/24"})
		c := startTapwire(t, cns, fmt.Sprintf("twc%d", i), cAddr, 51000+uint16(i), tunnel.Timers{}, netip.MustParsePrefix(fmt.Sprintf("198.51.100.1%d/24", i)))
		peer(t, srv, c, protocol.Key{}, 0, true)
		srv.under = sAddr
		peer(t, c, srv, protocol.Key{}, 0, false)
		setTransport(t, c, srv, "tcp")
		clients = append(clients, c)
	}
	errs := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			_, err := c.ns.Output("ping", "-n", "-c", "5", "-i", "0.1", "-W", "3", "198.51.100.1")
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, c := range clients {
		transfer(t, c, srv, false, 1<<20)
		waitStream(t, srv, c, true)
	}
	if n := info(t, srv).Counters["streams_accepted"]; n != 3 {
		t.Errorf("server accepted %d streams, want 3", n)
	}
}

// TestStreamServerRestart restarts the server under traffic: the client's
// stream breaks, it dials again with backoff, makes a new handshake at
// once, and the traffic goes on.
func TestStreamServerRestart(t *testing.T) {
	pingtest.Require(t)
	a, b := pair(t)
	listenTCP(t, b, b.port)
	setTransport(t, a, b, "tcp")
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
	done := make(chan struct{})
	go func() { // traffic all through the restart
		defer close(done)
		a.ns.Output("ping", "-n", "-c", "60", "-i", "0.2", "-W", "1", inB4.Addr().String())
	}()
	time.Sleep(time.Second)
	b2 := restart(t, b)
	listenTCP(t, b2, b2.port)
	peer(t, b2, a, protocol.Key{}, 0, true)
	restarted := time.Now()
	pingUntil(t, a.ns, inB4.Addr().String(), 30*time.Second)
	t.Logf("traffic back %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
	if n := info(t, a).Counters["streams_dialed"]; n < 2 {
		t.Errorf("the client dialed %d streams, want a new one after the restart", n)
	}
	<-done
}

// TestStreamTap carries TAP mode over a stream: ARP, full-size frames whole
// (a stream needs no fragments), TCP.
func TestStreamTap(t *testing.T) {
	pingtest.Require(t)
	a, b := tapPair(t, false)
	listenTCP(t, b, b.port)
	setTransport(t, a, b, "tcp")
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
	waitStream(t, a, b, true)
	waitStream(t, b, a, true)
	pingtest.PingDF(t, a.ns, inB4.Addr().String(), 3, 1472)
	transfer(t, b, a, false, 4<<20)
	if n := info(t, a).Counters["fragmented"]; n != 0 {
		t.Errorf("%d frames split on a stream", n)
	}
}

// udpOverTCPRelay is what mullvad's udp-over-tcp does on a server: it
// accepts TCP connections on listen (in ns) and forwards each message (after
// its 2-byte length) as a UDP datagram to to, from a UDP socket of the
// connection's own, and each datagram back as a message. It stops when the
// test ends.
func udpOverTCPRelay(t *testing.T, ns *nstest.NS, listen, to netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", listen.String()); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var u *net.UDPConn
			if err := ns.Do(func() (err error) { u, err = net.ListenUDP("udp", nil); return err }); err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go func() { // TCP -> UDP
				defer u.Close()
				hdr := make([]byte, 2)
				buf := make([]byte, 65535)
				for {
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					n := int(hdr[0])<<8 | int(hdr[1])
					if _, err := io.ReadFull(c, buf[:n]); err != nil {
						return
					}
					u.WriteToUDPAddrPort(buf[:n], to)
				}
			}()
			go func() { // UDP -> TCP
				defer c.Close()
				buf := make([]byte, 65537)
				for {
					n, _, err := u.ReadFromUDPAddrPort(buf[2:])
					if err != nil {
						return
					}
					buf[0], buf[1] = byte(n>>8), byte(n)
					if _, err := c.Write(buf[:2+n]); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// TestStreamToWireguardGoThroughRelay reaches a stock WireGuard server
// (wireguard-go) over TCP, through a udp-over-tcp relay beside it: the
// client's framing is the relay's.
func TestStreamToWireguardGoThroughRelay(t *testing.T) {
	requireWG(t)
	wireguardGo(t)
	pingtest.Require(t)
	na, nb := wire(t)
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b := startWireguardGo(t, nb, "wgb0", ub, 51002, inB4)
	udpOverTCPRelay(t, nb, netip.AddrPortFrom(ub, 51080), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 51002))
	peer(t, b, a, protocol.Key{}, 0, true)
	b.port = 51080 // a reaches b at the relay
	peer(t, a, b, protocol.Key{}, 0, false)
	setTransport(t, a, b, "tcp")
	pingUntil(t, na, inB4.Addr().String(), 20*time.Second)
	transfer(t, a, b, false, 4<<20)
	transfer(t, b, a, false, 4<<20)
	if p := peerInfo(t, a, b.pub()); p.Stream == "" || p.Tapwire {
		t.Errorf("a reaches b by %q, tapwire peer %v: want a stream to a WireGuard peer", p.Stream, p.Tapwire)
	}
}

// TestStreamUnauthBounds opens many streams from one address that never
// authenticate: only maxUnauthPerAddr (16) wait, each with small buffers;
// the oldest are closed at once, and a real client from the same address
// (behind the same NAT, say) still gets through.
func TestStreamUnauthBounds(t *testing.T) {
	pingtest.Require(t)
	a, b := pair(t)
	listenTCP(t, b, b.port)
	var m0, m1 runtime.MemStats
	// What the two engines allocate as they settle is not the streams':
	// the heap is read once they have.
	time.Sleep(time.Second)
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var conns []net.Conn
	for range 40 {
		var c net.Conn
		if err := a.ns.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(b.under, b.port).String(), 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed++
			}
		}
	}
	grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	t.Logf("40 idle streams from one address: %d closed at once; heap grew %d KiB", closed, grew>>10)
	if closed != 40-16 {
		t.Errorf("%d of 40 streams from one address closed at once, want the 24 oldest (16 may wait)", closed)
	}
	for i, c := range conns[24:] {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Errorf("stream %d of the 16 newest was closed: %v", 24+i, err)
			}
		}
	}
	// Under the race detector sync.Pool drops items at random (see
	// race_test.go): the heap is only logged then.
	if grew > 16*256<<10 && !raceEnabled {
		t.Errorf("16 unauthenticated streams hold %d KiB", grew>>10)
	}
	setTransport(t, a, b, "tcp")
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
	// A tcp peer set back to auto starts over UDP again.
	setTransport(t, a, b, "auto")
	waitStream(t, a, b, false)
	pingtest.Ping(t, a.ns, inB4.Addr().String(), 3, 56)
}
