package tunnel

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/packet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// Path MTU: what size of datagram reaches each peer.
//
// The socket sends everything with Don't Fragment (setPathOptions), so a
// datagram too big for the path is dropped whole, never cut into IP
// fragments that firewalls and NATs lose. The engine keeps, per peer, the
// path MTU it believes in (Peer.pmtu: the largest IP packet, outer headers
// included), and
//
//   - starts, for a peer whose frames or packets it can split (a TAP peer,
//     a TUN peer known to be tapwire), from safePathMTU, so that nothing is
//     lost before probing says more; for any other peer, from the MTU of
//     the local route to the endpoint;
//   - lowers it when the kernel reports EMSGSIZE, for a datagram too big for
//     the interface or for a router on the path (ICMP "fragmentation needed"
//     or "packet too big", read from the socket's error queue), but never
//     below the family's minimum: an ICMP message can be forged, and a
//     forged one costs fragmentation, never reachability. Probes verify it
//     soon after; for a peer that is not probed, it expires after
//     probeInterval, as the kernel's own path MTU cache does;
//   - probes a tapwire peer: TypeProbe messages padded to the sizes to test,
//     all at once, which the peer answers with the size it received. The
//     largest answered size is the path MTU; answers raise it at once, and
//     a value probes confirmed is lowered only when two rounds in a row say
//     less (a lost probe is not a smaller path). Probes go out when a
//     session starts, when the endpoint moves to another address, soon
//     after an ICMP report, and every probeInterval.
//
// A peer counts as tapwire once it sent a probe, a probe's reply or a
// fragment. In TUN mode, until then, up to maxCapabilityProbes rounds of
// one small probe ask; a WireGuard peer drops them (an unknown message
// type, counted nowhere) and is asked again after probeGiveUp, or when its
// endpoint moves. In TAP mode every peer is taken to be tapwire, but one
// that answers no probe in maxCapabilityProbes rounds (an older tapwire,
// which knows neither probes nor fragments) gets whole frames only.
//
// What the engine does with the path MTU: a frame (TAP) or packet (TUN)
// too big for one datagram is split into TypeFragment messages for a tapwire
// peer; in TUN mode, a packet too big for a WireGuard peer is answered with
// ICMP "fragmentation needed" or "packet too big" (IPv4 without DF is
// fragmented as a router would). The MSS clamp follows each peer's path.
const (
	// safePathMTU is where a path starts when the engine can split what it
	// sends: IPv6's minimum MTU, which every path tapwire supports carries.
	safePathMTU = packet.IPv6MinMTU
	// minPathMTU4 and minPathMTU6 floor what ICMP reports may set.
	minPathMTU4 = 576
	minPathMTU6 = packet.IPv6MinMTU
	// probeTimeout is how long the replies to a round of probes are
	// awaited before the round's result counts.
	probeTimeout = time.Second
	// probeInterval is how often a settled path is probed again, and how
	// long an ICMP report holds for a peer that is not probed.
	probeInterval = 10 * time.Minute
	// probeRetry is how soon a round is repeated when it needs to be: no
	// reply at all, an ICMP report to verify.
	probeRetry = 5 * time.Second
	// maxCapabilityProbes is how many rounds without any reply make a peer
	// count as one that knows no probes, until its endpoint changes or
	// probeGiveUp passes.
	maxCapabilityProbes = 3
	probeGiveUp         = 30 * time.Minute
	// maxProbeSizes bounds the probes of one round.
	maxProbeSizes = 16
)

// commonMTUs are the path MTUs worth testing: small IPv4 paths, IPv6's
// minimum, the usual tunnel and PPPoE sizes, Ethernet's, and jumbo sizes.
var commonMTUs = [...]int{576, 1000, 1200, 1280, 1360, 1400, 1420, 1440, 1450, 1460, 1472, 1480, 1492, 1500, 2000, 4000, 9000}

// Probe plaintext layout (see protocol.TypeProbe).
const (
	probeOpRequest = 1
	probeOpReply   = 2
	probeHeaderLen = 12 // op, 3 reserved, round id (4), size (4)
)

