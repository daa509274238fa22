//go:build linux

package tunnel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/tunnel"
)

// testEtherType is IEEE's local experimental EtherType 1, which nothing on
// the test hosts answers or sends: frames of it are the tests' own.
const testEtherType = 0x88b5

// startTap runs a tapwire engine on a TAP device (MTU 1500, MSS clamping on).
func startTap(t testing.TB, ns *nstest.NS, name string, under netip.Addr, port uint16, sw l2switch.Options, inner ...netip.Prefix) *host {
	t.Helper()
	return startEngine(t, ns, name, under, port, tun.ModeTAP, tunnel.Options{Switch: sw, ClampMSS: true}, inner...)
}

// startTapMTU is startTap with a TAP device of the given MTU.
func startTapMTU(t testing.TB, ns *nstest.NS, name string, under netip.Addr, port uint16, mtu int, inner ...netip.Prefix) *host {
	t.Helper()
	return startEngineMTU(t, ns, name, under, port, tun.ModeTAP, mtu, tunnel.Options{ClampMSS: true}, inner...)
}

// tapPair makes two TAP hosts over a fresh wire (IPv4 underlay), each the
// other's peer, with the inner addresses of the family or families asked
// for.
func tapPair(t testing.TB, v6 bool) (a, b *host) {
	t.Helper()
	na, nb := wire(t)
	ua, ub := underlay(false)
	innerA, innerB := []netip.Prefix{inA4}, []netip.Prefix{inB4}
	if v6 {
		innerA, innerB = append(innerA, inA6), append(innerB, inB6)
	}
	a = startTap(t, na, "twa0", ua, 51001, l2switch.Options{}, innerA...)
	b = startTap(t, nb, "twb0", ub, 51002, l2switch.Options{}, innerB...)
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 0, false)
	return a, b
}

// tapMAC returns the MAC address of h's tap device.
func tapMAC(t testing.TB, h *host) l2switch.MAC {
	t.Helper()
	out := h.ns.Run("cat", "/sys/class/net/"+h.name+"/address")
	m, err := l2switch.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ethFrame builds a frame of testEtherType (or the EtherType given in the
// payload, when raw is set) from src to dst.
func ethFrame(dst, src l2switch.MAC, etherType uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), byte(etherType>>8), byte(etherType))
	return append(f, payload...)
}

// collector reads the frames of one raw socket that carry a marker.
type collector struct {
	mu     sync.Mutex
	frames [][]byte
	stop   chan struct{}
	done   chan struct{}
}

