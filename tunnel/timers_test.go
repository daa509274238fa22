package tunnel_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

func udpListen(t *testing.T, h *host, port int) *net.UDPConn {
	var c *net.UDPConn
	if err := h.ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.innerAddr(false), uint16(port))))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStagedSentWhenResponderConfirms: b has no endpoint for a and sends
// first, so its packet waits; when a's handshake and first data message
// confirm the session at b, b sends what waited (as wireguard-go does).
func TestStagedSentWhenResponderConfirms(t *testing.T) {
	na, nb := wire(t)
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	peer(t, a, b, protocol.Key{}, 0, false) // A knows B's endpoint
	peer(t, b, a, protocol.Key{}, 0, true)  // B does not know A's

	la := udpListen(t, a, 9999)
	lb := udpListen(t, b, 9998)
	sb := udpListen(t, b, 0)
	sa := udpListen(t, a, 0)

	// B -> A before any session: staged.
	if _, err := sb.WriteToUDPAddrPort([]byte("early-from-B"), netip.AddrPortFrom(a.innerAddr(false), 9999)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	// A -> B: A initiates, B responds, A's datagram confirms B's keypair.
	if _, err := sa.WriteToUDPAddrPort([]byte("from-A"), netip.AddrPortFrom(b.innerAddr(false), 9998)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	lb.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, _, err := lb.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("A->B did not arrive: %v", err)
	} else {
		t.Logf("B got %q: session confirmed at B", buf[:n])
	}
	la.SetReadDeadline(time.Now().Add(4 * time.Second))
	if n, _, err := la.ReadFromUDPAddrPort(buf); err != nil {
		t.Errorf("B's staged packet was not delivered within 4 s of the handshake's confirmation: %v", err)
	} else {
		t.Logf("A got %q", buf[:n])
	}
	// A later B->A packet goes straight through, overtaking the staged one.
	sb.WriteToUDPAddrPort([]byte("late-from-B"), netip.AddrPortFrom(a.innerAddr(false), 9999))
	la.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _, err := la.ReadFromUDPAddrPort(buf); err == nil {
		t.Logf("A then got %q", buf[:n])
	}
}

// TestKeepalivesAloneRekey: with only persistent keepalives flowing, the
// initiator still rekeys at RekeyAfterTime (keepalives keep keys fresh, as
// in wireguard-go).
func TestKeepalivesAloneRekey(t *testing.T) {
	tm := tunnel.Timers{RekeyAfterTime: 2 * time.Second, RejectAfterTime: 6 * time.Second,
		RekeyTimeout: time.Second, KeepaliveTimeout: time.Second, RekeyAttemptTime: 3 * time.Second}
	na, nb := wire(t)
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tm, inA4)
	b := startTapwire(t, nb, "twb0", ub, 51002, tm, inB4)
	peer(t, b, a, protocol.Key{}, 0, true)
	peer(t, a, b, protocol.Key{}, 1, false) // A: persistent keepalive 1s; starts the handshake
	var t0 time.Time
	deadline := time.Now().Add(5 * time.Second)
	for t0.IsZero() && time.Now().Before(deadline) {
		if s := a.dev.Status(); len(s.Peers) == 1 && !s.Peers[0].LastHandshake.IsZero() {
			t0 = s.Peers[0].LastHandshake
		}
		time.Sleep(20 * time.Millisecond)
	}
	if t0.IsZero() {
		t.Fatal("no handshake")
	}
	for time.Since(t0) < 9*time.Second {
		if s := a.dev.Status(); !s.Peers[0].LastHandshake.Equal(t0) {
			d := s.Peers[0].LastHandshake.Sub(t0)
			t.Logf("next handshake %v after the first (RekeyAfterTime %v, RejectAfterTime %v)", d.Round(10*time.Millisecond), tm.RekeyAfterTime, tm.RejectAfterTime)
			if d > tm.RekeyAfterTime+1500*time.Millisecond {
				t.Errorf("rekey only after %v, not at RekeyAfterTime", d)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("no rekey at all")
}