// outerOverhead is what IP and UDP add to a message sent to ep.
func outerOverhead(ep netip.AddrPort) int {
	if ep.Addr().Unmap().Is4() {
		return packet.IPv4HeaderLen + packet.UDPHeaderLen
	}
	return packet.IPv6HeaderLen + packet.UDPHeaderLen
}

func minPathMTU(ep netip.AddrPort) int {
	if ep.Addr().Unmap().Is4() {
		return minPathMTU4
	}
	return minPathMTU6
}

// pathState is a peer's probing state; the timers goroutine drives it, the
// socket reader feeds it replies.
type pathState struct {
	mu       sync.Mutex
	ep       netip.AddrPort // the endpoint this state is about
	routeMTU int            // MTU of the local route to ep (0: unknown)
	source   string         // how the path MTU was learned: route, start, probe, icmp, local
	learned  time.Time      // when it last changed or was confirmed
	round    uint32         // id of the round in flight (0: none)
	roundAt  time.Time
	roundMax int // largest size answered in this round
	roundTop int // largest size probed in this round
	misses   int // rounds in a row without any reply
	lower    int // rounds in a row that found less than the path MTU
	next     time.Time
	seq      uint32
	capRound bool // the round in flight only asks whether a TUN peer is tapwire
	// announced is the path MTU last logged.
	announced int
}

// maxPlain returns the largest plaintext one message to ep carries on p's
// path, or 0 if the path is not known yet.
func (p *Peer) maxPlain(ep netip.AddrPort) int {
	mtu := int(p.pmtu.Load())
	if mtu == 0 {
		return 0
	}
	return mtu - outerOverhead(ep) - protocol.TransportOverhead
}

// canSplit reports whether p takes fragments: a TUN peer once it showed it
// is tapwire, a TAP peer unless it answered no probe (see legacy).
func (p *Peer) canSplit() bool {
	return p.ext.Load() || p.dev.mode == tun.ModeTAP && !p.legacy.Load()
}

// markTapwire notes that p sent a message only tapwire sends (a probe, a
// reply, a fragment): it takes fragments, and is probed from the next tick
// if it was not.
func (p *Peer) markTapwire() {
	if p.ext.Load() || p.ext.Swap(true) {
		return
	}
	p.path.mu.Lock()
	if p.path.round == 0 {
		p.path.next = time.Time{}
	}
	p.path.mu.Unlock()
}

// setPathMTU makes mtu p's path MTU, learned from source, and derives the
// MSS clamp from it. The caller holds p.path.mu.
func (p *Peer) setPathMTU(mtu int, source string, now time.Time) {
	p.pmtu.Store(int32(mtu))
	p.path.source, p.path.learned = source, now
	p.updateMSS()
}

// announce logs the path MTU when it changed since it was last logged
// (once per probe round, not once per reply). The caller holds p.path.mu.
func (p *Peer) announce() {
	st := &p.path
	mtu := int(p.pmtu.Load())
	if mtu == st.announced {
		return
	}
	level := slog.LevelInfo
	if st.announced == 0 {
		level = slog.LevelDebug // the first value, found as the session starts
	}
	p.dev.log.Log(context.Background(), level, "path MTU", "peer", p.public.String(), "mtu", mtu, "was", st.announced, "learned_from", st.source)
	st.announced = mtu
}

// updateMSS sets the peer's MSS clamp: what one message on its path
// carries, as an IP packet inside a frame with an 802.1Q tag in TAP mode,
// and never above what the device's MTU allows.
func (p *Peer) updateMSS() {
	d := p.dev
	if d.mss4 == 0 {
		return
	}
	ep := p.endpoint.Load()
	mss4, mss6 := d.mss4, d.mss6
	if ep != nil {
		if plain := p.maxPlain(*ep); plain > 0 {
			ipMTU := plain
			if d.mode == tun.ModeTAP {
				ipMTU -= frameLenSize + MaxFrameOverhead
			}
			m4, m6 := packet.MSSFor(ipMTU)
			mss4, mss6 = min(mss4, m4), min(mss6, m6)
		}
	}
	p.mss.Store(uint32(mss4)<<16 | uint32(mss6))
}

