package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/fragment"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// maxStaged bounds the packets kept for a peer while its handshake runs.
const maxStaged = 128

// Peer is one remote end of the tunnel.
type Peer struct {
	dev     *Device
	public  protocol.Key
	cookies *protocol.CookieGenerator
	allowed map[netip.Prefix]struct{} // its allowed IPs, as in the routes; guarded by dev.mu

	endpoint  atomic.Pointer[netip.AddrPort]
	keepalive atomic.Uint32 // persistent keepalive interval, seconds (0: off)
	rxBytes   atomic.Uint64
	txBytes   atomic.Uint64
	lastHS    atomic.Int64 // unix nanoseconds of the last completed handshake
	lastSent  atomic.Int64 // unix nanoseconds of the last message sent
	// mismatch counts authentic messages of the other mode (see
	// Device.Mode); mismatchLogged is when that was last logged.
	mismatch       atomic.Uint64
	mismatchLogged atomic.Int64
	flood          floodBucket // TAP: the frames it had flooded (see l2.go)

	// The path (see pmtu.go): its MTU (the largest IP packet, outer
	// headers included; 0 unknown), the MSS clamp it allows (mss4<<16 |
	// mss6; 0 the device's), and whether the peer speaks tapwire's
	// extensions (fragments and probes).
	pmtu   atomic.Int32
	mss    atomic.Uint32
	ext    atomic.Bool
	legacy atomic.Bool   // TAP: the peer answered no probe (an older tapwire): whole frames only
	fragID atomic.Uint32 // id of the last frame or packet split for the peer
	path   pathState

	reasmMu sync.Mutex
	reasm   *fragment.Reassembler // fragments from the peer; made on first use

	// epName is the host:port the endpoint follows (see resolve.go; nil:
	// none); lastResolve when it was last resolved; resolving while it is.
	epName      atomic.Pointer[string]
	lastResolve atomic.Int64
	resolving   atomic.Bool

	// The transport (see stream.go): how the peer is configured to be
	// reached (a Transport), the stream it is reached by now (nil: UDP),
	// the moves between the two, and the dial and check state.
	transport    atomic.Uint32
	stream       atomic.Pointer[stream]
	toTCP, toUDP atomic.Uint64
	tr           transportState

	mu           sync.Mutex           // guards everything below
	hs           *protocol.Handshake  // our initiations
	hsr          *protocol.Handshake  // the peer's initiations (and their replay and flood protection)
	replay       protocol.ReplayState // hsr's replay protection, kept while the device has no key
	psk          protocol.Key
	current      *protocol.Keypair
	previous     *protocol.Keypair
	next         *protocol.Keypair // responder's keypair until the initiator uses it
	hsIndex      uint32            // local index of our initiation in flight (0: none)
	hsStarted    time.Time         // first initiation of the current attempt run
	hsSent       time.Time         // last initiation sent
	hsJitter     time.Duration
	staged       [][]byte
	needKA       time.Time   // data received and not answered since (zero: no)
	sentNoReply  time.Time   // data sent and nothing received since (zero: no)
	rekeyPending bool        // a rekey was asked for on receive
	removed      bool        // the peer was removed: start nothing new
	gone         atomic.Bool // removed, for the data path (which takes no lock): deliver nothing
	// The timers' schedule (see timerset.go): queued while in the
	// device's awake list, dueAt when they look at it next (unix ns, 0:
	// not scheduled), gen the timer goroutine's count of evaluations.
	queued atomic.Bool
	dueAt  atomic.Int64
	gen    uint32
}

func newPeer(d *Device, pub protocol.Key) *Peer {
	p := &Peer{dev: d, public: pub, cookies: protocol.NewCookieGenerator(pub)}
	var id [4]byte
	rand.Read(id[:])
	p.fragID.Store(binary.LittleEndian.Uint32(id[:])) // a restarted sender's ids are not its old ones
	if d.local != nil {
		p.hs, p.hsr = protocol.NewHandshakePair(d.local, pub, protocol.Key{})
	}
	return p
}

