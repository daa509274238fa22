//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/protocol"
)

func newKey(t *testing.T) protocol.Key {
	t.Helper()
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Initiations pass the responder's mac1 check and decrypt (from a key it
// does not know), and are distinct.
func TestInitiationsValid(t *testing.T) {
	t.Parallel()
	priv := newKey(t)
	pub := priv.PublicKey()
	msgs, err := pool(Initiation, pub, 50)
	if err != nil {
		t.Fatal(err)
	}
	checker := protocol.NewCookieChecker(pub)
	local := protocol.NewLocal(priv)
	seen := map[string]bool{}
	for i, m := range msgs {
		if len(m) != protocol.InitiationSize || !checker.CheckMAC1(m) {
			t.Fatalf("initiation %d: %d bytes, mac1 valid %v", i, len(m), checker.CheckMAC1(m))
		}
		if _, err := local.ConsumeInitiation(m); err != nil {
			t.Fatalf("initiation %d does not decrypt: %v", i, err)
		}
		seen[string(m)] = true
	}
	if len(seen) != len(msgs) {
		t.Errorf("%d distinct initiations of %d", len(seen), len(msgs))
	}
	other := protocol.NewCookieChecker(newKey(t).PublicKey())
	if other.CheckMAC1(msgs[0]) {
		t.Error("mac1 valid for another key")
	}
}

// Each kind's messages are what it says.
func TestKinds(t *testing.T) {
	t.Parallel()
	pub := newKey(t).PublicKey()
	checker := protocol.NewCookieChecker(pub)
	garbage, err := pool(Garbage, pub, 400)
	if err != nil {
		t.Fatal(err)
	}
	typed := 0
	for _, m := range garbage {
		if len(m) < 1 || len(m) > 1400 {
			t.Fatalf("garbage of %d bytes", len(m))
		}
		typ, ok := protocol.MessageType(m)
		if !ok {
			continue
		}
		typed++
		if typ != protocol.TypeTransport && len(m) != handshakeSize(typ) {
			t.Errorf("typed garbage of type %d has %d bytes", typ, len(m))
		}
		if typ == protocol.TypeInitiation && checker.CheckMAC1(m) {
			t.Error("garbage with a valid mac1")
		}
	}
	if typed < 150 {
		t.Errorf("%d of 400 garbage messages typed, want about half", typed)
	}
	trunc, err := pool(Truncated, pub, 400)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range trunc {
		if len(m) < 1 {
			t.Fatal("an empty truncated message")
		}
		if typ, ok := protocol.MessageType(m); ok {
			whole := protocol.TransportOverhead
			if typ != protocol.TypeTransport {
				whole = handshakeSize(typ)
			}
			if len(m) >= whole {
				t.Errorf("a truncated message of type %d has %d bytes, its whole size %d", typ, len(m), whole)
			}
		}
	}
	tr, err := pool(Transport, pub, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range tr {
		if _, _, err := protocol.ParseTransportHeader(m); err != nil || len(m) < protocol.TransportOverhead {
			t.Errorf("transport of %d bytes: %v", len(m), err)
		}
	}
	if _, err := pool(Replay, pub, 1); err == nil {
		t.Error("a pool of replays without a capture")
	}
}

// captured builds what a SOCK_RAW packet socket with PACKET_VNET_HDR reads
// for an IPv4 (or IPv6) UDP packet to port carrying payload, marked as UDP
// GSO with gsoSize when gsoSize > 0.
func captured(v6 bool, port uint16, payload []byte, gsoSize int) []byte {
	vnet := make([]byte, vnetHdrLen)
	if gsoSize > 0 {
		vnet[1] = unix.VIRTIO_NET_HDR_GSO_UDP_L4
		binary.LittleEndian.PutUint16(vnet[4:], uint16(gsoSize))
	}
	eth := make([]byte, 14)
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[2:], port)
	var ip []byte
	if v6 {
		binary.BigEndian.PutUint16(eth[12:], unix.ETH_P_IPV6)
		ip = make([]byte, 40)
		ip[0], ip[6] = 6<<4, unix.IPPROTO_UDP
	} else {
		binary.BigEndian.PutUint16(eth[12:], unix.ETH_P_IP)
		ip = make([]byte, 20)
		ip[0], ip[9] = 4<<4|5, unix.IPPROTO_UDP
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	}
	out := append(append(append(append(vnet, eth...), ip...), udp...), payload...)
	return out
}

func TestSplitCaptured(t *testing.T) {
	t.Parallel()
	payload := make([]byte, 250)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, v6 := range []bool{false, true} {
		if got := splitCaptured(captured(v6, 51820, payload, 0), 51820); len(got) != 1 || len(got[0]) != 250 {
			t.Errorf("v6 %v: one datagram split into %d", v6, len(got))
		}
		got := splitCaptured(captured(v6, 51820, payload, 100), 51820)
		if len(got) != 3 || len(got[0]) != 100 || len(got[2]) != 50 || got[1][0] != 100 {
			t.Errorf("v6 %v: a GSO packet of 250 bytes by 100 split into %d", v6, len(got))
		}
		if got := splitCaptured(captured(v6, 51821, payload, 0), 51820); got != nil {
			t.Errorf("v6 %v: a datagram to another port taken", v6)
		}
	}
	if got := splitCaptured([]byte{1, 2, 3}, 51820); got != nil {
		t.Error("a runt taken")
	}
}

// A flood sends what it is asked, from the sockets it is asked, and stops
// at its count or its duration, whichever comes first.
func TestFloodBounded(t *testing.T) {
	t.Parallel()
	ln, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetReadBuffer(1 << 20)
	type got struct {
		n     int
		ports map[uint16]bool
	}
	report := make(chan got, 1)
	go func() {
		g := got{ports: map[uint16]bool{}}
		buf := make([]byte, 2048)
		cookie := make([]byte, protocol.CookieReplySize)
		cookie[0] = protocol.TypeCookieReply
		for {
			ln.SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil {
				report <- g
				return
			}
			if g.n == 0 {
				ln.WriteToUDPAddrPort(cookie, from)
			}
			g.n++
			g.ports[from.Port()] = true
			if n != 5 {
				t.Errorf("received %d bytes", n)
			}
		}
	}()
	to := ln.LocalAddr().(*net.UDPAddr).AddrPort()
	msgs := [][]byte{[]byte("hello"), []byte("world")}
	res, err := flood(context.Background(), plan{to: to, rate: 20000, count: 300, duration: time.Minute, sources: 3, batch: 16, msgs: msgs})
	if err != nil {
		t.Fatal(err)
	}
	g := <-report
	if res.Sent != 300 || g.n != 300 || len(g.ports) != 3 {
		t.Errorf("sent %d, received %d from %d ports; want 300 from 3", res.Sent, g.n, len(g.ports))
	}
	if res.CookieReply != 1 {
		t.Errorf("%d cookie replies counted, want 1", res.CookieReply)
	}

	// The duration ends a flood whose count is far off: it cannot have
	// sent more than the rate allows in that time.
	const rate, d = 5000, 100 * time.Millisecond
	res, err = flood(context.Background(), plan{to: to, rate: rate, count: 1 << 30, duration: d, sources: 1, batch: 64, msgs: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if limit := uint64(rate*d.Seconds()) + 1; res.Sent > limit || res.Sent == 0 {
		t.Errorf("sent %d in %v at %d/s, want 1 to %d", res.Sent, d, rate, limit)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	pub := newKey(t).PublicKey().String()
	for _, args := range [][]string{
		{},
		{"-to", "192.0.2.1:51820"}, // initiation without -pub
		{"-to", "192.0.2.1:51820", "-pub", pub, "-rate", "0"},
		{"-to", "192.0.2.1:51820", "-pub", pub, "-duration", "1h"},
		{"-to", "192.0.2.1:51820", "-kind", "replay"},
		{"-to", "192.0.2.1:51820", "-kind", "nonsense"},
		{"-to", "192.0.2.1:51820", "-kind", "garbage", "-sources", "0"},
	} {
		err := run(context.Background(), args)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// An IPv6 target is flooded over IPv6 sockets.
func TestFloodIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::1]:0")))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	ln.SetReadBuffer(1 << 20)
	res, err := flood(context.Background(), plan{to: ln.LocalAddr().(*net.UDPAddr).AddrPort(), rate: 20000, count: 50,
		duration: time.Minute, sources: 2, batch: 8, msgs: [][]byte{[]byte("six")}})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	got := 0
	for ln.SetReadDeadline(time.Now().Add(time.Second)); got < 50; got++ {
		if _, err := ln.Read(buf); err != nil {
			break
		}
	}
	if res.Sent != 50 || got != 50 {
		t.Errorf("sent %d, received %d over IPv6; want 50", res.Sent, got)
	}
}