// clampMSS lowers the MSS of a TCP SYN in buf (a frame in TAP mode, an IP
// packet in TUN mode) to what p's path carries, when clamping is on.
func (p *Peer) clampMSS(buf []byte) {
	d := p.dev
	if d.mss4 == 0 {
		return
	}
	m := p.mss.Load()
	mss4, mss6 := uint16(m>>16), uint16(m)
	if m == 0 || p.stream.Load() != nil {
		mss4, mss6 = d.mss4, d.mss6 // on a stream, frames go whole
	}
	var clamped bool
	if d.mode == tun.ModeTAP {
		clamped = packet.ClampMSS(buf, mss4, mss6)
	} else {
		clamped = packet.ClampMSSIP(buf, mss4, mss6)
	}
	if clamped {
		d.stats.MSSClamped.Add(1)
	}
}

// endpointChanged starts the path afresh for a new endpoint address (a new
// port on the same address keeps it): from safePathMTU for a peer that
// takes fragments, else unknown (no limit) until the timers ask the route.
// It runs on the data path, so it asks the kernel nothing; the timers take
// it from there (tickPath).
func (p *Peer) endpointChanged(old *netip.AddrPort, ep netip.AddrPort) {
	if old != nil && old.Addr() == ep.Addr() {
		return
	}
	if p.canSplit() {
		p.pmtu.Store(safePathMTU)
	} else {
		p.pmtu.Store(0)
	}
	p.updateMSS()
}

// tickPath runs p's path MTU work: the route's MTU for a new endpoint, the
// end of a probe round, the start of the next. It runs on the timers
// goroutine only (it may ask the kernel for a route), and takes no lock of
// the device's: the probes it makes leave after it let go of the path's.
func (p *Peer) tickPath(now time.Time, sendProbe func(p *Peer, msg []byte)) {
	ep := p.endpoint.Load()
	if ep == nil {
		return
	}
	for _, msg := range p.pathWork(now, *ep) {
		sendProbe(p, msg)
	}
}

// pathWork is tickPath's work under the path's lock; it returns the probes
// to send.
func (p *Peer) pathWork(now time.Time, ep netip.AddrPort) [][]byte {
	d := p.dev
	st := &p.path
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ep != ep {
		newHost := st.ep.Addr() != ep.Addr()
		st.ep = ep
		st.routeMTU = d.routeMTU(ep)
		if newHost {
			st.round, st.misses, st.lower, st.next = 0, 0, 0, now
			p.legacy.Store(false)
			p.startPath(now)
		}
	}
	if st.round != 0 && now.Sub(st.roundAt) >= probeTimeout {
		p.endRound(now)
	}
	// A report about a peer that is not probed holds as long as the
	// kernel's would: then the route's MTU again.
	if !p.canSplit() && (st.source == "icmp" || st.source == "local") && now.Sub(st.learned) >= probeInterval {
		st.routeMTU = d.routeMTU(ep)
		p.startPath(now)
		p.announce()
	}
	if st.round != 0 || now.Before(st.next) || p.stream.Load() != nil || devconf.Transport(p.transport.Load()) == devconf.TransportTCP {
		return nil // on a stream, sizes do not matter
	}
	p.mu.Lock()
	kp := p.current
	p.mu.Unlock()
	if kp == nil || now.Sub(kp.Created) >= d.tm.RejectAfterTime {
		return nil // no session: the round starts with the next one
	}
	st.routeMTU = d.routeMTU(ep) // routes change; this costs two system calls
	sizes := p.probeSizes(ep, st.routeMTU)
	if len(sizes) == 0 {
		st.next = now.Add(probeInterval)
		return nil
	}
	st.seq = (st.seq + 1) &^ (1 << 31) // the top bit marks UDP checks
	if st.seq == 0 {
		st.seq++
	}
	st.round, st.roundAt, st.roundMax, st.roundTop = st.seq, now, 0, sizes[len(sizes)-1]
	st.capRound = len(sizes) == 1 && !p.canSplit()
	over := outerOverhead(ep)
	probes := make([][]byte, 0, len(sizes))
	for _, size := range sizes {
		msg := make([]byte, size-over)
		plain := len(msg) - protocol.TransportOverhead
		b := msg[protocol.TransportHeaderSize:]
		b[0] = probeOpRequest
		binary.BigEndian.PutUint32(b[4:], st.round)
		binary.BigEndian.PutUint32(b[8:], uint32(len(msg)))
		m, err := kp.SealTransportType(msg, plain, plain, protocol.TypeProbe)
		if err != nil {
			break
		}
		probes = append(probes, msg[:m])
	}
	return probes
}