// sendPacket encrypts the packet buf[16:16+n] in place and sends it (or
// queues it in sb, when not nil), or stages it and starts a handshake when
// there is no usable keypair.
func (p *Peer) sendPacket(buf []byte, n int, sb *udpBatch) {
	d := p.dev
	now := p.dev.now()
	p.mu.Lock()
	kp := p.current
	usable := kp != nil && now.Sub(kp.Created) < d.tm.RejectAfterTime && kp.SendCount() < protocol.RejectAfterMessages
	if !usable {
		p.stage(buf[protocol.TransportHeaderSize : protocol.TransportHeaderSize+n])
		p.mu.Unlock()
		p.initiate(now, false)
		return
	}
	rekey := kp.Initiator && (now.Sub(kp.Created) >= d.tm.RekeyAfterTime || kp.SendCount() >= d.tm.RekeyAfterMessages)
	if n > 0 && p.sentNoReply.IsZero() {
		p.sentNoReply = now
		p.soon(now.Add(d.tm.KeepaliveTimeout + d.tm.RekeyTimeout))
	}
	p.needKA = time.Time{}
	p.mu.Unlock()

	p.seal(kp, buf, n, sb)
	if rekey {
		p.initiate(now, false)
	}
}

// seal pads, encrypts and sends one packet with kp, or queues it in sb. A
// packet too big for one message on the peer's path is split into
// fragments when the peer takes them (see sealFragments).
func (p *Peer) seal(kp *protocol.Keypair, buf []byte, n int, sb *udpBatch) {
	d := p.dev
	limit := p.limit()
	if limit < 0 {
		d.stats.NoEndpoint.Add(1)
		return
	}
	pad := d.padMTU
	if limit > 0 {
		if n > limit && p.canSplit() {
			p.sealFragments(kp, buf[protocol.TransportHeaderSize:protocol.TransportHeaderSize+n], limit, sb)
			return
		}
		pad = min(pad, max(limit, n)) // padding never makes a message too big
	}
	job := sealJob{kp: kp, buf: buf, n: n, pad: pad, typ: d.msgType}
	m, ok := job.prepare()
	if !ok {
		return
	}
	p.queue(buf[:m], &job, sb)
}

// limit returns the largest plaintext one message carries on p's path: on
// a stream what a message's 2-byte length allows, over UDP what the path
// MTU allows (0: not known yet, no limit), -1 when p has no path at all.
func (p *Peer) limit() int {
	if p.liveStream() != nil {
		return 0xffff - protocol.TransportOverhead
	}
	ep := p.endpoint.Load()
	if ep == nil {
		return -1
	}
	return p.maxPlain(*ep)
}

// queue sends a message on p's path: its stream, or its UDP endpoint (now
// when sb is nil, else with sb's next flush). job, when not nil, is the
// work that seals msg: msg leaves sealed whichever way it goes (sb seals
// it at its flush at the latest, and nowhere else is it kept unsealed).
func (p *Peer) queue(msg []byte, job *sealJob, sb *udpBatch) {
	if s := p.liveStream(); s != nil {
		if job != nil {
			job.seal()
		}
		if s.enqueue(msg) {
			p.txBytes.Add(uint64(len(msg)))
			p.lastSent.Store(p.dev.now().UnixNano())
		}
		return
	}
	if devconf.Transport(p.transport.Load()) == devconf.TransportTCP {
		p.dev.stats.NoEndpoint.Add(1) // no stream yet: nothing goes over UDP
		return
	}
	if sb == nil {
		if job != nil {
			job.seal()
		}
		p.dev.send(p, msg)
		return
	}
	ep := p.endpoint.Load()
	if ep == nil {
		p.dev.stats.NoEndpoint.Add(1)
		return
	}
	ok := false
	if job != nil {
		ok = sb.addJob(msg, *ep, job)
	} else {
		ok = sb.add(msg, *ep)
	}
	if !ok {
		p.dev.stats.NoEndpoint.Add(1) // an IPv6 endpoint on an IPv4-only socket
		return
	}
	p.txBytes.Add(uint64(len(msg)))
	p.lastSent.Store(p.dev.now().UnixNano())
}

