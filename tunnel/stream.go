package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/inns"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// Tunnel messages over TCP, for networks that block or throttle UDP.
//
// A stream carries the same messages the UDP socket does (handshakes,
// cookie replies, transport data, frames, fragments, probes), each after
// its length as 2 bytes, big endian: the framing of mullvad's
// udp-over-tcp, so that a tapwire client can also reach a stock WireGuard
// server behind that relay. Nothing else changes: the WireGuard session
// does not depend on the transport, so a peer moves between UDP and TCP
// without a new handshake, and the replay window takes care of a message
// that arrives both ways while it moves.
//
//   - A device with ListenTCP accepts streams from any number of peers. An
//     accepted stream is nobody's until a message on it authenticates (a
//     valid initiation, a response, or transport data of a live session);
//     then it is that peer's path, as roaming makes a UDP address its
//     endpoint. A stream that sends garbage, half a message, or nothing, is
//     closed streamAuthTimeout after it was accepted at the latest; at most
//     maxUnauthStreams (maxUnauthPerAddr from one address) wait so, with
//     small buffers; and every stream has goroutines of its own, so none
//     stalls another or the UDP socket.
//   - A peer with Transport tcp is dialed at its endpoint (address and
//     port), redialed with backoff when the stream breaks, and sent an
//     initiation on every new stream.
//   - A peer with Transport auto starts on UDP, moves to TCP (same address
//     and port) when no handshake gets through over UDP within
//     Timers.TransportFallback, and while on TCP asks now and then, with a
//     probe over UDP that the peer answers over UDP, whether UDP works
//     again: after two answered checks in a row it moves back, keeping its
//     session. The checks back off from Timers.UDPRetry to ten times that
//     when UDP stays blocked, so a blocked network costs a datagram every
//     few minutes; the two-checks rule, and checks less often after a move
//     back that did not last, keep a peer from flapping between the two.
//
// Sending never blocks on a stream: messages are queued (up to
// maxStreamQueue bytes, then dropped and counted, as a full socket buffer
// drops datagrams) and a writer goroutine per stream writes them, many per
// system call.
const (
	// streamAuthTimeout bounds how long an accepted stream may take to
	// authenticate, and how long any stream may take to deliver a message
	// it started.
	streamAuthTimeout = 10 * time.Second
	// maxStreamQueue bounds the bytes waiting to be written on a stream.
	maxStreamQueue = 4 << 20
	// maxUnauthStreams bounds the accepted streams not yet authenticated,
	// and maxUnauthPerAddr those of one address.
	maxUnauthStreams = 256
	maxUnauthPerAddr = 16
	// maxUnauthMessages bounds the messages a stream may send before one
	// authenticates (cookie replies, a stale session's data ahead of the
	// initiation, ...).
	maxUnauthMessages = 64
	// streamUserTimeout closes a stream whose data goes unacknowledged this
	// long (TCP_USER_TIMEOUT), rather than the kernel's 15 minutes.
	streamUserTimeout = 30 * time.Second
	// streamWriteTimeout closes a stream whose peer takes nothing for this
	// long.
	streamWriteTimeout = 30 * time.Second
	// maxDialBackoff bounds the wait between two dials of a peer.
	maxDialBackoff = 30 * time.Second
	// udpChecksToReturn is how many UDP checks in a row must be answered
	// before an auto peer leaves TCP.
	udpChecksToReturn = 2
)

// streamTransport opens the byte streams tunnel messages travel on: TCP
// today. It is what another transport (TLS on port 443, say) would
// implement; the framing and everything above it stay the same.
type streamTransport interface {
	// Listen listens on port in the network namespace netNS.
	Listen(netNS string, port uint16) (net.Listener, error)
	// Dial connects to addr from netNS, its socket marked with mark.
	Dial(ctx context.Context, netNS string, mark uint32, addr netip.AddrPort) (net.Conn, error)
}

// tcpTransport is streamTransport over plain TCP.
type tcpTransport struct{}

func (tcpTransport) Listen(netNS string, port uint16) (ln net.Listener, err error) {
	err = inns.Do(netNS, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	return ln, err
}

func (tcpTransport) Dial(ctx context.Context, netNS string, mark uint32, addr netip.AddrPort) (c net.Conn, err error) {
	dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		if mark == 0 {
			return nil
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setSocketMark(fd, mark) }); err != nil {
			return err
		}
		return serr
	}}
	err = inns.Do(netNS, func() (err error) {
		c, err = dialer.DialContext(ctx, "tcp", addr.String())
		return err
	})
	if tc, ok := c.(*net.TCPConn); ok {
		tuneStream(tc)
	}
	return c, err
}