// collect gathers, until the test ends or stop, every frame read on link in
// ns that contains marker.
func collect(t *testing.T, ns *nstest.NS, link string, marker []byte) *collector {
	fd := ns.RawSocket(link)
	c := &collector{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 70000)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			n, err := nstest.ReadFrame(fd, buf)
			if err != nil || !bytes.Contains(buf[:n], marker) {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *collector) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

func (c *collector) got() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// waitFrames waits up to 3 s for c to hold want frames, then 300 ms more
// for any extra copy, and returns what it holds.
func (c *collector) waitFrames(want int) [][]byte {
	for deadline := time.Now().Add(3 * time.Second); len(c.got()) < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return c.got()
}

// marker returns a unique payload for one test frame.
func marker(t testing.TB, what string) []byte {
	var r [8]byte
	rand.Read(r[:])
	return []byte(fmt.Sprintf("tapwire test frame %s %x", what, r))
}

// sendRaw sends frame out of link in ns.
func sendRaw(t *testing.T, ns *nstest.NS, link string, frame []byte) {
	t.Helper()
	fd := ns.RawSocket(link)
	if _, err := unix.Write(fd, frame); err != nil {
		t.Fatalf("send a frame on %s: %v", link, err)
	}
}

func info(t testing.TB, h *host) tunnel.Info {
	t.Helper()
	return h.dev.Info().(tunnel.Info)
}

// TestTapPointToPoint joins two namespaces on one layer-2 segment through a
// TAP tunnel: ARP, neighbour discovery, pings, TCP, and frames no IP
// tunnel carries (802.1Q-tagged, QinQ, an unusual EtherType, broadcast and
// multicast) must all pass, byte for byte.
func TestTapPointToPoint(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	a, b := tapPair(t, true)
	na, nb := a.ns, b.ns

	t.Run("ping", func(t *testing.T) {
		pingtest.Ping(t, na, inB4.Addr().String(), 3, 56)
		pingtest.Ping(t, nb, inA6.Addr().String(), 3, 56)
		pingtest.Ping(t, na, inB4.Addr().String(), 3, 1472) // a full 1500-byte IP packet, in two fragments
		// ARP and neighbour discovery found the other end's tap.
		macB := tapMAC(t, b).String()
		if out := na.Run("ip", "neigh", "show", "dev", "twa0"); strings.Count(out, macB) < 2 {
			t.Errorf("a's neighbour table lacks b's MAC %s for both families:\n%s", macB, out)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		transfer(t, a, b, false, 8<<20)
		transfer(t, b, a, true, 8<<20)
	})
	t.Run("raw frames", func(t *testing.T) {
		macA, macB := tapMAC(t, a), tapMAC(t, b)
		ipv4ICMP := []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2,
			8, 0, 0xf7, 0xfe, 0, 1, 0, 0}
		frames := map[string]func(m []byte) []byte{
			"802.1Q-tagged ICMP echo": func(m []byte) []byte {
				return ethFrame(macB, macA, 0x8100, append(append([]byte{0x00, 0x0a, 0x08, 0x00}, ipv4ICMP...), m...))
			},
			"QinQ": func(m []byte) []byte {
				return ethFrame(macB, macA, 0x88a8, append(append([]byte{0x00, 0x05, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00}, ipv4ICMP...), m...))
			},
			"EtherType 0x88b5": func(m []byte) []byte { return ethFrame(macB, macA, testEtherType, m) },
			"broadcast": func(m []byte) []byte {
				return ethFrame(l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macA, testEtherType, m)
			},
			"multicast": func(m []byte) []byte {
				return ethFrame(l2switch.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, macA, testEtherType, m)
			},
			"DHCP discover": func(m []byte) []byte {
				udp := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 68, 0, 67, 0, 0, 0, 0}
				udp = append(udp, m...)
				binary.BigEndian.PutUint16(udp[2:], uint16(len(udp)))
				binary.BigEndian.PutUint16(udp[24:], uint16(len(udp)-20))
				return ethFrame(l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macA, 0x0800, udp)
			},
			"full-size tagged": func(m []byte) []byte {
				pad := bytes.Repeat([]byte{0xa5}, 1500-len(m)) // a 1518-byte frame
				return ethFrame(macB, macA, 0x8100, append(append([]byte{0x00, 0x0b, 0x88, 0xb5}, m...), pad...))
			},
		}
		for name, build := range frames {
			m := marker(t, name)
			f := build(m)
			c := collect(t, nb, "twb0", m)
			sendRaw(t, na, "twa0", f)
			got := c.waitFrames(1)
			c.close()
			switch {
			case len(got) != 1:
				t.Errorf("%s: %d copies arrived, want 1", name, len(got))
			case !bytes.Equal(got[0], f):
				t.Errorf("%s: frame changed on the way:\nsent %x\ngot  %x", name, f, got[0])
			}
		}
		// The answer to the tagged echo request comes back tagged: a
		// tagged echo reply from b reaches a intact (this kernel has no
		// 8021q module for VLAN sub-interfaces, so the frames are raw).
		m := marker(t, "tagged echo reply")
		reply := append([]byte{0x45, 0, 0, 28, 0, 2, 0, 0, 64, 1, 0, 0, 198, 51, 100, 2, 198, 51, 100, 1,
			0, 0, 0xff, 0xfe, 0, 1, 0, 0}, m...)
		f := ethFrame(macA, macB, 0x8100, append([]byte{0x00, 0x0a, 0x08, 0x00}, reply...))
		c := collect(t, na, "twa0", m)
		sendRaw(t, nb, "twb0", f)
		if got := c.waitFrames(1); len(got) != 1 || !bytes.Equal(got[0], f) {
			t.Errorf("tagged echo reply b -> a: %d copies, want 1 intact", len(got))
		}
	})
	t.Run("too big", func(t *testing.T) {
		// A frame one byte over MTU + 18 is not carried, and is counted.
		// The kernel sends no such frame on a 1500-byte link, so raise the
		// link's MTU: the engine keeps the one it started with.
		na.Run("ip", "link", "set", "twa0", "mtu", "1600")
		t.Cleanup(func() { na.Run("ip", "link", "set", "twa0", "mtu", "1500") })
		macA, macB := tapMAC(t, a), tapMAC(t, b)
		m := marker(t, "too big")
		f := ethFrame(macB, macA, 0x8100, append(append([]byte{0x00, 0x0b, 0x88, 0xb5}, m...), make([]byte, 1501-len(m))...))
		c := collect(t, nb, "twb0", m)
		before := a.dev.Stats().TooBig.Load()
		sendRaw(t, na, "twa0", f)
		if got := c.waitFrames(1); len(got) != 0 {
			t.Errorf("a %d-byte frame crossed a tunnel for %d", len(f), 1500+tunnel.MaxFrameOverhead)
		}
		if a.dev.Stats().TooBig.Load() == before {
			t.Errorf("the %d-byte frame was not counted as too big", len(f))
		}
	})
	t.Run("iperf3", func(t *testing.T) {
		iperf3(t, na, nb, inB4.Addr())
	})
	in := info(t, a)
	if in.Mode != "tap" || in.MaxFrame != 1518 || in.MSS4 != 1460 || in.MSS6 != 1440 {
		t.Errorf("info: mode %q, max frame %d, mss %d/%d; want tap, 1518, 1460/1440", in.Mode, in.MaxFrame, in.MSS4, in.MSS6)
	}
	if in.Counters["mode_mismatch"] != 0 || in.Counters["bad_packet"] != 0 {
		t.Errorf("unexpected drops: %v", in.Counters)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// iperf3 runs a bounded iperf3 TCP test from a to the server at dst in b.
func iperf3(t *testing.T, a, b *nstest.NS, dst netip.Addr) {
	iperf3Server(t, b, dst)
	iperf3Client(t, a, dst, "-t", "2")
}

// iperf3Server starts an iperf3 server on dst:5299 in ns, stopped (by pid)
// when the test ends, and waits until it listens.
func iperf3Server(t *testing.T, ns *nstest.NS, dst netip.Addr) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 (Debian package iperf3; the README's test command installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, "iperf3", "-s", "-B", dst.String(), "-p", "5299")
	if err := srv.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait(); cancel() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out, _ := ns.Output("ss", "-Hltn", "sport = :5299"); strings.Contains(out, "5299") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the iperf3 server is not listening after 5 s")
		}
	}
}