// stage keeps a copy of a packet until a keypair is ready; the oldest go
// first when the queue is full.
func (p *Peer) stage(pkt []byte) {
	if p.removed {
		return
	}
	if len(p.staged) >= maxStaged {
		p.staged = p.staged[1:]
	}
	p.staged = append(p.staged, append([]byte(nil), pkt...))
	p.wake()
}

// sendKeepalive sends an empty transport message if there is a keypair.
func (p *Peer) sendKeepalive() {
	now := p.dev.now()
	tm := p.dev.tm
	p.mu.Lock()
	kp := p.current
	p.needKA = time.Time{}
	p.mu.Unlock()
	if kp == nil || now.Sub(kp.Created) >= tm.RejectAfterTime {
		p.initiate(now, false)
		return
	}
	var buf [protocol.TransportOverhead]byte
	p.seal(kp, buf[:], 0, nil)
	// Keepalives keep keys fresh too, as data does.
	if kp.Initiator && (now.Sub(kp.Created) >= tm.RekeyAfterTime || kp.SendCount() >= tm.RekeyAfterMessages) {
		p.initiate(now, false)
	}
}

// initiate sends a handshake initiation, unless one was sent less than
// RekeyTimeout ago (retry is for the timer that resends it).
func (p *Peer) initiate(now time.Time, retry bool) {
	p.initiateOn(now, retry, nil)
}

// initiateOn is initiate with the initiation sent on the stream on (a new
// one, before it becomes p's path) instead of p's path, when on is not nil.
func (p *Peer) initiateOn(now time.Time, retry bool, on *stream) {
	d := p.dev
	p.mu.Lock()
	noPath := p.endpoint.Load() == nil && p.stream.Load() == nil ||
		devconf.Transport(p.transport.Load()) == devconf.TransportTCP && p.stream.Load() == nil // its dial initiates
	if p.removed || p.hs == nil || on == nil && noPath {
		p.mu.Unlock()
		return
	}
	if !retry && now.Sub(p.hsSent) < d.tm.RekeyTimeout {
		p.mu.Unlock()
		return
	}
	if !retry || p.hsIndex == 0 {
		p.hsStarted = now
	}
	// The attempt counts whether or not it succeeds (as in wireguard-go):
	// a peer whose key can make no handshake (a low-order point) is tried,
	// and warned about, once per RekeyTimeout, not for every packet.
	p.hsSent = now
	d.indices.del(p.hsIndex)
	idx := d.indices.add(indexEntry{peer: p})
	var msg [protocol.InitiationSize]byte
	n, err := p.hs.CreateInitiation(now, idx, msg[:])
	if err != nil {
		d.indices.del(idx)
		p.hsIndex = 0
		p.mu.Unlock()
		d.log.Warn("create handshake initiation", "peer", p.public.String(), "err", err)
		return
	}
	p.hsIndex = idx
	p.hsJitter = jitter(d.tm.RekeyTimeout)
	p.cookies.AddMACs(msg[:n])
	p.mu.Unlock()
	p.wake() // to retry, and give up
	d.log.Debug("sending handshake initiation", "peer", p.public.String())
	if on != nil {
		on.enqueue(msg[:n])
		p.lastSent.Store(now.UnixNano())
		return
	}
	d.send(p, msg[:n])
}

// jitter returns a random delay of up to a fifteenth of rekeyTimeout (333
// ms for the standard 5 s), as the whitepaper asks of retries.
func jitter(rekeyTimeout time.Duration) time.Duration {
	var b [8]byte
	rand.Read(b[:])
	return time.Duration(binary.LittleEndian.Uint64(b[:]) % uint64(rekeyTimeout/15+1))
}

