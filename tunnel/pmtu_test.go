//go:build linux

package tunnel_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

// bridgeNet is OpenVPN's server-bridge at full size: a hub whose tap (MTU
// 1500, the default) shares bridge br0 with a LAN port, a LAN host at MTU
// 1500, and clients that reach the hub through a router whose link to the
// hub has the path MTU under test (the clients' own links are 1500, so
// only the path says the size: an ICMP report, or probes when the router
// sends no ICMP).
type bridgeNet struct {
	hub     *host
	lan     *host
	router  *nstest.NS
	clients []*host
}

// bridgeClient is one client's path: its MTU, and whether its underlay is
// IPv6.
type bridgeClient struct {
	mtu int
	v6  bool
}

func startBridgeNet(t *testing.T, blockICMP bool, paths ...bridgeClient) *bridgeNet {
	t.Helper()
	hns, lan, rns := nstest.New(t), nstest.New(t), nstest.New(t)
	rns.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	if blockICMP {
		// A black hole: the router drops what is too big and says nothing.
		rns.Run("nft", "add table inet blackhole; add chain inet blackhole out { type filter hook output priority 0; }; "+
			"add rule inet blackhole out icmp type destination-unreachable drop; "+
			"add rule inet blackhole out icmpv6 type packet-too-big drop")
	}
	bn := &bridgeNet{router: rns}
	bn.hub = startTap(t, hns, "twhub", netip.Addr{}, 51000, l2switch.Options{}) // no address: a bridge port
	hns.Link(lan, "lanport", "lan0", nil, []string{"198.51.100.100/24", "2001:db8:2::100/64"})
	nc, err := netconf.Open(hns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, step := range []error{nc.AddBridge("br0"), nc.AttachToBridge("twhub", "br0"), nc.AttachToBridge("lanport", "br0"), nc.SetUp("br0")} {
		if step != nil {
			t.Fatal(step)
		}
	}
	bn.lan = &host{ns: lan, name: "lan0", inner: []netip.Prefix{netip.MustParsePrefix("198.51.100.100/24"), netip.MustParsePrefix("2001:db8:2::100/64")}}
	for i, path := range paths {
		i++
		cns := nstest.New(t)
		// client <-1500-> router <-path MTU-> hub
		cAddr, rcAddr := fmt.Sprintf("198.18.1%d.2", i), fmt.Sprintf("198.18.1%d.1", i)
		rhAddr, hAddr := fmt.Sprintf("198.18.2%d.1", i), fmt.Sprintf("198.18.2%d.2", i)
		cAddr6, rcAddr6 := fmt.Sprintf("2001:db8:1%d::2", i), fmt.Sprintf("2001:db8:1%d::1", i)
		rhAddr6, hAddr6 := fmt.Sprintf("2001:db8:2%d::1", i), fmt.Sprintf("2001:db8:2%d::2", i)
		cns.Link(rns, fmt.Sprintf("cv%d", i), fmt.Sprintf("rc%d", i), []string{cAddr + "/24", cAddr6 + "/64"}, []string{rcAddr + "/24", rcAddr6 + "/64"})
		rns.Link(hns, fmt.Sprintf("rh%d", i), fmt.Sprintf("hr%d", i), []string{rhAddr + "/24", rhAddr6 + "/64"}, []string{hAddr + "/24", hAddr6 + "/64"})
		rns.Run("ip", "link", "set", fmt.Sprintf("rh%d", i), "mtu", fmt.Sprint(path.mtu))
		hns.Run("ip", "link", "set", fmt.Sprintf("hr%d", i), "mtu", fmt.Sprint(path.mtu))
		cns.Run("ip", "route", "add", "default", "via", rcAddr)
		cns.Run("ip", "-6", "route", "add", "default", "via", rcAddr6)
		hns.Run("ip", "route", "add", fmt.Sprintf("198.18.1%d.0/24", i), "via", rhAddr)
		hns.Run("ip", "-6", "route", "add", fmt.Sprintf("2001:db8:1%d::/64", i), "via", rhAddr6)
		under, hubUnder := netip.MustParseAddr(cAddr), netip.MustParseAddr(hAddr)
		if path.v6 {
			under, hubUnder = netip.MustParseAddr(cAddr6), netip.MustParseAddr(hAddr6)
		}
		inner := []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.51.100.1%d/24", i)), netip.MustParsePrefix(fmt.Sprintf("2001:db8:2::1%d/64", i))}
		c := startTap(t, cns, fmt.Sprintf("twc%d", i), under, 51000+uint16(i), l2switch.Options{}, inner...)
		peer(t, bn.hub, c, protocol.Key{}, 0, false)
		bn.hub.under = hubUnder
		peer(t, c, bn.hub, protocol.Key{}, 25, false)
		bn.clients = append(bn.clients, c)
	}
	for _, c := range bn.clients {
		waitHandshake(t, c)
	}
	return bn
}

// peerInfo returns what h's status says of its peer of key pub.
func peerInfo(t testing.TB, h *host, pub protocol.Key) tunnel.PeerInfo {
	t.Helper()
	for _, p := range info(t, h).Peers {
		if p.PublicKey == pub.String() {
			return p
		}
	}
	t.Fatalf("%s has no peer %s", h.name, pub)
	return tunnel.PeerInfo{}
}

// waitPathMTU waits up to 10 s for h's path MTU to its peer pub to be
// want, and returns what the status says of the peer.
func waitPathMTU(t testing.TB, h *host, pub protocol.Key, want int) tunnel.PeerInfo {
	t.Helper()
	var p tunnel.PeerInfo
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p = peerInfo(t, h, pub); p.PathMTU == want {
			return p
		}
	}
	t.Fatalf("%s: path MTU to peer %s is %d (%s), want %d", h.name, pub.String()[:8], p.PathMTU, p.PathMTUSource, want)
	return p
}