// iperf3Client runs an iperf3 TCP client in ns against the server at dst
// with args (-t or -n bound it), trying up to three times.
func iperf3Client(t *testing.T, ns *nstest.NS, dst netip.Addr, args ...string) {
	var out string
	var err error
	for range 3 {
		out, err = ns.Output("iperf3", append([]string{"-c", dst.String(), "-p", "5299", "-J"}, args...)...)
		if err == nil && strings.Contains(out, `"bits_per_second"`) && !strings.Contains(out, `"error"`) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("iperf3 through the tunnel failed: %v\n%s", err, out)
}

// TestTapNoAllocPerFrame moves TCP through a TAP tunnel (both engines in
// this process, the traffic in iperf3 processes) and counts the process's
// allocations: a few for timers and the like, not one per frame or batch.
func TestTapNoAllocPerFrame(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := tapPair(t, false)
	na, nb := a.ns, b.ns
	iperf3Server(t, nb, inB4.Addr())
	iperf3Client(t, na, inB4.Addr(), "-n", "1M") // handshake, ARP, warm buffers
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	iperf3Client(t, na, inB4.Addr(), "-n", "16K")
	runtime.ReadMemStats(&m1)
	rx0 := b.dev.Status().Peers[0].RxBytes
	iperf3Client(t, na, inB4.Addr(), "-n", "256M")
	runtime.ReadMemStats(&m2)
	rx := b.dev.Status().Peers[0].RxBytes - rx0
	extra := int64(m2.Mallocs-m1.Mallocs) - int64(m1.Mallocs-m0.Mallocs)
	frames := rx / 1450 // at least this many frames crossed
	t.Logf("%d allocations beyond a 16 KiB run while about %d frames (%d MiB) crossed", extra, frames, rx>>20)
	if (extra > 2000 || extra > 0 && uint64(extra) > frames/100) && !raceEnabled {
		t.Errorf("%d allocations for about %d frames: the data path allocates", extra, frames)
	}
	// The taps' offloads carried the stream: super-frames split when read
	// from the sender's tap, coalesced when written to the receiver's.
	sa, sb := a.tunDev.OffloadStats(), b.tunDev.OffloadStats()
	t.Logf("offloads: sender %+v, receiver %+v", sa, sb)
	if sa.SuperPacketsRead == 0 || sb.SuperPacketsWritten == 0 {
		t.Errorf("no super-frame crossed the taps: sender read %d, receiver wrote %d", sa.SuperPacketsRead, sb.SuperPacketsWritten)
	}
}

// hub is a TAP hub with three spokes, each on its own veth to the hub's
// namespace; all taps share 198.51.100.0/24 (the hub .1, spoke i .1i).
type hubNet struct {
	hub    *host
	spokes []*host
}

func startHub(t *testing.T, sw l2switch.Options) *hubNet {
	hns := nstest.New(t)
	hn := &hubNet{}
	hubUnder := netip.MustParseAddr("198.18.0.1")
	hn.hub = startTap(t, hns, "twhub", hubUnder, 51000, sw, netip.MustParsePrefix("198.51.100.1/24"))
	for i := 1; i <= 3; i++ {
		ns := nstest.New(t)
		hubSide := fmt.Sprintf("198.18.%d.1/24", i)
		spokeSide := fmt.Sprintf("198.18.%d.2/24", i)
		hns.Link(ns, fmt.Sprintf("hv%d", i), fmt.Sprintf("sv%d", i), []string{hubSide}, []string{spokeSide})
		s := startTap(t, ns, fmt.Sprintf("tws%d", i), netip.MustParsePrefix(spokeSide).Addr(), 51000+uint16(i), l2switch.Options{},
			netip.MustParsePrefix(fmt.Sprintf("198.51.100.1%d/24", i)))
		// The hub knows each spoke by the address on its side of the veth;
		// each spoke reaches the hub on its own veth's hub address.
		s.under = netip.MustParsePrefix(spokeSide).Addr()
		peer(t, hn.hub, s, protocol.Key{}, 0, false)
		hn.hub.under = netip.MustParsePrefix(hubSide).Addr()
		peer(t, s, hn.hub, protocol.Key{}, 25, false)
		hn.spokes = append(hn.spokes, s)
	}
	hn.hub.under = hubUnder
	// The spokes' keepalives make the handshakes, so the hub knows every
	// endpoint before the tests send anything.
	for _, s := range hn.spokes {
		waitHandshake(t, s)
	}
	return hn
}

// waitHandshake waits up to 10 s for h to complete a handshake with its
// (first) peer.
func waitHandshake(t *testing.T, h *host) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st := h.dev.Status(); len(st.Peers) > 0 && !st.Peers[0].LastHandshake.IsZero() {
			return
		}
	}
	t.Fatalf("%s: no handshake within 10 s", h.name)
}

