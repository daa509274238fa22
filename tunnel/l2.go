package tunnel

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"time"

	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// TAP mode: the device carries Ethernet frames, and the tunnel with them.
//
// A frame travels in a protocol.TypeFrame message, whose plaintext is
//
//	length (2 bytes, big endian) | frame (length bytes) | zero padding
//
// so that the receiver delivers exactly the frame that was sent, never the
// padding, and the length is authenticated. Every peer, and the local tap,
// is a port of a MAC learning switch (package l2switch): a frame goes to the
// port its destination was learned on, or is flooded to every port but the
// one it came from.
//
// A hub trusts its peers no more than their configuration says (issue 12,
// finding 14):
//
//   - the tap's own MAC address is pinned to the tap in the switch: a peer
//     sending from it is dropped (counted in the switch's Pinned), so no
//     peer can take over the hub's own host. The address is read at New and
//     again every second, so a change (ip link set address) is followed.
//   - a peer without AllowedMACs may send from any other address, and so
//     take over the other peers' hosts: when the device has two peers or
//     more, Apply (and SetAllowedMACs) logs a warning once per such peer,
//     and Info marks it (PeerInfo.AnyMAC).
//   - DeviceConfig.FloodLimit bounds the frames each peer may have
//     flooded (broadcast, multicast and unknown unicast: what a switch's
//     storm control bounds) per second, one second's worth at once; frames
//     over it are dropped and counted (Stats.FloodLimited, and per peer).

// frameLenSize is the size of the length before a frame in the plaintext.
const frameLenSize = 2

// frameHeadroom is what goes before a frame in a message buffer: the
// transport header and the frame's length.
const frameHeadroom = protocol.TransportHeaderSize + frameLenSize

// MaxFrameOverhead is what a frame carries beyond the IP MTU of a TAP
// interface: an Ethernet header (14 bytes) and one 802.1Q tag (4).
const MaxFrameOverhead = 14 + 4

// etherHeaderLen is the shortest frame: destination, source, EtherType.
const etherHeaderLen = 14

// l2out sends frames from one goroutine to peers: one of them may take the
// caller's buffer, the others get copies in scratch buffers, which live
// until the next flush of the socket batch.
type l2out struct {
	d       *Device
	sb      *udpBatch // nil: send one message at a time
	scratch [][]byte
	used    int
	// elastic: a pipeline's, flushed by its writer only: more scratch
	// buffers are made instead (and kept).
	elastic bool
}

func (d *Device) newL2Out(conn PacketConn, n int) *l2out {
	o := &l2out{d: d, scratch: make([][]byte, n)}
	for i := range o.scratch {
		o.scratch[i] = make([]byte, protocol.TransportOverhead+frameLenSize+d.maxFrame)
	}
	if conn != nil {
		o.sb = newUDPBatch(conn, n, 0)
	}
	return o
}

// send sends the frame in buf[frameHeadroom:frameHeadroom+n] to p, sealing
// it in place, its MSS clamped to what p's path carries.
func (o *l2out) send(p *Peer, buf []byte, n int) {
	p.clampMSS(buf[frameHeadroom : frameHeadroom+n])
	binary.BigEndian.PutUint16(buf[protocol.TransportHeaderSize:], uint16(n))
	p.sendPacket(buf, frameLenSize+n, o.sb)
}

// sendCopy sends a copy of frame to p.
func (o *l2out) sendCopy(p *Peer, frame []byte) {
	if o.used == len(o.scratch) {
		if o.elastic {
			o.scratch = append(o.scratch, make([]byte, len(o.scratch[0])))
		} else {
			o.flush()
		}
	}
	buf := o.scratch[o.used]
	o.used++
	copy(buf[frameHeadroom:], frame)
	o.send(p, buf, len(frame))
}

// flood sends frame to every peer but in. When inPlace is not nil, the
// frame is inPlace[frameHeadroom:] and the last peer gets it without a copy.
func (o *l2out) flood(in *Peer, frame, inPlace []byte) {
	peers := o.d.peerList.Load()
	if peers == nil {
		return
	}
	var last *Peer
	for _, p := range *peers {
		if p == in {
			continue
		}
		if last != nil {
			o.sendCopy(last, frame)
		}
		last = p
	}
	switch {
	case last == nil:
	case inPlace != nil:
		o.send(last, inPlace, len(frame))
	default:
		o.sendCopy(last, frame)
	}
}

func (o *l2out) flush() {
	if o.sb != nil {
		o.sb.flush()
		o.d.stats.GSOSends.Add(uint64(o.sb.gsoMsgs))
	}
	o.used = 0
}