// iperf3UDP sends 1472-byte UDP datagrams (1500-byte IP packets) at rate
// for 2 s from ns to the iperf3 server at dst (from the server to ns with
// reverse) and returns the datagrams sent and lost, as the receiver counted
// them; the best of three tries, so that one scheduling hiccup of the
// shared machine is not taken for a fault.
func iperf3UDP(t *testing.T, ns *nstest.NS, dst netip.Addr, rate string, reverse bool) (packets, lost int) {
	t.Helper()
	args := []string{"-c", dst.String(), "-p", "5299", "-J", "-u", "-l", "1472", "-b", rate, "-t", "2"}
	if reverse {
		args = append(args, "-R")
	}
	best := -1
	var out string
	for range 3 {
		o, err := ns.Output("iperf3", args...)
		if i := strings.IndexByte(o, '{'); i > 0 {
			o = o[i:] // past iperf3's warning that the datagrams exceed the TCP MSS
		}
		var r struct {
			End struct {
				Sum struct {
					Packets     int `json:"packets"`
					LostPackets int `json:"lost_packets"`
				} `json:"sum"`
			} `json:"end"`
			Error string `json:"error"`
		}
		if err != nil || json.Unmarshal([]byte(o), &r) != nil || r.Error != "" || r.End.Sum.Packets == 0 {
			out = fmt.Sprintf("%v\n%s", err, o)
			time.Sleep(300 * time.Millisecond)
			continue
		}
		if best < 0 || r.End.Sum.LostPackets < lost {
			packets, lost, best = r.End.Sum.Packets, r.End.Sum.LostPackets, 1
		}
		if lost == 0 {
			break
		}
	}
	if best < 0 {
		t.Fatalf("iperf3 -u to %s failed:\n%s", dst, out)
	}
	return packets, lost
}