// handleInitiation answers a valid initiation from this peer.
//
// It uses the responder's handshake state, so an initiation of our own in
// flight survives: when both ends start a handshake at the same moment (as
// two taps do when they come up and send their IPv6 multicast), each
// answers the other and each completes its own, instead of both failing
// and waiting RekeyTimeout to retry. The two keypairs both work (see
// rotate); against a peer with one state for both roles (wireguard-go),
// our own handshake completes.
func (p *Peer) handleInitiation(in *protocol.Initiation, src netip.AddrPort, via *stream) {
	d := p.dev
	now := p.dev.now()
	p.mu.Lock()
	if p.removed || p.hsr == nil {
		p.mu.Unlock()
		return
	}
	if err := p.hsr.AcceptInitiation(in, now); err != nil {
		p.mu.Unlock()
		d.stats.BadHandshake.Add(1)
		return
	}
	idx := d.indices.add(indexEntry{peer: p})
	var msg [protocol.ResponseSize]byte
	n, err := p.hsr.CreateResponse(idx, msg[:])
	if err != nil {
		d.indices.del(idx)
		p.mu.Unlock()
		d.stats.BadHandshake.Add(1)
		return
	}
	kp, err := p.hsr.DeriveKeypair(now)
	if err != nil {
		d.indices.del(idx)
		p.mu.Unlock()
		d.stats.BadHandshake.Add(1)
		return
	}
	d.indices.set(idx, indexEntry{peer: p, kp: kp})
	if p.next != nil {
		d.indices.del(p.next.LocalIndex)
	}
	p.next = kp
	p.hsSent = now // do not start a crossing initiation of our own right away
	p.cookies.AddMACs(msg[:n])
	p.mu.Unlock()
	p.wake() // to expire the keypair the initiator may never confirm
	p.setPath(src, via)
	d.log.Debug("answered handshake initiation", "peer", p.public.String(), "from", src)
	d.send(p, msg[:n])
}

// handleResponse completes our handshake.
func (p *Peer) handleResponse(msg []byte, receiver uint32, src netip.AddrPort, via *stream) {
	d := p.dev
	now := p.dev.now()
	p.mu.Lock()
	if p.removed || p.hs == nil || receiver != p.hsIndex {
		p.mu.Unlock()
		d.stats.UnknownIndex.Add(1)
		return
	}
	if err := p.hs.ConsumeResponse(msg); err != nil {
		p.mu.Unlock()
		d.stats.BadHandshake.Add(1)
		return
	}
	kp, err := p.hs.DeriveKeypair(now)
	if err != nil {
		p.mu.Unlock()
		d.stats.BadHandshake.Add(1)
		return
	}
	d.indices.set(receiver, indexEntry{peer: p, kp: kp})
	p.hsIndex = 0
	p.rotate(kp)
	p.sentNoReply = time.Time{}
	p.lastHS.Store(now.UnixNano())
	d.stats.HandshakesCompleted.Add(1)
	staged := p.staged
	p.staged = nil
	p.mu.Unlock()
	p.wake() // a session: its path's probes, its keys' lifetime
	p.setPath(src, via)
	d.log.Debug("handshake complete", "peer", p.public.String(), "role", "initiator")

	// The responder starts using the keypair when it hears from us, so
	// send what waited, or at least a keepalive.
	if len(staged) == 0 {
		p.sendKeepalive()
		return
	}
	p.sendStaged(staged)
}

// sendStaged sends packets that waited for a keypair.
func (p *Peer) sendStaged(staged [][]byte) {
	buf := make([]byte, tun.Headroom+tun.MaxPacket)
	for _, pkt := range staged {
		n := copy(buf[protocol.TransportHeaderSize:], pkt)
		p.sendPacket(buf, n, nil)
	}
}

// rotate makes kp the current keypair. The caller holds p.mu.
func (p *Peer) rotate(kp *protocol.Keypair) {
	del := p.dev.indices.del
	if p.previous != nil {
		del(p.previous.LocalIndex)
	}
	if p.next != nil && p.next != kp {
		// We completed our own handshake while the peer's was waiting for
		// confirmation: the peer may already send with that keypair (its
		// current), so keep it as previous, as wireguard-go does.
		if p.current != nil {
			del(p.current.LocalIndex)
		}
		p.previous, p.current, p.next = p.next, kp, nil
		return
	}
	p.previous, p.current, p.next = p.current, kp, nil
}