// startPath sets the path MTU a new endpoint starts from. The caller holds
// p.path.mu.
func (p *Peer) startPath(now time.Time) {
	st := &p.path
	switch {
	case p.canSplit():
		p.setPathMTU(safePathMTU, "start", now)
	case st.routeMTU > 0:
		p.setPathMTU(st.routeMTU, "route", now)
	default:
		p.setPathMTU(0, "", now) // unknown: nothing is held back
	}
}

// probeSizes lists the path MTUs a round tests: between the family's
// minimum and what matters, which is the least of the route's MTU and the
// largest message the device sends, the top one always included. A TUN
// peer not known to be tapwire gets one small probe, which asks whether it
// is.
func (p *Peer) probeSizes(ep netip.AddrPort, routeMTU int) []int {
	d := p.dev
	over := outerOverhead(ep)
	lo := minPathMTU(ep)
	need := over + protocol.TransportOverhead + d.padMTU
	hi := need
	if routeMTU > 0 {
		hi = min(hi, routeMTU)
	}
	hi = min(hi, 65535)
	if hi < lo {
		return nil
	}
	if d.mode != tun.ModeTAP && !p.canSplit() {
		return []int{min(hi, max(lo, safePathMTU))}
	}
	var sizes []int
	for _, m := range commonMTUs {
		if m >= lo && m < hi && len(sizes) < maxProbeSizes-1 {
			sizes = append(sizes, m)
		}
	}
	return append(sizes, hi)
}

// endRound takes a round's result. The caller holds p.path.mu.
func (p *Peer) endRound(now time.Time) {
	st := &p.path
	st.round = 0
	defer p.announce()
	cur := int(p.pmtu.Load())
	switch {
	case st.capRound && p.canSplit():
		// The peer answered, or showed otherwise, that it is tapwire:
		// now the real round.
		st.misses, st.next = 0, now
	case st.roundMax == 0:
		st.misses++
		st.next = now.Add(probeRetry)
		if st.misses < maxCapabilityProbes || p.ext.Load() {
			if st.misses >= maxCapabilityProbes {
				st.next = now.Add(probeInterval) // a tapwire peer that went quiet
			}
			return
		}
		// It knows no probes: a WireGuard peer (TUN), or an older tapwire
		// (TAP), which gets whole frames from now on.
		st.misses, st.next = 0, now.Add(probeGiveUp)
		if p.dev.mode == tun.ModeTAP && !p.legacy.Swap(true) {
			p.dev.log.Warn("peer answers no path MTU probes (an older tapwire?): frames too big for one datagram cannot reach it",
				"peer", p.public.String(), "fix", "run the same tapwire version on both ends")
			p.startPath(now)
		}
	case st.roundMax < min(cur, st.roundTop):
		st.misses = 0
		if st.source == "probe" {
			if st.lower++; st.lower < 2 {
				st.next = now.Add(probeTimeout) // confirm before lowering
				return
			}
		}
		st.lower = 0
		p.setPathMTU(max(st.roundMax, minPathMTU(st.ep)), "probe", now)
		st.next = now.Add(probeInterval)
	default:
		// The path carries what was probed: the current value, or every
		// size the tunnel sends (the top one).
		st.misses, st.lower = 0, 0
		if st.roundMax >= cur || st.roundMax == st.roundTop {
			st.source, st.learned = "probe", now
		}
		st.next = now.Add(probeInterval)
	}
}

