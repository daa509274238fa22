//go:build linux

package tunnel

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// pathPeer is a peer of a device of mode with endpoint ep, for the path MTU
// state machine alone (no socket, no device).
func pathPeer(mode tun.Mode, ep string) *Peer {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &Device{mode: mode, log: log, padMTU: 1520, rtmtu: newKernelNetwork("", log), clock: systemClock{}}
	p := &Peer{dev: d}
	p.setEndpoint(netip.MustParseAddrPort(ep))
	p.path.ep = *p.endpoint.Load()
	return p
}

// round runs one probe round of p that the peer answers up to answered (0:
// not at all), and ends it.
func round(p *Peer, now time.Time, top, answered int) {
	st := &p.path
	st.mu.Lock()
	defer st.mu.Unlock()
	st.round, st.roundAt, st.roundTop, st.roundMax = 1, now, top, answered
	p.endRound(now)
}

func TestPathLoweredOnlyWhenConfirmed(t *testing.T) {
	now := time.Now()
	p := pathPeer(tun.ModeTAP, "192.0.2.1:51820")
	p.path.mu.Lock()
	p.setPathMTU(1500, "probe", now)
	p.path.mu.Unlock()
	round(p, now, 1500, 1400) // a lost probe, or a smaller path?
	if got := p.pmtu.Load(); got != 1500 {
		t.Fatalf("one round said 1400: path MTU %d, want 1500 kept", got)
	}
	round(p, now, 1500, 1400)
	if got := p.pmtu.Load(); got != 1400 {
		t.Fatalf("two rounds said 1400: path MTU %d", got)
	}
	// A value only the route gave is taken back at once.
	p.path.mu.Lock()
	p.setPathMTU(1500, "route", now)
	p.path.mu.Unlock()
	round(p, now, 1500, 1492)
	if got := p.pmtu.Load(); got != 1492 {
		t.Fatalf("the route said 1500, probes 1492: path MTU %d", got)
	}
}

// A TAP peer that answers no probe (an older tapwire) gets whole frames
// after maxCapabilityProbes rounds; one that then sends a probe is a
// tapwire peer again.
func TestTapPeerWithoutProbes(t *testing.T) {
	now := time.Now()
	p := pathPeer(tun.ModeTAP, "192.0.2.1:51820")
	if !p.canSplit() || p.pmtu.Load() != safePathMTU {
		t.Fatalf("a TAP peer starts splittable at %d: %v %d", safePathMTU, p.canSplit(), p.pmtu.Load())
	}
	p.path.routeMTU = 1500
	for i := range maxCapabilityProbes {
		if !p.canSplit() {
			t.Fatalf("gave up after %d rounds", i)
		}
		round(p, now, 1500, 0)
	}
	if p.canSplit() || p.pmtu.Load() != 1500 || !p.path.next.After(now.Add(probeGiveUp-time.Second)) {
		t.Fatalf("after %d silent rounds: splits %v, path MTU %d, next round in %v", maxCapabilityProbes, p.canSplit(), p.pmtu.Load(), p.path.next.Sub(now))
	}
	p.markTapwire()
	if !p.canSplit() || !p.path.next.IsZero() {
		t.Errorf("after a probe from the peer: splits %v, next round at %v", p.canSplit(), p.path.next)
	}
}

