package tunnel

import (
	"errors"
	"time"

	"github.com/tapwire/tapwire/fragment"
	"github.com/tapwire/tapwire/packet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// Frames and packets too big for one datagram on a peer's path.
//
// To a tapwire peer they travel as protocol.TypeFragment messages, each
// sealed like any other (its own counter, its type authenticated), and are
// put back together by the peer's fragment.Reassembler (a few frames at
// once, for a second at most). In TUN mode, a packet too big for a
// WireGuard peer is answered as a router answers it: ICMP "fragmentation
// needed" or "packet too big" back into the TUN device, so the sender's
// stack lowers its path MTU, or, for IPv4 without DF, split into IPv4
// fragments.

// fragmentKind is the kind of payload the device carries.
func (d *Device) fragmentKind() fragment.Kind {
	if d.mode == tun.ModeTAP {
		return fragment.KindFrame
	}
	return fragment.KindPacket
}

// sealFragments splits the plaintext plain (in TAP mode, a frame after its
// 2-byte length) into fragments of at most limit bytes of plaintext each,
// seals them with kp and sends them on p's path (with sb's next flush, or
// now).
// Every fragment but the last has the same size, so they leave as one UDP
// GSO batch.
func (p *Peer) sealFragments(kp *protocol.Keypair, plain []byte, limit int, sb *udpBatch) {
	d := p.dev
	data := plain
	if d.mode == tun.ModeTAP {
		data = plain[frameLenSize:]
	}
	chunk := fragment.ChunkSize(limit)
	if chunk == 0 || len(data) > fragment.MaxSize {
		d.stats.TooBig.Add(1)
		return
	}
	id := p.fragID.Add(1)
	d.stats.Fragmented.Add(1)
	for off := 0; off < len(data); off += chunk {
		n := min(chunk, len(data)-off)
		size := protocol.TransportOverhead + protocol.PaddedLen(fragment.HeaderSize+n, limit)
		var buf []byte
		if sb != nil {
			if buf = sb.scratch(size); buf == nil {
				sb.flush()
				buf = sb.scratch(size)
			}
		}
		if buf == nil {
			buf = make([]byte, size) // sent at once: a staged packet, say
		}
		fragment.Header{Kind: d.fragmentKind(), Total: len(data), ID: id, Offset: off, Len: n}.Put(buf[protocol.TransportHeaderSize:])
		copy(buf[protocol.TransportHeaderSize+fragment.HeaderSize:], data[off:off+n])
		job := sealJob{kp: kp, buf: buf, n: fragment.HeaderSize + n, pad: limit, typ: protocol.TypeFragment}
		m, ok := job.prepare()
		if !ok {
			return
		}
		d.stats.FragmentsSent.Add(1)
		p.queue(buf[:m], &job, sb)
	}
}

// reassemble takes the plaintext of a fragment from p and returns the frame
// or packet it completes, copied into rx, or nil.
func (p *Peer) reassemble(plain []byte, now time.Time, rx []byte) []byte {
	d := p.dev
	h, data, err := fragment.Parse(plain)
	if err != nil {
		d.stats.FragMalformed.Add(1)
		return nil
	}
	if h.Kind != d.fragmentKind() {
		p.modeMismatch()
		return nil
	}
	if rx == nil {
		return nil
	}
	p.reasmMu.Lock()
	if p.reasm == nil {
		p.reasm = fragment.NewReassembler(fragment.Options{MaxSize: d.maxReassembled()})
	}
	before := p.reasm.Stats()
	n, err := p.reasm.Add(h, data, now, rx)
	after := p.reasm.Stats()
	p.reasmMu.Unlock()
	if lost := after.Expired - before.Expired + after.Evicted - before.Evicted; lost > 0 {
		d.stats.FragTimedOut.Add(lost)
	}
	switch {
	case errors.Is(err, fragment.ErrDuplicate):
		d.stats.FragDuplicate.Add(1)
	case errors.Is(err, fragment.ErrOverlap):
		d.stats.FragOverlap.Add(1)
	case err != nil:
		d.stats.FragMismatch.Add(1)
	case n > 0:
		d.stats.Reassembled.Add(1)
		return rx[:n]
	}
	return nil
}

// maxReassembled is the largest frame or packet the device takes from
// fragments: a frame of the MTU with a VLAN tag, or a packet of the MTU but
// at least of 9000 bytes (a tapwire peer with a larger MTU splits its own
// packets without DF, which a TUN device takes whole).
func (d *Device) maxReassembled() int {
	if d.mode == tun.ModeTAP {
		return d.maxFrame
	}
	return min(max(d.mtu, 9000), fragment.MaxSize)
}

// tunTooBig deals with a packet from the TUN device that is over limit,
// what one message carries on p's path, and reports whether it did (false:
// send it on, to be split into fragments). ptb is scratch space for an ICMP
// message (packet.TooBigMaxLen bytes).
func (d *Device) tunTooBig(p *Peer, pkt []byte, limit int, sb *udpBatch, ptb []byte, lim *ptbLimiter) bool {
	v4 := pkt[0]>>4 == 4
	splittable := v4 && !packet.DontFragment(pkt) || !v4 && limit < packet.IPv6MinMTU
	if p.canSplit() && splittable {
		return false // to a tapwire peer, inside the tunnel
	}
	if v4 && !packet.DontFragment(pkt) && d.fragmentIPv4(p, pkt, limit, sb) {
		return true
	}
	d.stats.TooBig.Add(1)
	if n := packet.TooBig(ptb, pkt, limit); n > 0 && lim.allow(d.now()) {
		if _, err := d.tun.Write(ptb[:n]); err == nil {
			d.stats.ICMPTooBig.Add(1)
		}
	}
	return true
}

// fragmentIPv4 sends pkt to p as IPv4 fragments of at most limit bytes, as
// a router would for a packet without DF.
func (d *Device) fragmentIPv4(p *Peer, pkt []byte, limit int, sb *udpBatch) bool {
	if sb == nil {
		return false
	}
	size := protocol.TransportOverhead + protocol.PaddedLen(limit, limit)
	for off := 0; ; {
		buf := sb.scratch(size)
		if buf == nil {
			sb.flush()
			if buf = sb.scratch(size); buf == nil {
				return false
			}
		}
		n, next := packet.FragmentIPv4(buf[protocol.TransportHeaderSize:protocol.TransportHeaderSize+limit], pkt, limit, off)
		if n == 0 {
			return off > 0 // a packet it cannot cut (IP options): answered instead
		}
		p.sendPacket(buf, n, sb)
		if off == 0 {
			d.stats.IPFragmented.Add(1)
		}
		if next == 0 {
			return true
		}
		off = next
	}
}

// ptbLimiter bounds the ICMP messages one TUN reader writes: burst at once,
// then rate per second, as a router's ICMP rate limit does.
type ptbLimiter struct {
	tokens float64
	last   time.Time
}

const ptbRate, ptbBurst = 20, 20

func (l *ptbLimiter) allow(now time.Time) bool {
	if l.last.IsZero() {
		l.tokens = ptbBurst
	} else {
		l.tokens = min(ptbBurst, l.tokens+now.Sub(l.last).Seconds()*ptbRate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