// macsOf returns the hub's learned entries by MAC: the peer's public key,
// or "" for the hub's own tap.
func macsOf(t *testing.T, hub *host) map[string]string {
	m := map[string]string{}
	for _, e := range info(t, hub).MACs {
		m[e.MAC] = e.Peer
	}
	return m
}

// TestTapHub runs a hub with three spokes, the way tinc's switch mode or an
// OpenVPN server with client-to-client runs: spokes reach each other
// through the hub, a broadcast reaches every other port exactly once, MACs
// follow a host that moves, age out, and are capped per peer.
func TestTapHub(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	const ageing = 3 * time.Second
	hn := startHub(t, l2switch.Options{Ageing: ageing, MaxPerPort: 8})
	hub, s1, s2, s3 := hn.hub, hn.spokes[0], hn.spokes[1], hn.spokes[2]

	t.Run("spoke to spoke", func(t *testing.T) {
		pingtest.Ping(t, s1.ns, "198.51.100.12", 3, 56)
		pingtest.Ping(t, s3.ns, "198.51.100.11", 3, 1472)
		pingtest.Ping(t, s2.ns, "198.51.100.1", 3, 56)
		transfer(t, s1, s3, false, 4<<20)
		macs := macsOf(t, hub)
		for _, s := range []*host{s1, s3} {
			if got := macs[tapMAC(t, s).String()]; got != s.pub().String() {
				t.Errorf("hub: %s's MAC is on port %q, want its peer", s.name, got)
			}
		}
		if got, ok := macs[tapMAC(t, hub).String()]; !ok || got != "" {
			t.Errorf("hub: its own tap's MAC is on port %q (known %v), want local", got, ok)
		}
	})

	t.Run("spoke to spoke through the hub allocates nothing", func(t *testing.T) {
		hubNoAlloc(t, s1, s2)
	})

	t.Run("broadcast once", func(t *testing.T) {
		m := marker(t, "broadcast")
		cs := map[string]*collector{}
		for _, h := range []*host{hub, s1, s2, s3} {
			cs[h.name] = collect(t, h.ns, h.name, m)
		}
		time.Sleep(100 * time.Millisecond)
		sendRaw(t, s1.ns, s1.name, ethFrame(l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, tapMAC(t, s1), testEtherType, m))
		for _, h := range []*host{hub, s2, s3} {
			if n := len(cs[h.name].waitFrames(1)); n != 1 {
				t.Errorf("%s received the broadcast %d times, want once", h.name, n)
			}
		}
		// The sender's own raw socket sees its frame go out once; no copy
		// comes back from the hub.
		if n := len(cs[s1.name].waitFrames(1)); n != 1 {
			t.Errorf("%s saw its broadcast %d times, want once (its own transmission)", s1.name, n)
		}
	})

	moving := l2switch.MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x99}
	t.Run("a MAC moves", func(t *testing.T) {
		bcast := l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		sendRaw(t, s1.ns, s1.name, ethFrame(bcast, moving, testEtherType, marker(t, "at s1")))
		waitMAC(t, hub, moving, s1)
		sendRaw(t, s2.ns, s2.name, ethFrame(bcast, moving, testEtherType, marker(t, "at s2")))
		waitMAC(t, hub, moving, s2)
		// A frame to the MAC now goes to s2 only.
		m := marker(t, "to the moved MAC")
		c1, c2 := collect(t, s1.ns, s1.name, m), collect(t, s2.ns, s2.name, m)
		sendRaw(t, s3.ns, s3.name, ethFrame(moving, tapMAC(t, s3), testEtherType, m))
		if n := len(c2.waitFrames(1)); n != 1 {
			t.Errorf("s2, where the MAC moved, received the frame %d times, want once", n)
		}
		if n := len(c1.got()); n != 0 {
			t.Errorf("s1, where the MAC was, received the frame %d times, want none", n)
		}
		if info(t, hub).Switch.Moved == 0 {
			t.Error("the move was not counted")
		}
	})

	t.Run("ageing", func(t *testing.T) {
		// Nothing sends from the moving MAC any more: it ages out within
		// the ageing time and the hub's once-a-second expiry.
		deadline := time.Now().Add(ageing + 3*time.Second)
		for {
			// Gone from the table (Entries hides expired entries at once) and
			// swept by the hub's expiry, which counts it.
			if _, ok := macsOf(t, hub)[moving.String()]; !ok && info(t, hub).Switch.Aged > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still in the hub's table %v after the %v ageing", moving, time.Since(deadline.Add(-ageing-3*time.Second)), ageing)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("allowed MACs", func(t *testing.T) {
		// s1 may only send from its tap's MAC: a frame from another source
		// is dropped at the hub and counted; s1's own traffic still flows.
		hub.dev.SetAllowedMACs(s1.pub(), []l2switch.MAC{tapMAC(t, s1)})
		t.Cleanup(func() { hub.dev.SetAllowedMACs(s1.pub(), nil) })
		before := info(t, hub).Switch.NotAllowed
		m := marker(t, "spoofed source")
		c := collect(t, s2.ns, s2.name, m)
		sendRaw(t, s1.ns, s1.name, ethFrame(l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, l2switch.MAC{0x02, 0, 0x5e, 0x30, 0, 1}, testEtherType, m))
		if n := len(c.waitFrames(1)); n != 0 {
			t.Errorf("a frame from a MAC s1 may not use reached s2 %d times", n)
		}
		if info(t, hub).Switch.NotAllowed == before {
			t.Error("the spoofed frame was not counted as not allowed")
		}
		var allowed []string
		for _, p := range info(t, hub).Peers {
			if p.PublicKey == s1.pub().String() {
				allowed = p.AllowedMACs
			}
		}
		if len(allowed) != 1 || allowed[0] != tapMAC(t, s1).String() {
			t.Errorf("status shows s1's allowed MACs as %v", allowed)
		}
		pingtest.Ping(t, s1.ns, "198.51.100.12", 2, 56)
	})

	t.Run("per-peer MAC cap", func(t *testing.T) {
		// s3's own MAC is learned afresh (well within the 3 s ageing), so
		// s3's port holds it and 7 of the 20 sources below.
		pingtest.Ping(t, s3.ns, "198.51.100.1", 1, 56)
		before := info(t, hub).Switch.CapHit
		fd := s3.ns.RawSocket(s3.name)
		const n = 20
		for i := range n {
			src := l2switch.MAC{0x02, 0x00, 0x5e, 0x20, 0x00, byte(i)}
			if _, err := unix.Write(fd, ethFrame(l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src, testEtherType, marker(t, "cap"))); err != nil {
				t.Fatal(err)
			}
		}
		var in tunnel.Info
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if in = info(t, hub); in.Switch.CapHit-before >= n-7 {
				break
			}
		}
		learned := 0
		for _, p := range in.Peers {
			if p.PublicKey == s3.pub().String() {
				learned = p.MACs
			}
		}
		if learned != 8 {
			t.Errorf("hub learned %d MACs behind s3, want the cap of 8", learned)
		}
		if hit := in.Switch.CapHit - before; hit != n-7 {
			t.Errorf("cap hit counted %d times, want %d", hit, n-7)
		}
		// The other spokes are not affected.
		pingtest.Ping(t, s1.ns, "198.51.100.12", 2, 56)
	})

	t.Run("a spoke that disappears blocks no one", func(t *testing.T) {
		s3.dev.Close() // its tunnel gone, its MACs still in the hub's table
		m := marker(t, "after s3 left")
		c := collect(t, s2.ns, s2.name, m)
		sendRaw(t, s1.ns, s1.name, ethFrame(l2switch.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, tapMAC(t, s1), testEtherType, m))
		if n := len(c.waitFrames(1)); n != 1 {
			t.Errorf("a broadcast reached s2 %d times with s3 gone, want once", n)
		}
		pingtest.Ping(t, s1.ns, "198.51.100.12", 5, 56)
		transfer(t, s2, s1, false, 1<<20)
	})
}