// A TUN peer is asked once per round whether it is tapwire; a WireGuard
// peer, which never answers, is asked again only after probeGiveUp, and
// never gets fragments.
func TestTunCapabilityRounds(t *testing.T) {
	now := time.Now()
	p := pathPeer(tun.ModeTUN, "[2001:db8::1]:51820")
	if sizes := p.probeSizes(*p.endpoint.Load(), 1500); len(sizes) != 1 || sizes[0] != 1280 {
		t.Fatalf("capability probe sizes %v, want [1280]", sizes)
	}
	for range maxCapabilityProbes {
		p.path.capRound = true
		round(p, now, 1280, 0)
	}
	if p.canSplit() || !p.path.next.After(now.Add(probeGiveUp-time.Second)) {
		t.Fatalf("a silent TUN peer: splits %v, next round in %v", p.canSplit(), p.path.next.Sub(now))
	}
	// A tapwire peer answers: the next round measures the path at once.
	q := pathPeer(tun.ModeTUN, "192.0.2.1:51820")
	q.path.capRound = true
	q.markTapwire()
	round(q, now, 1280, 1280)
	if !q.canSplit() || q.path.next.After(now) {
		t.Fatalf("a tapwire TUN peer: splits %v, next round in %v", q.canSplit(), q.path.next.Sub(now))
	}
	if sizes := q.probeSizes(*q.endpoint.Load(), 1500); len(sizes) < 10 || sizes[0] != 576 || sizes[len(sizes)-1] != 1500 {
		t.Errorf("probe sizes %v: want IPv4's small paths through 1500", sizes)
	}
}

// An ICMP report lowers the path at once but not below the family's
// minimum; for a peer that is not probed it expires after probeInterval.
func TestICMPReportFloorAndExpiry(t *testing.T) {
	now := time.Now()
	p := pathPeer(tun.ModeTUN, "192.0.2.1:51820")
	p.path.mu.Lock()
	p.setPathMTU(1500, "route", now)
	p.path.mu.Unlock()
	list := []*Peer{p}
	p.dev.peerList.Store(&list)
	p.dev.pathTooBig(pathError{dst: netip.MustParseAddr("192.0.2.1"), mtu: 68})
	if got := p.pmtu.Load(); got != minPathMTU4 {
		t.Fatalf("an ICMP report of 68: path MTU %d, want the floor %d", got, minPathMTU4)
	}
	p.dev.pathTooBig(pathError{dst: netip.MustParseAddr("192.0.2.9"), mtu: 600})
	if got := p.pmtu.Load(); got != minPathMTU4 {
		t.Fatalf("a report about another address changed the path: %d", got)
	}
	p.path.learned = now.Add(-probeInterval - time.Second)
	p.pathWork(now, *p.endpoint.Load())
	if got, src := p.pmtu.Load(), p.path.source; got == minPathMTU4 || src == "icmp" {
		t.Errorf("the report did not expire: path MTU %d from %s", got, src)
	}
}

// resolve keeps the current address while the name still has it, else
// takes one of the current endpoint's family; SetEndpointName checks its
// argument.
func TestResolveChoice(t *testing.T) {
	d := &Device{log: slog.New(slog.NewTextHandler(io.Discard, nil)), peers: map[protocol.Key]*Peer{}}
	ctx := context.Background()
	cur := netip.MustParseAddrPort("192.0.2.7:51820")
	if ep, err := d.resolve(ctx, "192.0.2.7:51820", &cur); err != nil || ep != cur {
		t.Errorf("same address: %v, %v", ep, err)
	}
	if ep, err := d.resolve(ctx, "[2001:db8::9]:4000", nil); err != nil || ep != netip.MustParseAddrPort("[2001:db8::9]:4000") {
		t.Errorf("IPv6 literal: %v, %v", ep, err)
	}
	k, _ := protocol.GeneratePrivateKey()
	p := &Peer{dev: d, public: k.PublicKey()}
	d.peers[p.public] = p
	for _, bad := range []string{"vpn.example.test", "vpn.example.test:0", ":51820", "vpn.example.test:http"} {
		if err := d.SetEndpointName(p.public, bad); err == nil {
			t.Errorf("SetEndpointName(%q) accepted", bad)
		}
	}
	if err := d.SetEndpointName(p.public, "vpn.example.test:51820"); err != nil || *p.epName.Load() != "vpn.example.test:51820" {
		t.Errorf("SetEndpointName: %v", err)
	}
	if err := d.SetEndpointName(protocol.Key{}, "vpn.example.test:51820"); err == nil {
		t.Error("a name for a peer the device does not have")
	}
}
