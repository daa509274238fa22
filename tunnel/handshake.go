package tunnel

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tapwire/tapwire/protocol"
)

// Handshake messages do not run on the goroutines that carry data: the
// socket reader (and a stream's reader) copies each into a bounded queue
// and goes on, and a worker verifies and answers them. A flood costs the
// data path one copy per message; what the worker cannot take is dropped
// and counted. The queue's depth says when the device is under load, as in
// wireguard-go (device/receive.go): then an initiation or response needs a
// mac2 cookie, so answering a flood costs a cookie reply instead of
// Curve25519, and each source's handshakes are rate limited.
const (
	// handshakeQueueLen bounds the handshake messages waiting for the
	// worker (wireguard-go's QueueHandshakeSize).
	handshakeQueueLen = 1024
	// underLoadDepth is the depth from which the device is under load.
	underLoadDepth = handshakeQueueLen / 8
	// underLoadRate is how many handshake messages in one second put the
	// device under load even when the worker keeps up: more than the
	// Curve25519 budget below. A hub of 100,000 peers rekeying every two
	// minutes sees over 800 a second without anyone attacking it.
	underLoadRate = handshakeBudget
	// handshakeBudget bounds the handshake messages per second that reach
	// Curve25519 (about 100 µs each): a fifth of a core at most, whatever
	// gets past the cookies and the per-source limits.
	handshakeBudget = 2000
	// cookieRate and cookieBurst bound the cookie replies to one source
	// (an IPv4 address or an IPv6 /64) per second.
	cookieRate, cookieBurst = 20, 10
)

// hsWork is one queued handshake message.
type hsWork struct {
	buf [protocol.InitiationSize]byte // the largest handshake message
	n   int
	src netip.AddrPort
	via *stream
}

// hsQueue is the bounded queue between the readers and the worker. Its
// items are made once and recycled through free, so queueing allocates
// nothing.
type hsQueue struct {
	ch      chan *hsWork
	free    chan *hsWork
	pending atomic.Int64 // queued or being handled
}

func newHSQueue() *hsQueue {
	q := &hsQueue{ch: make(chan *hsWork, handshakeQueueLen), free: make(chan *hsWork, handshakeQueueLen)}
	for range handshakeQueueLen {
		q.free <- new(hsWork)
	}
	return q
}

// isHandshake reports whether typ is a handshake message type.
func isHandshake(typ uint32) bool {
	return typ == protocol.TypeInitiation || typ == protocol.TypeResponse || typ == protocol.TypeCookieReply
}

// receive handles one message from a reader: data at once (its packet or
// frame is returned, as handleMessage does), a handshake message queued for
// the worker, or dropped and counted when the queue is full.
func (d *Device) receive(msg []byte, src netip.AddrPort, rx []byte, via *stream) ([]byte, *Peer) {
	typ, ok := protocol.MessageType(msg)
	if !ok {
		d.stats.Malformed.Add(1)
		return nil, nil
	}
	if !isHandshake(typ) {
		return d.handleTyped(msg, typ, src, rx, via) // the type is read once a message
	}
	if len(msg) > protocol.InitiationSize {
		d.stats.Malformed.Add(1)
		return nil, nil
	}
	var w *hsWork
	select {
	case w = <-d.hsq.free:
	default:
		d.stats.HandshakesDropped.Add(1)
		return nil, nil
	}
	w.n = copy(w.buf[:], msg)
	w.src, w.via = src, via
	d.hsq.pending.Add(1)
	d.hsq.ch <- w // never blocks: there are as many items as places
	return nil, nil
}

// handshakeWorker verifies and answers queued handshake messages until the
// device closes. Cookie replies leave in batches, when the queue is empty.
func (d *Device) handshakeWorker() {
	defer d.wg.Done()
	var conn PacketConn
	var sb *udpBatch
	for {
		var w *hsWork
		select {
		case <-d.closed:
			return
		case w = <-d.hsq.ch:
		}
		if c := d.udpConn(); c != conn {
			if sb != nil {
				sb.flush() // to the old socket, or lost with it (counted as sent already)
			}
			conn, sb = c, nil
			if c != nil {
				sb = newUDPBatch(c, batchSize, 0)
			}
		}
		d.handleHandshake(w.buf[:w.n], w.src, w.via, sb)
		w.via = nil
		d.hsq.free <- w
		if len(d.hsq.ch) == 0 && sb != nil {
			sb.flush()
		}
		d.hsq.pending.Add(-1)
	}
}

// handleHandshake handles one handshake message; cookie replies go in sb
// (nil: at once).
func (d *Device) handleHandshake(msg []byte, src netip.AddrPort, via *stream, sb *udpBatch) {
	typ, _ := protocol.MessageType(msg)
	switch typ {
	case protocol.TypeInitiation:
		d.handleInitiation(msg, src, via, sb)
	case protocol.TypeResponse:
		d.handleResponse(msg, src, via, sb)
	case protocol.TypeCookieReply:
		d.handleCookieReply(msg)
	}
}

// underLoad reports whether handshake messages arrive faster than the
// device wants to spend Curve25519 on without a cookie round trip: the
// queue is deep, or more than underLoadRate came this second. The device
// stays under load for protocol.UnderLoadAfterTime after, as wireguard-go
// does, so an attacker cannot time its bursts.
func (d *Device) underLoad(now time.Time) bool {
	sec := now.Unix()
	if d.hsSecond.Swap(sec) != sec {
		d.hsCount.Store(0)
	}
	if d.hsCount.Add(1) > underLoadRate || len(d.hsq.ch) >= underLoadDepth {
		d.loadUntil.Store(now.Add(protocol.UnderLoadAfterTime).UnixNano())
		return true
	}
	return now.UnixNano() < d.loadUntil.Load()
}

// sendCookieReply answers a handshake message without a valid mac2 with a
// cookie reply, unless its source had its share of replies: on its stream,
// in sb, or at once.
func (d *Device) sendCookieReply(checker *protocol.CookieChecker, msg []byte, senderIndex uint32, src netip.AddrPort, srcBytes []byte, via *stream, sb *udpBatch, now time.Time) {
	if !d.cookieLimiter.allow(src.Addr(), now) {
		d.stats.RateLimited.Add(1)
		return
	}
	var buf []byte
	if sb != nil && via == nil {
		if buf = sb.scratch(protocol.CookieReplySize); buf == nil {
			sb.flush()
			buf = sb.scratch(protocol.CookieReplySize)
		}
	}
	if buf == nil {
		buf = make([]byte, protocol.CookieReplySize)
		sb = nil
	}
	n, err := checker.CreateReply(msg, senderIndex, srcBytes, buf)
	if err != nil {
		return
	}
	switch {
	case via != nil:
		via.enqueue(buf[:n])
	case sb != nil:
		sb.add(buf[:n], src)
	default:
		writeTo(d.udpConn(), buf[:n], src)
	}
	d.stats.CookiesSent.Add(1)
}