// hubNoAlloc moves TCP from s1 to s2 through the hub (iperf3 processes)
// and checks the three engines in this process allocate nothing per frame.
func hubNoAlloc(t *testing.T, s1, s2 *host) {
	dst := s2.inner[0].Addr()
	iperf3Server(t, s2.ns, dst)
	iperf3Client(t, s1.ns, dst, "-n", "1M")
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	iperf3Client(t, s1.ns, dst, "-n", "16K")
	runtime.ReadMemStats(&m1)
	start := time.Now()
	iperf3Client(t, s1.ns, dst, "-n", "128M")
	el := time.Since(start)
	runtime.ReadMemStats(&m2)
	extra := int64(m2.Mallocs-m1.Mallocs) - int64(m1.Mallocs-m0.Mallocs)
	t.Logf("128 MiB spoke to spoke through the hub in %v (%.0f Mbit/s); %d allocations beyond a 16 KiB run", el.Round(time.Millisecond), 128*8*1.048576/el.Seconds(), extra)
	if extra > 2000 && !raceEnabled {
		t.Errorf("%d allocations while about 90,000 frames crossed the hub: the switching path allocates", extra)
	}
}

// waitMAC waits up to 3 s for the hub to have mac on at's port.
func waitMAC(t *testing.T, hub *host, mac l2switch.MAC, at *host) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if macsOf(t, hub)[mac.String()] == at.pub().String() {
			return
		}
	}
	t.Fatalf("hub: %s not learned behind %s: %v", mac, at.name, macsOf(t, hub))
}