// readTAP reads frames from the tap device and switches each to the peer
// its destination MAC was learned on, or floods it to every peer.
func (d *Device) readTAP() {
	const off = tun.Headroom
	d.readDevice(func(s *txSlot) {
		now := d.now()
		out := s.out
		for i := range s.n {
			frame := s.bufs[i][off : off+s.sizes[i]]
			if !d.checkFrame(frame) {
				continue
			}
			switch v, p := d.sw.Decide(frame, nil, now); v {
			case l2switch.Unicast:
				if p != nil {
					out.send(p, s.bufs[i][off-frameHeadroom:], len(frame))
				}
			case l2switch.Flood:
				out.flood(nil, frame, s.bufs[i][off-frameHeadroom:])
			}
		}
	})
}

// checkFrame reports whether a frame may cross the tunnel: at least an
// Ethernet header, at most the MTU plus MaxFrameOverhead.
func (d *Device) checkFrame(frame []byte) bool {
	switch {
	case len(frame) < etherHeaderLen:
		d.stats.Malformed.Add(1)
		return false
	case len(frame) > d.maxFrame:
		d.stats.TooBig.Add(1)
		return false
	}
	return true
}

// openFrame returns the frame in the plaintext of a frame message from p,
// or nil (counted) when it is malformed or too big.
func (d *Device) openFrame(plain []byte, p *Peer) []byte {
	if len(plain) < frameLenSize {
		d.stats.BadPacket.Add(1)
		return nil
	}
	n := int(binary.BigEndian.Uint16(plain))
	if frameLenSize+n > len(plain) {
		d.stats.BadPacket.Add(1)
		return nil
	}
	return d.acceptFrame(plain[frameLenSize:frameLenSize+n], p)
}

// acceptFrame returns a frame from p if it may cross (see checkFrame), its
// MSS clamped to what p's path carries, or nil.
func (d *Device) acceptFrame(frame []byte, p *Peer) []byte {
	if !d.checkFrame(frame) {
		return nil
	}
	p.clampMSS(frame)
	return frame
}

// switchFrame delivers a frame received from peer in: to the tap (through
// w), to another peer, or to all of them but in.
func (d *Device) switchFrame(frame []byte, in *Peer, now time.Time, w *tunWriter, out *l2out) {
	v, p := d.sw.Decide(frame, in, now)
	if in != nil && in.gone.Load() {
		// Removed while its frame was on the way: what Decide learned
		// goes with the port, and the frame goes nowhere.
		d.sw.RemovePort(in)
		return
	}
	switch v {
	case l2switch.Unicast:
		if p == nil {
			w.add(frame)
		} else {
			out.sendCopy(p, frame)
		}
	case l2switch.Flood:
		if in != nil && !in.flood.allow(now, d.hub.floodLimit.Load()) {
			d.stats.FloodLimited.Add(1)
			return
		}
		w.add(frame)
		out.flood(in, frame, nil)
	}
}

// SetAllowedMACs restricts the source MAC addresses a peer may send frames
// from (TAP mode); nil or empty lifts the restriction. It holds for the
// peer's public key, so it survives the peer's removal and re-creation,
// and may be set before Apply adds the peer (then Apply does not warn
// about the peer having none). Lifting it on a hub of two peers or more
// warns as Apply does.
func (d *Device) SetAllowedMACs(peer protocol.Key, macs []l2switch.MAC) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(macs) == 0 {
		delete(d.allowedMACs, peer)
	} else {
		d.allowedMACs[peer] = append([]l2switch.MAC(nil), macs...)
		delete(d.hub.warned, peer) // losing them again warns again
	}
	if p := d.peers[peer]; p != nil && d.sw != nil {
		d.sw.SetAllowed(p, macs)
	}
	d.warnAnyMAC()
}

// hubState is what a TAP hub keeps to protect itself from its peers (see
// the top of this file).
type hubState struct {
	// tapMAC is the tap's address pinned in the switch, as 1<<48 | the
	// address (0: none); written by New and the timers only.
	tapMAC atomic.Uint64
	// floodLimit is how many frames a second each peer may have flooded
	// (0: no limit).
	floodLimit atomic.Uint32
	// warned holds the peers warned about for having no AllowedMACs
	// (guarded by Device.mu).
	warned map[protocol.Key]bool
}

// hardwareAddresser is a PacketDevice with a MAC address: a TAP
// *tun.Device, or an in-memory one.
type hardwareAddresser interface {
	HardwareAddr() (net.HardwareAddr, error)
}

func packMAC(m l2switch.MAC) uint64 {
	var b [8]byte
	copy(b[2:], m[:])
	return 1<<48 | binary.BigEndian.Uint64(b[:])
}