// tuneStream sets what a tunnel stream wants of its TCP socket: no Nagle
// delay, and a bound on unacknowledged data (TCP_USER_TIMEOUT, where the
// system has it).
func tuneStream(tc *net.TCPConn) {
	tc.SetNoDelay(true)
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { setUserTimeout(fd, streamUserTimeout) })
	}
}

// stream is one connection carrying tunnel messages.
type stream struct {
	d        *Device
	c        net.Conn
	remote   netip.AddrPort
	outbound *Peer                // the peer dialed; nil for an accepted stream
	peer     atomic.Pointer[Peer] // who authenticated on it
	unauth   atomic.Bool          // counted in Device.unauth (accepted, not yet authenticated)
	retired  atomic.Bool          // no longer to become a path (an auto peer went back to UDP)

	mu   sync.Mutex
	out  []byte // framed messages for the writer
	wake chan struct{}

	done chan struct{}
	once sync.Once
}

// newStream starts a stream on c: dialed for outbound, or accepted (and
// counted in d.unauth, with counted) until a message authenticates.
func (d *Device) newStream(c net.Conn, outbound *Peer, counted bool) *stream {
	s := &stream{d: d, c: c, outbound: outbound, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		s.remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if outbound != nil {
		s.peer.Store(outbound)
	}
	d.streamsMu.Lock()
	if d.streams == nil {
		d.streamsMu.Unlock()
		s.close() // the device is closed
		return s
	}
	d.streams[s] = struct{}{}
	if counted {
		s.unauth.Store(true)
		d.countUnauth(s)
	}
	d.streamsMu.Unlock()
	d.wg.Add(2)
	go s.readLoop()
	go s.writeLoop()
	return s
}

// String names the stream for logs and status.
func (s *stream) String() string {
	dir := "from"
	if s.outbound != nil {
		dir = "to"
	}
	return "tcp " + dir + " " + s.remote.String()
}

// enqueue queues one message for the writer; it never blocks. It reports
// false (and counts a drop) when the stream is closed or its queue full.
func (s *stream) enqueue(msg []byte) bool {
	if len(msg) > 0xffff {
		s.d.stats.StreamDropped.Add(1)
		return false
	}
	s.mu.Lock()
	if s.closed() || len(s.out)+2+len(msg) > maxStreamQueue {
		s.mu.Unlock()
		s.d.stats.StreamDropped.Add(1)
		return false
	}
	s.out = binary.BigEndian.AppendUint16(s.out, uint16(len(msg)))
	s.out = append(s.out, msg...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

func (s *stream) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// close closes the stream once, and makes its peer's path UDP again if it
// was this stream.
func (s *stream) close() {
	s.once.Do(func() {
		close(s.done)
		d := s.d
		if s.unauth.CompareAndSwap(true, false) {
			// Accepted and never authenticated: garbage, half a message,
			// silence, or a handshake that did not complete.
			d.uncountUnauth(s)
			d.stats.StreamJunk.Add(1)
		}
		s.c.Close()
		d.streamsMu.Lock()
		delete(d.streams, s)
		d.streamsMu.Unlock()
		if p := s.peer.Load(); p != nil && p.stream.CompareAndSwap(s, nil) {
			d.log.Debug("stream closed", "peer", p.public.String(), "stream", s.String())
		}
	})
}

// writeLoop writes what enqueue queued, as much as is there per write.
func (s *stream) writeLoop() {
	defer s.d.wg.Done()
	defer s.close()
	var spare []byte
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		b := s.out
		s.out = spare[:0]
		s.mu.Unlock()
		if len(b) > 0 {
			s.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := s.c.Write(b); err != nil {
				return
			}
		}
		spare = b
	}
}

// readLoop reads messages and hands them to the engine as the UDP reader
// does, delivering what they carry in batches. Until a message on it
// authenticates, a stream holds little memory (a small read buffer, no
// writers) and has streamAuthTimeout in all; then it gets the buffers of a
// data path.
func (s *stream) readLoop() {
	d := s.d
	defer d.wg.Done()
	defer s.close()
	small := bufio.NewReaderSize(s.c, 4<<10)
	br := small
	buf := make([]byte, 2<<10)
	var rx []byte
	var w *tunWriter
	var out *l2out
	var hdr [2]byte
	authBy := time.Now().Add(streamAuthTimeout)
	unauthMsgs := 0
	for {
		authed := s.peer.Load() != nil
		if authed && br == small {
			br = bufio.NewReaderSize(small, 256<<10) // a data path now
			rx = make([]byte, d.maxReassembled())
		}
		if !authed {
			s.c.SetReadDeadline(authBy) // garbage, half a message, silence: gone by then
		} else {
			s.c.SetReadDeadline(time.Time{}) // an idle peer's stream may wait
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n > len(buf) {
			buf = make([]byte, 0xffff)
		}
		if authed {
			s.c.SetReadDeadline(time.Now().Add(streamAuthTimeout)) // the rest of a message comes along
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return
		}
		pkt, p := d.receive(buf[:n], s.remote, rx, s)
		if s.peer.Load() == nil {
			if unauthMsgs++; unauthMsgs >= maxUnauthMessages {
				return
			}
		}
		if len(pkt) > 0 {
			if w == nil {
				w = newTUNWriter(d.tun, batchSize)
				if d.mode == tun.ModeTAP {
					out = d.newL2Out(d.udpConn(), batchSize)
				}
			}
			if out != nil {
				d.switchFrame(pkt, p, d.now(), w, out)
			} else {
				w.add(pkt)
			}
		}
		if w != nil && br.Buffered() < 2 {
			w.flush()
			if out != nil {
				out.flush()
			}
		}
	}
}

// udpConn returns the device's UDP socket.
func (d *Device) udpConn() PacketConn {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.conn
}

// listenStream starts (port != 0) or stops (0) accepting streams. The
// caller holds d.mu.
func (d *Device) listenStream(port uint16) error {
	var ln net.Listener
	if port != 0 {
		var err error
		if ln, err = d.transport.Listen(d.netNS, port); err != nil {
			return fmt.Errorf("tunnel: listen on TCP port %d: %w", port, err)
		}
	}
	if d.streamLn != nil {
		d.streamLn.Close()
	}
	d.streamLn, d.listenTCP = ln, port
	if ln == nil {
		return nil
	}
	d.wg.Add(1)
	go d.acceptStreams(ln)
	return nil
}

// acceptStreams accepts streams until ln is closed.
func (d *Device) acceptStreams(ln net.Listener) {
	defer d.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // out of descriptors, say
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tuneStream(tc)
		}
		d.stats.StreamsAccepted.Add(1)
		d.newStream(c, nil, true)
		d.evictUnauth()
	}
}

// countUnauth counts s, just accepted, among the streams not yet
// authenticated. The caller holds d.streamsMu.
func (d *Device) countUnauth(s *stream) {
	if d.unauthBy == nil {
		d.unauthBy = map[netip.Addr]int{}
	}
	d.unauthBy[s.remote.Addr()]++
	d.unauthList = append(d.unauthList, s)
	d.unauth.Add(1)
}

// uncountUnauth undoes countUnauth for s, which authenticated or went.
func (d *Device) uncountUnauth(s *stream) {
	d.streamsMu.Lock()
	defer d.streamsMu.Unlock()
	a := s.remote.Addr()
	if d.unauthBy[a] <= 1 {
		delete(d.unauthBy, a)
	} else {
		d.unauthBy[a]--
	}
	if i := slices.Index(d.unauthList, s); i >= 0 {
		d.unauthList = slices.Delete(d.unauthList, i, i+1)
	}
	d.unauth.Add(-1)
}

// evictUnauth closes the oldest unauthenticated streams while there are
// more than maxUnauthStreams, or more than maxUnauthPerAddr from one
// address: a flood of idle connections takes its own slots, and a client
// that connects (behind the same NAT, say) still gets one.
func (d *Device) evictUnauth() {
	for {
		var victim *stream
		d.streamsMu.Lock()
		if len(d.unauthList) > maxUnauthStreams {
			victim = d.unauthList[0]
		} else {
			for _, s := range d.unauthList {
				if d.unauthBy[s.remote.Addr()] > maxUnauthPerAddr {
					victim = s
					break
				}
			}
		}
		d.streamsMu.Unlock()
		if victim == nil {
			return
		}
		victim.close() // uncounts it
	}
}

// closeStreams closes the listener and every stream, at Close.
func (d *Device) closeStreams() {
	d.mu.Lock()
	if d.streamLn != nil {
		d.streamLn.Close()
		d.streamLn = nil
	}
	d.mu.Unlock()
	d.streamsMu.Lock()
	list := make([]*stream, 0, len(d.streams))
	for s := range d.streams {
		list = append(list, s)
	}
	d.streams = nil
	d.streamsMu.Unlock()
	for _, s := range list {
		s.close()
	}
}

// authenticated makes s the path to p: a message on it authenticated as
// p's. An accepted stream becomes p's (and stops counting as
// unauthenticated); a stream of another peer is left alone.
func (s *stream) authenticated(p *Peer) {
	if !s.peer.CompareAndSwap(nil, p) && s.peer.Load() != p {
		return // another peer's stream
	}
	if s.unauth.CompareAndSwap(true, false) {
		s.d.uncountUnauth(s)
	}
	if s.outbound == p {
		st := &p.tr
		st.mu.Lock()
		st.fails = 0 // it works: the next break redials at once
		st.mu.Unlock()
	}
	if s.retired.Load() || s.closed() {
		return
	}
	if old := p.stream.Swap(s); old != s {
		p.wake()
		s.d.log.Debug("peer reached by stream", "peer", p.public.String(), "stream", s.String())
	}
	if s.closed() {
		p.stream.CompareAndSwap(s, nil) // it closed meanwhile
	}
}

// liveStream returns p's stream, or nil when it has none or the one it has
// closed (which it then drops).
func (p *Peer) liveStream() *stream {
	s := p.stream.Load()
	if s != nil && s.closed() {
		p.stream.CompareAndSwap(s, nil)
		return nil
	}
	return s
}

// setTransport sets how p is reached. A change starts the transport's work
// afresh: an auto peer starts over UDP, and a stream p dialed for the old
// mode is closed unless the new one is tcp.
func (p *Peer) setTransport(t devconf.Transport) {
	if devconf.Transport(p.transport.Swap(uint32(t))) == t {
		return
	}
	st := &p.tr
	st.mu.Lock()
	st.onTCP, st.udpOK, st.checkID, st.fails, st.nextDial = false, 0, 0, 0, time.Time{}
	st.mu.Unlock()
	if t != devconf.TransportTCP {
		if s := p.stream.Load(); s != nil && s.outbound == p && p.stream.CompareAndSwap(s, nil) {
			s.close()
		}
	}
}

// tickStream runs p's transport work on the timers goroutine: the fallback
// of an auto peer to TCP, its UDP checks, the dials.
func (p *Peer) tickStream(now time.Time) {
	d := p.dev
	mode := devconf.Transport(p.transport.Load())
	if mode == devconf.TransportUDP {
		return
	}
	ep := p.endpoint.Load()
	p.mu.Lock()
	stuck := p.hsIndex != 0 && now.Sub(p.hsStarted) >= d.tm.TransportFallback
	p.mu.Unlock()
	st := &p.tr
	st.mu.Lock()
	defer st.mu.Unlock()
	if mode == devconf.TransportAuto && !st.onTCP && stuck && ep != nil {
		// Back on TCP soon after UDP seemed to work (a network that lets
		// probes through but not handshakes, say): check less often.
		every := d.tm.UDPRetry
		if !st.returned.IsZero() && now.Sub(st.returned) < 10*d.tm.UDPRetry {
			every = min(2*max(st.checkEvery, d.tm.UDPRetry), 10*d.tm.UDPRetry)
		}
		st.onTCP, st.udpOK, st.checkID, st.nextCheck, st.checkEvery = true, 0, 0, now.Add(every), every
		p.toTCP.Add(1)
		d.log.Info("no handshake over UDP: moving to TCP", "peer", p.public.String(), "endpoint", *ep,
			"after", d.tm.TransportFallback)
	}
	wantTCP := mode == devconf.TransportTCP || st.onTCP
	cur := p.liveStream()
	if wantTCP && cur == nil && ep != nil && !st.dialing && !now.Before(st.nextDial) {
		st.dialing = true
		d.wg.Add(1)
		go p.dial(*ep)
	}
	if wantTCP && cur != nil && cur.outbound == p && stuck && now.Sub(st.dialed) >= d.tm.TransportFallback {
		// A stream that carries no handshake through is as good as none.
		cur.close()
	}
	if mode == devconf.TransportAuto && st.onTCP && ep != nil && !now.Before(st.nextCheck) {
		p.checkUDP(now, *ep)
	}
}

// dial connects a stream to ep for p, with backoff: every dial counts,
// until something on a stream authenticates (so a server that accepts and
// closes is not dialed in a loop).
func (p *Peer) dial(ep netip.AddrPort) {
	d := p.dev
	defer d.wg.Done()
	ctx, cancel := d.boundedContext(streamAuthTimeout)
	defer cancel()
	c, err := d.transport.Dial(ctx, d.netNS, d.mark.Load(), ep)
	st := &p.tr
	st.mu.Lock()
	st.dialing = false
	now := p.dev.now()
	st.fails++
	fails := st.fails
	backoff := min(maxDialBackoff, time.Duration(1<<min(fails-1, 8))*250*time.Millisecond)
	st.nextDial = now.Add(backoff)
	if err == nil {
		st.dialed = now
	}
	st.mu.Unlock()
	if err != nil {
		if fails == 1 || fails%10 == 0 {
			d.log.Warn("cannot connect over TCP", "peer", p.public.String(), "endpoint", ep, "err", err, "retry_in", backoff)
		}
		return
	}
	s := d.newStream(c, p, false)
	// The initiation goes first on the new stream, ahead of any data that
	// waits for it (a restarted server knows no session).
	p.initiateOn(now, true, s)
	if old := p.stream.Swap(s); old != nil && old != s {
		old.close()
	}
	p.wake()
	p.mu.Lock()
	removed := p.removed
	p.mu.Unlock()
	if removed || s.closed() {
		p.stream.CompareAndSwap(s, nil)
		s.close()
		return
	}
	d.stats.StreamsDialed.Add(1)
	d.log.Info("connected over TCP", "peer", p.public.String(), "stream", s.String())
}

// checkUDP asks, with a probe over UDP, whether UDP reaches p again. The
// caller holds p.tr.mu.
func (p *Peer) checkUDP(now time.Time, ep netip.AddrPort) {
	d := p.dev
	st := &p.tr
	if st.checkID != 0 && !st.checkAnswered {
		// The last check went unanswered: UDP is still blocked.
		st.udpOK = 0
		st.checkEvery = min(2*st.checkEvery, 10*d.tm.UDPRetry)
	}
	st.nextCheck = now.Add(st.checkEvery)
	p.mu.Lock()
	kp := p.current
	p.mu.Unlock()
	if kp == nil {
		return
	}
	st.checkSeq++
	st.checkID, st.checkAnswered = st.checkSeq|1<<31, false
	var buf [64]byte
	b := buf[16:]
	b[0] = probeOpRequest
	binary.BigEndian.PutUint32(b[4:], st.checkID)
	m, err := kp.SealTransportType(buf[:], probeHeaderLen, 0, protocol.TypeProbe)
	if err != nil {
		return
	}
	writeTo(d.udpConn(), buf[:m], ep)
}

// udpAnswered takes the reply to a UDP check: after udpChecksToReturn in
// a row, p moves back to UDP and its stream is closed a little later (what
// was queued on it still arrives).
func (p *Peer) udpAnswered(id uint32) {
	d := p.dev
	st := &p.tr
	st.mu.Lock()
	defer st.mu.Unlock()
	if id != st.checkID || st.checkAnswered || !st.onTCP {
		return
	}
	st.checkAnswered = true
	if st.udpOK++; st.udpOK < udpChecksToReturn {
		st.nextCheck = p.dev.now().Add(d.tm.UDPRetry / 6) // confirm soon
		return
	}
	st.onTCP, st.udpOK, st.checkID, st.returned = false, 0, 0, p.dev.now()
	p.toUDP.Add(1)
	d.log.Info("UDP works again: moving back from TCP", "peer", p.public.String())
	if s := p.stream.Swap(nil); s != nil {
		s.retired.Store(true) // what still arrives on it makes it no path again
		time.AfterFunc(2*time.Second, s.close)
	}
}

// transportState is a peer's transport work (see tickStream).
type transportState struct {
	mu            sync.Mutex
	onTCP         bool          // an auto peer fell back to TCP
	dialing       bool          // a dial is under way
	fails         int           // dials failed in a row
	nextDial      time.Time     // no dial before
	dialed        time.Time     // when the stream in use was dialed
	udpOK         int           // UDP checks answered in a row
	nextCheck     time.Time     // the next UDP check
	checkEvery    time.Duration // the UDP checks' interval now
	checkSeq      uint32
	checkID       uint32 // the last UDP check's probe id (top bit set)
	checkAnswered bool
	returned      time.Time // when the peer last went back to UDP
}