// handleTransport decrypts a data message in place and returns its packet
// if the packet's source is one of the peer's allowed IPs (nil otherwise,
// and for keepalives); in TAP mode, its frame. A message of the other mode
// (typ) counts as a keepalive for the timers, and delivers nothing.
//
// A fragment is put together with the peer's others in rx (nil: dropped),
// and what it completes is returned like the packet or frame of a whole
// message; a probe is answered. Both count as keepalives for the timers.
func (p *Peer) handleTransport(kp *protocol.Keypair, msg []byte, typ uint32, src netip.AddrPort, rx []byte, via *stream) []byte {
	plain, counter, err := kp.AuthenticateTransport(msg)
	return p.deliver(kp, msg, plain, counter, err, typ, src, rx, via)
}

// deliver is handleTransport once kp.AuthenticateTransport(msg) returned
// plain, counter and err, possibly on another goroutine: the replay window
// and everything after it, in the order the messages are to be handled.
func (p *Peer) deliver(kp *protocol.Keypair, msg, plain []byte, counter uint64, err error, typ uint32, src netip.AddrPort, rx []byte, via *stream) []byte {
	if p.gone.Load() {
		// Removed meanwhile: nothing it sent is delivered, and the switch
		// learns none of its addresses (its port is gone with its AllowedMACs).
		return nil
	}
	d := p.dev
	now := p.dev.now()
	if now.Sub(kp.Created) >= d.tm.RejectAfterTime {
		d.stats.BadPacket.Add(1)
		return nil
	}
	if err == nil && !kp.CheckReplay(counter) {
		d.stats.Replayed.Add(1)
		return nil
	}
	if err != nil {
		d.stats.BadPacket.Add(1)
		return nil
	}
	pkt := plain
	p.rxBytes.Add(uint64(len(msg)))
	whole := false // pkt is a frame or packet put together from fragments
	switch typ {
	case protocol.TypeProbe:
		// A probe (or its reply) moves no endpoint: an auto peer on TCP
		// checks UDP with them.
		p.markTapwire()
		p.handleProbe(kp, pkt, len(msg), src, via)
		pkt = nil
	case protocol.TypeFragment:
		p.setPath(src, via)
		p.markTapwire()
		pkt, whole = p.reassemble(pkt, now, rx), true
	case d.msgType:
		p.setPath(src, via) // roaming: the path follows authenticated packets
	default:
		p.setPath(src, via)
		p.modeMismatch()
		pkt = nil
	}

	p.mu.Lock()
	var staged [][]byte
	if kp == p.next {
		// The initiator used the keypair: the handshake is confirmed. Our own
		// initiation, if any, is moot; what waited for a keypair goes now.
		p.rotate(kp)
		d.indices.del(p.hsIndex)
		p.hsIndex = 0
		p.lastHS.Store(now.UnixNano())
		d.stats.HandshakesCompleted.Add(1)
		staged, p.staged = p.staged, nil
		p.wake() // a session: its path's probes, its keys' lifetime
	}
	p.sentNoReply = time.Time{}
	if len(pkt) > 0 && p.needKA.IsZero() {
		p.needKA = now
		p.soon(now.Add(d.tm.KeepaliveTimeout))
	}
	rekey := false
	if cur := p.current; cur != nil && cur == kp && kp.Initiator && !p.rekeyPending &&
		now.Sub(kp.Created) >= d.tm.RejectAfterTime-d.tm.KeepaliveTimeout-d.tm.RekeyTimeout {
		p.rekeyPending, rekey = true, true
	}
	p.mu.Unlock()
	if len(staged) > 0 {
		p.sendStaged(staged)
	}
	if rekey {
		p.initiate(now, false)
	}
	if len(pkt) == 0 {
		return nil // keepalive
	}
	if d.mode == tun.ModeTAP {
		if whole {
			return d.acceptFrame(pkt, p)
		}
		return d.openFrame(pkt, p)
	}
	p.clampMSS(pkt)
	n := ipLength(pkt)
	if n == 0 || n > len(pkt) {
		d.stats.BadPacket.Add(1)
		return nil
	}
	pkt = pkt[:n]
	if owner, ok := d.routes.LookupSrc(pkt); !ok || owner != p {
		d.stats.SourceMismatch.Add(1)
		return nil
	}
	return pkt
}

// ipLength returns the length an IP packet's header claims, or 0.
func ipLength(pkt []byte) int {
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		return int(binary.BigEndian.Uint16(pkt[2:4]))
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		return 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
	}
	return 0
}