func unpackMAC(v uint64) l2switch.MAC {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return l2switch.MAC(b[2:])
}

// pinTapMAC pins the tap's MAC address to the tap in the switch, and
// unpins the one pinned before if it changed. New and the timers call it.
func (d *Device) pinTapMAC(now time.Time) {
	hd, ok := d.tun.(hardwareAddresser)
	if !ok || d.sw == nil {
		return
	}
	hw, err := hd.HardwareAddr()
	if err != nil || len(hw) != 6 {
		return // a device going away, or one without an address yet
	}
	mac := l2switch.MAC(hw)
	if mac.IsGroup() || mac.IsZero() {
		return
	}
	v, old := packMAC(mac), d.hub.tapMAC.Load()
	if v == old {
		return
	}
	d.sw.Pin(mac, nil, now)
	d.hub.tapMAC.Store(v)
	if old != 0 {
		d.sw.Unpin(unpackMAC(old))
		d.log.Info("the tap's MAC address changed: the new one is pinned to it", "mac", mac.String(), "old", unpackMAC(old).String())
	}
}

// tapMAC returns the tap's address pinned in the switch, if any.
func (d *Device) tapMAC() (l2switch.MAC, bool) {
	v := d.hub.tapMAC.Load()
	return unpackMAC(v), v != 0
}

// anyMAC reports whether the peer with key may send from any address and
// take over the other peers' hosts: a TAP device with two peers or more,
// and no AllowedMACs for it. The caller holds d.mu.
func (d *Device) anyMAC(key protocol.Key) bool {
	return d.sw != nil && len(d.peers) >= 2 && len(d.allowedMACs[key]) == 0
}

// warnAnyMAC logs a warning, once per peer, for each peer that anyMAC
// reports. The caller holds d.mu.
func (d *Device) warnAnyMAC() {
	for key := range d.peers {
		if !d.anyMAC(key) || d.hub.warned[key] {
			continue
		}
		if d.hub.warned == nil {
			d.hub.warned = make(map[protocol.Key]bool)
		}
		d.hub.warned[key] = true
		d.log.Warn("TAP hub peer without AllowedMACs: it may send from any MAC address but the tap's, and take over the other peers' hosts",
			"peer", key.String(), "fix", "list the addresses behind it in AllowedMACs in its [Peer] section")
	}
}

// floodBucket bounds the frames a peer has flooded per second: a token
// bucket of one second's worth, kept lock-free as the time its tokens run
// out until (the generic cell rate algorithm), so that the readers share
// it without a lock or an allocation.
type floodBucket struct {
	tat     atomic.Int64  // unix ns: the next frame fits if tat-now is at most the burst
	dropped atomic.Uint64 // frames over the limit
}

// allow takes a token for a frame at now under limit frames a second (0:
// no limit), reporting whether there was one; a refusal is counted.
func (b *floodBucket) allow(now time.Time, limit uint32) bool {
	if limit == 0 {
		return true
	}
	t := now.UnixNano()
	interval := max(int64(time.Second)/int64(limit), 1)
	burst := int64(time.Second) - interval // limit frames at once
	for {
		old := b.tat.Load()
		tat := max(old, t)
		if tat-t > burst {
			b.dropped.Add(1)
			return false
		}
		if b.tat.CompareAndSwap(old, tat+interval) {
			return true
		}
	}
}

// updatePeerList publishes the peers for flooding. The caller holds d.mu.
func (d *Device) updatePeerList() {
	list := make([]*Peer, 0, len(d.peers))
	for _, p := range d.peers {
		list = append(list, p)
	}
	d.peerList.Store(&list)
}

// modeMismatch counts an authentic message of the other mode from p (IP
// packets on a TAP interface or frames on a TUN one), which is dropped, and
// says so in the log once a minute per peer.
func (p *Peer) modeMismatch() {
	d := p.dev
	d.stats.ModeMismatch.Add(1)
	p.mismatch.Add(1)
	now := p.dev.now().UnixNano()
	last := p.mismatchLogged.Load()
	if (last == 0 || now-last >= int64(time.Minute)) && p.mismatchLogged.CompareAndSwap(last, now) {
		local, remote := "tun", "tap (Ethernet frames)"
		if d.mode == tun.ModeTAP {
			local, remote = "tap", "tun (IP packets)"
		}
		d.log.Warn("peer runs the other mode: nothing it sends is delivered, nor anything sent to it",
			"peer", p.public.String(), "mode", local, "peer_mode", remote,
			"fix", "set the same Mode (tun or tap) in [Interface] on both ends")
	}
}