// TestTapServerBridge is OpenVPN's server-bridge: the hub's tap and a LAN
// port share a Linux bridge, and remote clients take addresses in the LAN's
// subnet (one of them from the LAN's DHCP server, through the tunnel),
// reaching the LAN host and each other.
func TestTapServerBridge(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	hns, lan := nstest.New(t), nstest.New(t)
	hubUnder := netip.MustParseAddr("198.18.0.1")
	hub := startTap(t, hns, "twhub", hubUnder, 51000, l2switch.Options{}) // no address: a bridge port
	nc, err := netconf.Open(hns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hns.Link(lan, "lanport", "lan0", nil, []string{"198.51.100.100/24", "2001:db8:2::100/64"})
	for _, step := range []error{nc.AddBridge("br0"), nc.AttachToBridge("twhub", "br0"), nc.AttachToBridge("lanport", "br0"), nc.SetUp("br0")} {
		if step != nil {
			t.Fatal(step)
		}
	}
	// The LAN runs a DHCP server: the second client takes its IPv4
	// address from it, through the tunnel.
	dhcp := startDHCPServer(t, lan, "lan0", "198.51.100.150", "198.51.100.159")
	var clients []*host
	for i := 1; i <= 2; i++ {
		ns := nstest.New(t)
		hubSide, clientSide := fmt.Sprintf("198.18.%d.1/24", i), fmt.Sprintf("198.18.%d.2/24", i)
		hns.Link(ns, fmt.Sprintf("hv%d", i), fmt.Sprintf("cv%d", i), []string{hubSide}, []string{clientSide})
		inner := []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("2001:db8:2::1%d/64", i))}
		if i == 1 {
			inner = append(inner, netip.MustParsePrefix("198.51.100.11/24"))
		}
		c := startTap(t, ns, fmt.Sprintf("twc%d", i), netip.MustParsePrefix(clientSide).Addr(), 51000+uint16(i), l2switch.Options{}, inner...)
		peer(t, hub, c, protocol.Key{}, 0, false)
		hub.under = netip.MustParsePrefix(hubSide).Addr()
		peer(t, c, hub, protocol.Key{}, 25, false)
		clients = append(clients, c)
	}
	for _, c := range clients {
		waitHandshake(t, c)
	}
	leased := dhcpLease(t, clients[1], dhcp)
	if !strings.HasPrefix(leased.String(), "198.51.100.15") || leased.Bits() != 24 {
		t.Fatalf("lease %s is not from the LAN's pool 198.51.100.150-159/24", leased)
	}
	clients[1].inner = append(clients[1].inner, leased)
	lanHost := &host{ns: lan, name: "lan0", inner: []netip.Prefix{netip.MustParsePrefix("198.51.100.100/24"), netip.MustParsePrefix("2001:db8:2::100/64")}}
	pingtest.Ping(t, clients[0].ns, "198.51.100.100", 3, 56)
	pingtest.Ping(t, clients[1].ns, "198.51.100.100", 3, 56)
	pingtest.Ping(t, clients[1].ns, "2001:db8:2::100", 3, 56)
	pingtest.Ping(t, lan, leased.Addr().String(), 3, 1472)
	pingtest.Ping(t, clients[0].ns, leased.Addr().String(), 3, 56)
	transfer(t, clients[0], lanHost, false, 4<<20)
	transfer(t, lanHost, clients[1], true, 4<<20)
	transfer(t, clients[1], clients[0], false, 4<<20)
	// The LAN side has a 1500-byte MTU: TCP from it never needs fragments
	// because the hub clamps the MSS of connections it sees to what one
	// datagram carries.
	if info(t, hub).Counters["mss_clamped"] == 0 {
		t.Error("no MSS clamped: the LAN host's 1460-byte MSS went through unchanged")
	}
}