// setPath makes the way an authenticated message came p's path: the
// stream via, or (via nil) UDP from src. A peer that dialed its own stream
// (Transport tcp, or auto while UDP is blocked) keeps it whatever arrives
// over UDP; a peer that reached us by stream goes back to UDP when its
// messages do.
func (p *Peer) setPath(src netip.AddrPort, via *stream) {
	if via != nil {
		via.authenticated(p)
		return
	}
	p.setEndpoint(src)
	if s := p.stream.Load(); s != nil && s.outbound == nil {
		p.stream.CompareAndSwap(s, nil)
	}
}

func (p *Peer) setEndpoint(ep netip.AddrPort) {
	cur := p.endpoint.Load()
	if cur != nil && *cur == ep {
		return
	}
	e := ep // a copy, so that the unchanged case does not allocate
	p.endpoint.Store(&e)
	p.endpointChanged(cur, ep)
	p.wake() // the path starts again
}

// tick evaluates the peer's timers.
func (p *Peer) tick(now time.Time) {
	d := p.dev
	tm := d.tm
	p.mu.Lock()
	var retry, giveUp, keepalive, newHS bool
	if p.hsIndex != 0 && now.Sub(p.hsSent) >= tm.RekeyTimeout+p.hsJitter {
		if now.Sub(p.hsStarted) >= tm.RekeyAttemptTime {
			giveUp = true
			d.indices.del(p.hsIndex)
			p.hsIndex = 0
			p.staged = nil
		} else {
			retry = true
		}
	}
	if !p.needKA.IsZero() && now.Sub(p.needKA) >= tm.KeepaliveTimeout {
		keepalive = true
		p.needKA = time.Time{}
	}
	if !p.sentNoReply.IsZero() && now.Sub(p.sentNoReply) >= tm.KeepaliveTimeout+tm.RekeyTimeout {
		newHS = true
		p.sentNoReply = time.Time{}
	}
	if p.current != nil && p.current.Initiator && now.Sub(p.current.Created) < tm.RekeyTimeout {
		p.rekeyPending = false
	}
	// A responder's keypair the initiator never confirmed is useless once
	// RejectAfterTime old: gone then, whether or not any handshake ever
	// completed.
	if p.next != nil && now.Sub(p.next.Created) >= tm.RejectAfterTime {
		d.indices.del(p.next.LocalIndex)
		p.next = nil
	}
	// Forget keys nobody renewed for three times the reject time.
	if last := p.lastHS.Load(); last != 0 && now.Sub(time.Unix(0, last)) >= 3*tm.RejectAfterTime &&
		(p.current != nil || p.previous != nil || p.next != nil) {
		p.dropKeypairs()
		p.staged = nil
		if p.hs != nil {
			p.hs.Clear()
			p.hsr.Clear()
		}
	}
	p.mu.Unlock()

	switch {
	case giveUp:
		d.log.Debug("handshake gave up", "peer", p.public.String(), "after", tm.RekeyAttemptTime)
	case retry:
		p.initiate(now, true)
	case newHS:
		p.initiate(now, false)
	}
	if keepalive {
		p.sendKeepalive()
	}
	if ka := p.keepalive.Load(); ka > 0 {
		if now.Sub(time.Unix(0, p.lastSent.Load())) >= time.Duration(ka)*time.Second {
			p.sendKeepalive()
		}
	}
}

// dropKeypairs forgets every keypair. The caller holds p.mu.
func (p *Peer) dropKeypairs() {
	for _, kp := range []*protocol.Keypair{p.previous, p.current, p.next} {
		if kp != nil {
			p.dev.indices.del(kp.LocalIndex)
		}
	}
	p.previous, p.current, p.next = nil, nil, nil
}

// zeroKeys drops keypairs, any handshake in flight and staged packets, and
// marks the peer removed so that nothing new starts on it.
func (p *Peer) zeroKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed = true
	p.gone.Store(true)
	if p.hs != nil {
		p.hs.Clear()
		p.hsr.Clear()
	}
	p.dropKeypairs()
	p.dev.indices.del(p.hsIndex)
	p.hsIndex = 0
	p.staged = nil
}