// TestTapFullSizeFrames is the server-bridge with a LAN host at MTU 1500
// and default configs, over paths of 1500 (IPv4 and IPv6), PPPoE's 1492
// behind a router that sends no ICMP, and IPv6's minimum 1280: 1500-byte IP
// packets with DF cross both ways between the LAN host and the client,
// 1472-byte UDP datagrams at 20 Mbit/s arrive without loss, TCP moves both
// ways without a single fragment (the MSS clamp), and each end's status
// shows the path's MTU.
func TestTapFullSizeFrames(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	for _, c := range []struct {
		name      string
		path      bridgeClient
		blockICMP bool
	}{
		{"1500 IPv4", bridgeClient{1500, false}, false},
		{"1500 IPv6", bridgeClient{1500, true}, false},
		{"1492 IPv4 no ICMP", bridgeClient{1492, false}, true},
		{"1280 IPv6", bridgeClient{1280, true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			bn := startBridgeNet(t, c.blockICMP, c.path)
			hub, lan, cl := bn.hub, bn.lan, bn.clients[0]
			clientAddr := cl.inner[0].Addr()
			// Both ends find the path's MTU: the client's interface is
			// 1500, so it learns from the router's ICMP report or, where
			// the router sends none, from probes; the hub from its own
			// interface and probes.
			pc := waitPathMTU(t, cl, hub.pub(), c.path.mtu)
			ph := waitPathMTU(t, hub, cl.pub(), c.path.mtu)
			t.Logf("client: path MTU %d (%s), %d bytes whole, clamp %d/%d; hub: %d (%s)", pc.PathMTU, pc.PathMTUSource, pc.MaxWhole, pc.MSS4, pc.MSS6, ph.PathMTU, ph.PathMTUSource)

			pingtest.PingDF(t, lan.ns, clientAddr.String(), 3, 1472)
			pingtest.PingDF(t, cl.ns, "198.51.100.100", 3, 1472)
			pingtest.PingDF(t, lan.ns, cl.inner[1].Addr().String(), 3, 1452) // a 1500-byte IPv6 packet
			pingtest.PingDF(t, cl.ns, "2001:db8:2::100", 3, 1452)

			iperf3Server(t, cl.ns, clientAddr)
			for _, reverse := range []bool{false, true} {
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				n, lost := iperf3UDP(t, lan.ns, clientAddr, "20M", reverse)
				runtime.ReadMemStats(&m1)
				allocs := m1.Mallocs - m0.Mallocs
				t.Logf("UDP 1472-byte datagrams, reverse %v: %d sent, %d lost; %d allocations in the engines and the test", reverse, n, lost, allocs)
				if lost != 0 {
					t.Errorf("UDP, reverse %v: %d of %d datagrams lost", reverse, lost, n)
				}
				// Splitting and joining frames allocates nothing per frame
				// (a few allocations for the test's own work and timers).
				if allocs > uint64(n)/4 && !raceEnabled {
					t.Errorf("%d allocations while %d frames crossed in fragments", allocs, n)
				}
			}

			before := info(t, hub).Counters["fragmented"] + info(t, cl).Counters["fragmented"]
			transfer(t, lan, cl, false, 4<<20)
			transfer(t, cl, lan, true, 4<<20)
			if after := info(t, hub).Counters["fragmented"] + info(t, cl).Counters["fragmented"]; after != before {
				t.Errorf("TCP needed %d fragmented frames: the MSS clamp let segments through that one datagram does not carry", after-before)
			}
			for _, h := range []*host{hub, cl} {
				in := info(t, h)
				for _, k := range []string{"frag_malformed", "frag_duplicate", "frag_overlap", "frag_mismatch", "too_big", "bad_packet"} {
					if in.Counters[k] != 0 {
						t.Errorf("%s: %s %d", h.name, k, in.Counters[k])
					}
				}
				t.Logf("%s: fragmented %d, reassembled %d, probes %d sent, %d answered", h.name, in.Counters["fragmented"],
					in.Counters["reassembled"], in.Counters["probes_sent"], in.Counters["probe_replies"])
			}
		})
	}
}

// TestTapHubPathsDiffer runs a hub whose two spokes have different paths
// (1500 over IPv4, 1400 over IPv6): full-size frames cross from spoke to
// spoke, each leg split as its own path needs.
func TestTapHubPathsDiffer(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	bn := startBridgeNet(t, false, bridgeClient{1500, false}, bridgeClient{1400, true})
	s1, s2 := bn.clients[0], bn.clients[1]
	waitPathMTU(t, bn.hub, s1.pub(), 1500)
	waitPathMTU(t, bn.hub, s2.pub(), 1400)
	pingtest.PingDF(t, s1.ns, s2.inner[0].Addr().String(), 3, 1472)
	pingtest.PingDF(t, s2.ns, s1.inner[1].Addr().String(), 3, 1452)
	transfer(t, s1, s2, false, 2<<20)
	if in := info(t, bn.hub); in.Counters["fragmented"] == 0 || in.Counters["reassembled"] == 0 {
		t.Errorf("the hub split and joined nothing: %v", in.Counters)
	}
}