// startDHCPServer runs busybox's udhcpd on link in ns, leasing from..to,
// until the test ends; it returns the lease directory.
func startDHCPServer(t *testing.T, ns *nstest.NS, link, from, to string) string {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs busybox for udhcpd/udhcpc (Debian package busybox; the README's test command installs it)")
	}
	dir := t.TempDir()
	conf := fmt.Sprintf("start %s\nend %s\ninterface %s\nlease_file %s/leases\npidfile %s/udhcpd.pid\noption subnet 255.255.255.0\noption lease 600\n",
		from, to, link, dir, dir)
	if err := os.WriteFile(dir+"/udhcpd.conf", []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir+"/leases", nil, 0o644)
	srv := ns.Command("busybox", "udhcpd", "-f", dir+"/udhcpd.conf")
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			t.Logf("udhcpd:\n%s", log.String())
		}
	})
	return dir
}

// dhcpLease runs busybox's udhcpc on h's tap until it has a lease, which
// its script puts on the tap, and returns the address.
func dhcpLease(t *testing.T, h *host, dir string) netip.Prefix {
	t.Helper()
	script := dir + "/udhcpc.sh"
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && ip addr add \"$ip/$mask\" dev \"$interface\"\nexit 0\n"), 0o755)
	out, err := h.ns.Output("busybox", "udhcpc", "-i", h.name, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script)
	if err != nil {
		t.Fatalf("no DHCP lease through the tunnel: %v\n%s", err, out)
	}
	addrs := h.ns.Run("ip", "-4", "-o", "addr", "show", "dev", h.name)
	for _, f := range strings.Fields(addrs) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
			return p
		}
	}
	t.Fatalf("udhcpc succeeded but %s has no IPv4 address:\n%s\n%s", h.name, out, addrs)
	return netip.Prefix{}
}

