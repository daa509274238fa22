//go:build linux

package tunnel

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/fragment"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// tapEnds makes two TAP devices in one namespace, each the other's peer
// over loopback, with a completed handshake: a's current keypair seals what
// b accepts from a.
func tapEnds(t *testing.T) (a, b *Device, kp *protocol.Keypair, bAddr netip.AddrPort, ns *nstest.NS) {
	t.Helper()
	ns = nstest.New(t)
	var ka, kb protocol.Key
	a, ka = testDevice(t, ns, "twfa0", tun.ModeTAP, 1500)
	b, kb = testDevice(t, ns, "twfb0", tun.ModeTAP, 1500)
	addr := func(d *Device) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), d.listenPort)
	}
	for _, pair := range [][2]*Device{{a, b}, {b, a}} {
		ep := addr(pair[1])
		pub := kb.PublicKey()
		if pair[0] == b {
			pub = ka.PublicKey()
		}
		if err := pair[0].Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pub, Endpoint: &ep}}}); err != nil {
			t.Fatal(err)
		}
	}
	pa := a.peers[kb.PublicKey()]
	pa.initiate(time.Now(), false)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pa.mu.Lock()
		kp = pa.current
		pa.mu.Unlock()
		if kp != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no handshake within 5 s")
		}
	}
	return a, b, kp, addr(b), ns
}

// fragMsg seals one fragment with header h and data.
func fragMsg(t *testing.T, kp *protocol.Keypair, h fragment.Header, data []byte) []byte {
	t.Helper()
	n := fragment.HeaderSize + len(data)
	buf := make([]byte, protocol.TransportOverhead+protocol.PaddedLen(n, 0))
	h.Put(buf[protocol.TransportHeaderSize:])
	copy(buf[protocol.TransportHeaderSize+fragment.HeaderSize:], data)
	m, err := kp.SealTransportType(buf, n, 0, protocol.TypeFragment)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:m]
}

// TestHostileFragments sends a TAP device, through a real session, the
// fragments an authenticated but hostile (or broken) peer could: a stream of
// first pieces of distinct frames, duplicates, overlaps, pieces outside
// their frame, frames of the other kind or too big; and what anyone on the
// path could: truncated and forged fragment messages. Each is dropped and
// counted as what it is, the reassembly memory stays within its bound, and
// a genuine fragmented frame sent after it all is still put together.
func TestHostileFragments(t *testing.T) {
	_, b, kp, to, ns := tapEnds(t)
	var c *net.UDPConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(msg []byte) {
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	st := &b.stats
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: counters %v", what, b.Info().(Info).Counters)
			}
		}
	}
	frame := func(n int) []byte {
		f := make([]byte, n)
		for i := range f {
			f[i] = byte(i * 7)
		}
		copy(f, []byte{0x02, 0, 0x5e, 0, 0x53, 2, 0x02, 0, 0x5e, 0, 0x53, 1, 0x88, 0xb5})
		return f
	}
	piece := frame(1024)

	// A flood of first pieces, each of a new frame of the largest size.
	const flood = 5000
	for i := range flood {
		send(fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1518, ID: uint32(1000 + i), Offset: 0, Len: 1024}, piece))
		if i%500 == 499 {
			time.Sleep(5 * time.Millisecond) // let the socket buffer drain
		}
	}
	wait("flood", func() bool { return st.FragTimedOut.Load() >= flood-fragment.DefaultSlots-50 })
	var p *Peer
	for _, q := range b.peers {
		p = q
	}
	p.reasmMu.Lock()
	mem, pending := p.reasm.MemoryBytes(), p.reasm.Pending()
	p.reasmMu.Unlock()
	bound := fragment.DefaultSlots * (1518 + 8*((1518+7)/8/64+1))
	if mem > bound || pending > fragment.DefaultSlots {
		t.Errorf("after %d first pieces: %d bytes held (bound %d), %d frames pending", flood, mem, bound, pending)
	}
	t.Logf("flood of %d first pieces: %d timed out or evicted, %d bytes held (bound %d)", flood, st.FragTimedOut.Load(), mem, bound)

	h := fragment.Header{Kind: fragment.KindFrame, Total: 1518, ID: 7, Offset: 0, Len: 1024}
	send(fragMsg(t, kp, h, piece))
	send(fragMsg(t, kp, h, piece)) // a duplicate: its own counter, so not a replay
	wait("duplicate", func() bool { return st.FragDuplicate.Load() == 1 })
	send(fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1518, ID: 7, Offset: 1016, Len: 502}, frame(502)))
	wait("overlap", func() bool { return st.FragOverlap.Load() == 1 })
	bad := fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 100, ID: 8, Offset: 96, Len: 16}, frame(16))
	send(bad) // beyond its frame's end
	wait("out of range", func() bool { return st.FragMalformed.Load() == 1 })
	send(fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1600, ID: 9, Offset: 0, Len: 1024}, piece))
	wait("too big", func() bool { return st.FragMismatch.Load() == 1 })
	send(fragMsg(t, kp, fragment.Header{Kind: fragment.KindPacket, Total: 1500, ID: 10, Offset: 0, Len: 1024}, piece))
	wait("other kind", func() bool { return st.ModeMismatch.Load() == 1 })

	forged := fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1518, ID: 11, Offset: 0, Len: 1024}, piece)
	forged[40] ^= 1
	send(forged)
	wait("forged", func() bool { return st.BadPacket.Load() == 1 })
	trunc := fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1518, ID: 12, Offset: 0, Len: 1024}, piece)
	send(trunc[:len(trunc)-20])
	wait("truncated", func() bool { return st.BadPacket.Load() == 2 })
	send(trunc[:20])
	wait("truncated to its header", func() bool { return st.Malformed.Load() == 1 })

	// After all that, a genuine frame in two pieces.
	f := frame(1514)
	before := st.Reassembled.Load()
	send(fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1514, ID: 99, Offset: 1024, Len: 490}, f[1024:]))
	send(fragMsg(t, kp, fragment.Header{Kind: fragment.KindFrame, Total: 1514, ID: 99, Offset: 0, Len: 1024}, f[:1024]))
	wait("genuine frame", func() bool { return st.Reassembled.Load() == before+1 })
	if n := st.TooBig.Load(); n != 0 {
		t.Errorf("too big %d", n)
	}
}

// The timers read the socket's error queue every tick: an empty queue
// costs a system call and no allocation.
func TestErrQueueDrainNoAlloc(t *testing.T) {
	_, b, _, _, _ := tapEnds(t)
	conn := b.udpConn()
	if n := testing.AllocsPerRun(100, func() { b.drainPathErrors(conn) }); n != 0 {
		t.Errorf("%v allocations per drain of an empty queue", n)
	}
}

// TestProbeAnswered checks the probe exchange on its own: a probe of a given
// size gets a reply naming that size, which raises the prober's path MTU.
func TestProbeAnswered(t *testing.T) {
	a, b, _, _, _ := tapEnds(t)
	var pa *Peer
	for _, q := range a.peers {
		pa = q
	}
	// Loopback: the route's MTU is 65536, the device's largest message
	// much less; the probes stop there.
	want := outerOverhead(*pa.endpoint.Load()) + protocol.TransportOverhead + a.padMTU
	for deadline := time.Now().Add(5 * time.Second); int(pa.pmtu.Load()) != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("path MTU %d, want %d; probes sent %d, answered by b %d", pa.pmtu.Load(), want, a.stats.ProbesSent.Load(), b.stats.ProbeReplies.Load())
		}
	}
	if b.stats.ProbeReplies.Load() == 0 {
		t.Error("b counted no replies")
	}
}