// handleProbe answers a probe or takes a reply, on a socket or stream
// reader. plain is the message's plaintext, size the message's length as
// received; it came over UDP from src, or on the stream via. A probe is
// answered the way it came (so that an auto peer on TCP learns whether UDP
// works); a reply to a UDP check (see checkUDP) goes to the transport's
// state, one to a path MTU probe to the path's.
func (p *Peer) handleProbe(kp *protocol.Keypair, plain []byte, size int, src netip.AddrPort, via *stream) {
	d := p.dev
	if len(plain) < probeHeaderLen {
		d.stats.BadPacket.Add(1)
		return
	}
	id := binary.BigEndian.Uint32(plain[4:8])
	switch plain[0] {
	case probeOpRequest:
		var buf [protocol.TransportOverhead + probeHeaderLen + protocol.PaddingMultiple]byte
		b := buf[protocol.TransportHeaderSize:]
		b[0] = probeOpReply
		binary.BigEndian.PutUint32(b[4:], id)
		binary.BigEndian.PutUint32(b[8:], uint32(size))
		m, err := kp.SealTransportType(buf[:], probeHeaderLen, 0, protocol.TypeProbe)
		if err != nil {
			return
		}
		sent := false
		switch {
		case via != nil:
			sent = via.enqueue(buf[:m])
		case id&(1<<31) != 0 || p.stream.Load() != nil:
			// A UDP check: answered over UDP, to where it came from.
			sent = writeTo(d.udpConn(), buf[:m], src) == nil
		default:
			sent = d.send(p, buf[:m]) == nil
		}
		if sent {
			d.stats.ProbeReplies.Add(1)
		}
	case probeOpReply:
		if id&(1<<31) != 0 {
			if via == nil {
				p.udpAnswered(id)
			}
			return
		}
		ep := p.endpoint.Load()
		if ep == nil {
			return
		}
		mtu := int(binary.BigEndian.Uint32(plain[8:12])) + outerOverhead(*ep)
		now := p.dev.now()
		st := &p.path
		st.mu.Lock()
		defer st.mu.Unlock()
		if id != st.round || st.round == 0 || mtu > st.roundTop {
			return // a late reply, or a size we did not probe
		}
		st.roundMax = max(st.roundMax, mtu)
		if mtu > int(p.pmtu.Load()) {
			p.setPathMTU(mtu, "probe", now)
		}
	default:
		d.stats.BadPacket.Add(1)
	}
}

// pathTooBig takes the kernel's report that a datagram to dst was too big
// for a path of mtu.
func (d *Device) pathTooBig(pe pathError) {
	now := d.now()
	peers := d.peerList.Load()
	if peers == nil {
		return
	}
	for _, p := range *peers {
		ep := p.endpoint.Load()
		if ep == nil || ep.Addr().Unmap() != pe.dst {
			continue
		}
		mtu := max(pe.mtu, minPathMTU(*ep))
		st := &p.path
		st.mu.Lock()
		if cur := int(p.pmtu.Load()); cur == 0 || mtu < cur {
			source := "icmp"
			if pe.local {
				source = "local"
			}
			p.setPathMTU(mtu, source, now)
			p.announce()
			p.wake() // the report holds for a while, or probes check it
			// An ICMP report may be forged or stale: a tapwire peer's
			// probes verify it soon (and raise the path back if it was).
			if p.canSplit() && st.round == 0 {
				st.next = now.Add(probeRetry)
			}
		}
		st.mu.Unlock()
	}
}

// pathError is what the kernel reported about a datagram the socket sent:
// it was too big for the path (an ICMP report) or for the interface (a
// local refusal), whose MTU is mtu.
type pathError struct {
	dst   netip.Addr
	mtu   int
	local bool // refused by this host (EMSGSIZE), not reported by a router
}