// TestTapModeMismatch joins a TAP end to a TUN end (tapwire, then
// wireguard-go): the handshake works, nothing is delivered, and tapwire
// reports the mismatch in its counters and status.
func TestTapModeMismatch(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	for _, other := range []string{"tapwire", "wireguard-go"} {
		t.Run("tap-vs-"+other, func(t *testing.T) {
			na, nb := wire(t)
			ua, ub := underlay(false)
			var logA, logB syncBuffer
			a := startEngine(t, na, "twa0", ua, 51001, tun.ModeTAP, tunnel.Options{Log: slog.New(slog.NewTextHandler(&logA, nil))}, inA4)
			var b *host
			if other == "tapwire" {
				b = startEngine(t, nb, "twb0", ub, 51002, tun.ModeTUN, tunnel.Options{Log: slog.New(slog.NewTextHandler(&logB, nil))}, inB4)
			} else {
				b = startWireguardGo(t, nb, "twb0", ub, 51002, inB4)
			}
			peer(t, a, b, protocol.Key{}, 0, false)
			peer(t, b, a, protocol.Key{}, 0, false)
			// Traffic both ways: each side starts a handshake and sends.
			for range 3 {
				na.Output("ping", "-c", "1", "-W", "1", inB4.Addr().String())
				nb.Output("ping", "-c", "1", "-W", "1", inA4.Addr().String())
				if info(t, a).Counters["mode_mismatch"] > 0 && (b.dev == nil || info(t, b).Counters["mode_mismatch"] > 0) {
					break
				}
			}
			if out, err := na.Output("ping", "-c", "1", "-W", "1", inB4.Addr().String()); err == nil {
				t.Fatalf("a ping crossed a TAP-TUN tunnel:\n%s", out)
			}
			ends := []*host{a}
			if b.dev != nil {
				ends = append(ends, b)
			}
			for _, h := range ends {
				in := info(t, h)
				if in.Counters["mode_mismatch"] == 0 || len(in.Peers) != 1 || in.Peers[0].ModeMismatch == 0 {
					t.Errorf("%s (%s) does not report the mismatch: counters %v, peers %+v", h.name, in.Mode, in.Counters, in.Peers)
				}
				if in.Counters["source_mismatch"] != 0 || in.Counters["bad_packet"] != 0 {
					t.Errorf("%s: mismatched data was decoded as data: %v", h.name, in.Counters)
				}
			}
			// Each tapwire end says so in its log, once (a minute).
			logs := map[string]*syncBuffer{"tap end": &logA}
			if b.dev != nil {
				logs["tun end"] = &logB
			}
			for end, l := range logs {
				if n := strings.Count(l.String(), "peer runs the other mode"); n != 1 {
					t.Errorf("the %s logged the mismatch %d times, want once:\n%s", end, n, l.String())
				}
			}
		})
	}
}

// TestTapForgedFrames sends a TAP end forged and altered frame messages: a
// captured genuine message replayed, retyped as a WireGuard transport
// message, and with a flipped ciphertext bit; plus garbage of the frame
// type. Each is dropped and counted as what it is (never as a mode
// mismatch, which only an authentic message can claim), nothing reaches the
// tap, and the tunnel keeps working.
func TestTapForgedFrames(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := tapPair(t, false)
	transfer(t, b, a, false, 1024) // handshake and ARP done

	data := captureData(t, a, b, protocol.TypeFrame)
	st := a.dev.Stats()
	replayed, bad, mismatch, unknown, malformed := st.Replayed.Load(), st.BadPacket.Load(), st.ModeMismatch.Load(), st.UnknownIndex.Load(), st.Malformed.Load()
	c := udpFrom(t, b.ns)
	to := netip.AddrPortFrom(a.under, a.port)
	send := func(m []byte) {
		if _, err := c.WriteToUDPAddrPort(m, to); err != nil {
			t.Fatal(err)
		}
	}
	send(data) // replayed
	retyped := append([]byte(nil), data...)
	retyped[1] = 0
	send(retyped) // claims to be WireGuard data: fails authentication
	flipped := append([]byte(nil), data...)
	flipped[40] ^= 1
	send(flipped) // the tag is checked before the counter: a bad packet, not a replay
	unknownIdx := append([]byte(nil), data...)
	unknownIdx[4] ^= 0xff
	send(unknownIdx)
	send(data[:protocol.TransportOverhead-1]) // too short
	time.Sleep(300 * time.Millisecond)
	expectSilence(t, c, 200*time.Millisecond, "forged frame messages")
	if got := st.Replayed.Load() - replayed; got != 1 {
		t.Errorf("replayed frame message counted %d times", got)
	}
	if got := st.BadPacket.Load() - bad; got != 2 {
		t.Errorf("retyped and flipped messages: %d bad packets counted, want 2", got)
	}
	if got := st.ModeMismatch.Load() - mismatch; got != 0 {
		t.Errorf("a forged message counted as a mode mismatch %d times", got)
	}
	if st.UnknownIndex.Load()-unknown != 1 || st.Malformed.Load()-malformed != 1 {
		t.Errorf("unknown index %d, malformed %d, want 1 and 1", st.UnknownIndex.Load()-unknown, st.Malformed.Load()-malformed)
	}
	transfer(t, a, b, false, 256<<10)
}