// TestTapPathMTUStatus checks `tapwire status`'s view of the path: the
// MTU, how it was learned, what one datagram carries.
func TestTapPathMTUStatus(t *testing.T) {
	nstest.RequireRoot(t)
	bn := startBridgeNet(t, true, bridgeClient{1400, false})
	p := waitPathMTU(t, bn.clients[0], bn.hub.pub(), 1400)
	// 1400 - 20 (IPv4) - 8 (UDP) - 32 (transport) - 2 (length) = 1338
	if p.PathMTUSource != "probe" || p.MaxWhole != 1338 || !p.Tapwire {
		t.Errorf("peer info %+v: want learned by probe, 1338 bytes whole, a tapwire peer", p)
	}
	// An IP packet in a tagged frame of 1338 bytes: 1320, less 40 for TCP/IPv4.
	if p.MSS4 != 1280 || p.MSS6 != 1260 {
		t.Errorf("MSS clamp %d/%d, want 1280/1260", p.MSS4, p.MSS6)
	}
	if !strings.Contains(fmt.Sprint(info(t, bn.clients[0]).Counters), "probes_sent") {
		t.Error("no probe counter")
	}
}

// routedPair joins two TUN hosts through a router whose link to b has the
// given MTU (a's link is 1500): a is tapwire, b tapwire or, with wg,
// wireguard-go. The underlay is IPv6 with v6.
func routedPair(t *testing.T, mtu int, v6, wg bool) (a, b *host) {
	t.Helper()
	na, rns, nb := nstest.New(t), nstest.New(t), nstest.New(t)
	rns.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	na.Link(rns, "ar", "ra", []string{"198.18.30.2/24", "2001:db8:30::2/64"}, []string{"198.18.30.1/24", "2001:db8:30::1/64"})
	rns.Link(nb, "rb", "vb", []string{"198.18.31.1/24", "2001:db8:31::1/64"}, []string{"198.18.31.2/24", "2001:db8:31::2/64"})
	rns.Run("ip", "link", "set", "rb", "mtu", fmt.Sprint(mtu))
	nb.Run("ip", "link", "set", "vb", "mtu", fmt.Sprint(mtu))
	na.Run("ip", "route", "add", "default", "via", "198.18.30.1")
	na.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:30::1")
	nb.Run("ip", "route", "add", "default", "via", "198.18.31.1")
	nb.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:31::1")
	ua, ub := netip.MustParseAddr("198.18.30.2"), netip.MustParseAddr("198.18.31.2")
	if v6 {
		ua, ub = netip.MustParseAddr("2001:db8:30::2"), netip.MustParseAddr("2001:db8:31::2")
	}
	a = startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4, inA6)
	if wg {
		b = startWireguardGo(t, nb, "wgb0", ub, 51002, inB4, inB6)
		// As wg-quick sets it: its own link's MTU less 80 (wireguard-go
		// cannot send more than its link takes: its UDP GSO sends fail).
		nb.Run("ip", "link", "set", "wgb0", "mtu", fmt.Sprint(mtu-80))
	} else {
		b = startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4, inB6)
	}
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 25, false)
	return a, b
}

// routeMTU returns the MTU the kernel in h's namespace holds for the route
// to dst (0: none beyond the interface's), as `ip route get` shows it.
func routeMTU(t *testing.T, h *host, dst netip.Addr) int {
	out := h.ns.Run("ip", "route", "get", dst.String())
	f := strings.Fields(out)
	for i := range f[:len(f)-1] {
		if f[i] == "mtu" {
			var n int
			fmt.Sscan(f[i+1], &n)
			return n
		}
	}
	return 0
}

