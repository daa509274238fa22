package tunnel

import (
	"encoding/binary"
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
		o.flush()
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
	var last PacketConn
	var out *l2out
	d.readDevice(func(bufs [][]byte, sizes []int, n int, conn PacketConn) {
		if out == nil || conn != last {
			last = conn
			out = d.newL2Out(conn, 2*len(bufs))
		}
		now := d.now()
		for i := range n {
			frame := bufs[i][off : off+sizes[i]]
			if !d.checkFrame(frame) {
				continue
			}
			switch v, p := d.sw.Decide(frame, nil, now); v {
			case l2switch.Unicast:
				if p != nil {
					out.send(p, bufs[i][off-frameHeadroom:], len(frame))
				}
			case l2switch.Flood:
				out.flood(nil, frame, bufs[i][off-frameHeadroom:])
			}
		}
		out.flush()
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
		w.add(frame)
		out.flood(in, frame, nil)
	}
}

// SetAllowedMACs restricts the source MAC addresses a peer may send frames
// from (TAP mode); nil or empty lifts the restriction. It holds for the
// peer's public key, so it survives the peer's removal and re-creation.
func (d *Device) SetAllowedMACs(peer protocol.Key, macs []l2switch.MAC) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(macs) == 0 {
		delete(d.allowedMACs, peer)
	} else {
		d.allowedMACs[peer] = append([]l2switch.MAC(nil), macs...)
	}
	if p := d.peers[peer]; p != nil && d.sw != nil {
		d.sw.SetAllowed(p, macs)
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