// TestTunPathMTU runs TUN tunnels (MTU 1420, the default) over a 1380-byte
// path: packets too big for it are answered with ICMP "fragmentation
// needed" / "packet too big" built by tapwire, so the sending stack lowers
// its path MTU and TCP goes through; IPv4 packets without DF are
// fragmented (inside the tunnel to a tapwire peer, as IPv4 fragments to a
// WireGuard peer); and each end's status shows the path.
func TestTunPathMTU(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	for _, c := range []struct {
		name string
		wg   bool
	}{{"to tapwire", false}, {"to wireguard-go", true}} {
		t.Run(c.name, func(t *testing.T) {
			if c.wg {
				requireWG(t)
				wireguardGo(t)
			}
			a, b := routedPair(t, 1380, false, c.wg)
			pingtest.Ping(t, a.ns, inB4.Addr().String(), 1, 56) // the handshake
			// 1380 - 20 (IPv4) - 8 (UDP) - 32 (transport): 1320-byte packets.
			const limit = 1320
			// Without DF: the first too-big packet teaches the path (the
			// router's ICMP report), then the packets are split.
			a.ns.Output("ping", "-n", "-M", "dont", "-c", "1", "-W", "1", "-s", "1392", inB4.Addr().String())
			p := waitPathMTU(t, a, b.pub(), 1380)
			pingtest.PingNoDF(t, a.ns, inB4.Addr().String(), 3, 1392)
			st := a.dev.Stats()
			if c.wg {
				if p.Tapwire || st.IPFragmented.Load() == 0 {
					t.Errorf("to wireguard-go: tapwire peer %v, %d packets IPv4-fragmented", p.Tapwire, st.IPFragmented.Load())
				}
			} else if !p.Tapwire || st.Fragmented.Load() == 0 {
				t.Errorf("to tapwire: tapwire peer %v, %d packets split in the tunnel", p.Tapwire, st.Fragmented.Load())
			}
			// With DF (and on IPv6): tapwire answers with ICMP, the stack
			// learns the path's MTU for that destination.
			a.ns.Output("ping", "-n", "-M", "do", "-c", "2", "-W", "1", "-s", "1392", inB4.Addr().String())
			if got := routeMTU(t, a, inB4.Addr()); got != limit {
				t.Errorf("after an ICMP too big from tapwire, the route to %s has MTU %d, want %d", inB4.Addr(), got, limit)
			}
			pingtest.PingDF(t, a.ns, inB4.Addr().String(), 3, limit-28)
			a.ns.Output("ping", "-n", "-c", "2", "-W", "1", "-s", "1372", inB6.Addr().String())
			if got := routeMTU(t, a, inB6.Addr()); got != limit {
				t.Errorf("after a packet too big from tapwire, the route to %s has MTU %d, want %d", inB6.Addr(), got, limit)
			}
			pingtest.Ping(t, a.ns, inB6.Addr().String(), 3, limit-48)
			if st.ICMPTooBig.Load() == 0 {
				t.Error("no ICMP too big written")
			}
			// TCP both ways (b's side of the path is its own interface).
			transfer(t, a, b, false, 2<<20)
			transfer(t, b, a, true, 2<<20)
			transfer(t, a, b, true, 2<<20)
			if !c.wg {
				pb := waitPathMTU(t, b, a.pub(), 1380)
				t.Logf("b's view of a: %+v", pb)
			}
		})
	}
}

// TestTunSmallIPv6Path runs a TUN tunnel between two tapwire ends over an
// IPv6 path of 1280, IPv6's minimum: one datagram carries 1200 bytes, less
// than the 1280-byte packets IPv6 hosts may always send, which no ICMP can
// ask for less than; they cross in fragments inside the tunnel.
func TestTunSmallIPv6Path(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	a, b := routedPair(t, 1280, true, false)
	pingtest.Ping(t, a.ns, inB6.Addr().String(), 1, 56)
	waitPathMTU(t, a, b.pub(), 1280)
	pingtest.PingDF(t, a.ns, inB6.Addr().String(), 3, 1232) // a 1280-byte IPv6 packet
	pingtest.PingDF(t, b.ns, inA6.Addr().String(), 3, 1232)
	if a.dev.Stats().Fragmented.Load() == 0 || b.dev.Stats().Reassembled.Load() == 0 {
		t.Error("no packet crossed in fragments")
	}
}

// TestTapJumboFrames runs TAP interfaces with MTU 9000 over a 1500-byte
// path: 9000-byte IP packets (frames of 9014 bytes, seven fragments) cross
// both ways, for ICMP and TCP.
func TestTapJumboFrames(t *testing.T) {
	nstest.RequireRoot(t)
	pingtest.Require(t)
	na, nb := wire(t)
	ua, ub := underlay(false)
	a := startTapMTU(t, na, "twa0", ua, 51001, 9000, inA4)
	b := startTapMTU(t, nb, "twb0", ub, 51002, 9000, inB4)
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 0, false)
	pingtest.Ping(t, na, inB4.Addr().String(), 1, 56)
	waitPathMTU(t, a, b.pub(), 1500)
	pingtest.PingDF(t, na, inB4.Addr().String(), 3, 8972)
	pingtest.PingDF(t, nb, inA4.Addr().String(), 3, 8972)
	transfer(t, a, b, false, 4<<20)
	if in := info(t, a); in.MaxFrame != 9018 || in.Counters["fragments_sent"] < 3*7 {
		t.Errorf("max frame %d, %d fragments sent", in.MaxFrame, in.Counters["fragments_sent"])
	}
}
