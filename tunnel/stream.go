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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
//     handshake that completes, or transport data of a live session); then
//     it is that peer's path, as roaming makes a UDP address its endpoint.
//     A stream that sends garbage, half a message, or nothing, is closed
//     after at most streamAuthTimeout, and every stream has goroutines of
//     its own, so none stalls another or the UDP socket.
//   - A peer with Transport tcp is dialed at its endpoint (address and
//     port), redialed with backoff when the stream breaks, and sent an
//     initiation on every new stream.
//   - A peer with Transport auto starts on UDP, moves to TCP (same address
//     and port) when no handshake gets through over UDP within
//     Timers.TransportFallback, and while on TCP asks now and then, with a
//     probe over UDP that the peer answers over UDP, whether UDP works
//     again: after two answered checks in a row it moves back. The checks
//     back off from Timers.UDPRetry to ten times that when UDP stays
//     blocked, so a blocked network costs a datagram every few minutes, and
//     the two-checks rule keeps a peer from flapping between the two.
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
	// maxUnauthStreams bounds the accepted streams not yet authenticated.
	maxUnauthStreams = 1024
	// streamWriteTimeout closes a stream whose peer takes nothing for this
	// long.
	streamWriteTimeout = 30 * time.Second
	// maxDialBackoff bounds the wait between two dials of a peer.
	maxDialBackoff = 30 * time.Second
	// udpChecksToReturn is how many UDP checks in a row must be answered
	// before an auto peer leaves TCP.
	udpChecksToReturn = 2
)

// Transport says how a peer is reached.
type Transport uint8

// Transports.
const (
	TransportUDP  Transport = iota // datagrams, as WireGuard (the default)
	TransportTCP                   // a TCP stream to the endpoint, messages framed by their length
	TransportAuto                  // UDP; TCP while UDP gets no handshake through
)

func (t Transport) String() string {
	switch t {
	case TransportTCP:
		return "tcp"
	case TransportAuto:
		return "auto"
	}
	return "udp"
}

// ParseTransport reads "udp", "tcp" or "auto".
func ParseTransport(s string) (Transport, error) {
	switch s {
	case "udp":
		return TransportUDP, nil
	case "tcp":
		return TransportTCP, nil
	case "auto":
		return TransportAuto, nil
	}
	return 0, fmt.Errorf("transport %q: want udp, tcp or auto", s)
}

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
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if mark != 0 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	err = inns.Do(netNS, func() (err error) {
		c, err = dialer.DialContext(ctx, "tcp", addr.String())
		return err
	})
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c, err
}

// stream is one connection carrying tunnel messages.
type stream struct {
	d        *Device
	c        net.Conn
	remote   netip.AddrPort
	outbound *Peer                // the peer dialed; nil for an accepted stream
	peer     atomic.Pointer[Peer] // who authenticated on it
	unauth   atomic.Bool          // counted in Device.unauth (accepted, not yet authenticated)

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
	s.unauth.Store(counted)
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
		s.c.Close()
		d := s.d
		d.streamsMu.Lock()
		delete(d.streams, s)
		d.streamsMu.Unlock()
		if s.unauth.CompareAndSwap(true, false) {
			// Accepted and never authenticated: garbage, half a message,
			// silence, or a handshake that did not complete.
			d.unauth.Add(-1)
			d.stats.StreamJunk.Add(1)
		}
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
// does, delivering what they carry in batches.
func (s *stream) readLoop() {
	d := s.d
	defer d.wg.Done()
	defer s.close()
	br := bufio.NewReaderSize(s.c, 256<<10)
	buf := make([]byte, 0xffff)
	rx := make([]byte, d.maxReassembled())
	w := newTUNWriter(d.tun, 64)
	var out *l2out
	if d.mode == tun.ModeTAP {
		out = d.newL2Out(d.udpConn(), 64)
	}
	var hdr [2]byte
	unauthMsgs := 0
	for {
		if s.peer.Load() == nil {
			// Not yet anybody's: it authenticates within the bound or goes.
			s.c.SetReadDeadline(time.Now().Add(streamAuthTimeout))
		} else {
			s.c.SetReadDeadline(time.Time{}) // an idle peer's stream may wait
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		s.c.SetReadDeadline(time.Now().Add(streamAuthTimeout)) // the rest of a message comes along
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return
		}
		pkt, p := d.handleMessage(buf[:n], s.remote, rx, s)
		if s.peer.Load() == nil {
			// Garbage, or a handshake that did not complete (a cookie
			// reply is fair, once or twice).
			if unauthMsgs++; unauthMsgs >= 3 {
				return
			}
		}
		switch {
		case len(pkt) == 0:
		case out != nil:
			d.switchFrame(pkt, p, time.Now(), w, out)
		default:
			w.add(pkt)
		}
		if br.Buffered() < 2 {
			w.flush()
			if out != nil {
				out.flush()
			}
		}
	}
}

// udpConn returns the device's UDP socket.
func (d *Device) udpConn() *net.UDPConn {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.conn
}

// listenStream starts (port != 0) or stops (0) accepting streams. The
// caller holds d.mu.
func (d *Device) listenStream(port uint16) error {
	if d.streamLn != nil {
		d.streamLn.Close()
		d.streamLn, d.listenTCP = nil, 0
	}
	if port == 0 {
		return nil
	}
	ln, err := d.transport.Listen(d.netNS, port)
	if err != nil {
		return fmt.Errorf("tunnel: listen on TCP port %d: %w", port, err)
	}
	d.streamLn, d.listenTCP = ln, port
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
		if d.unauth.Add(1) > maxUnauthStreams {
			d.unauth.Add(-1)
			d.stats.StreamJunk.Add(1)
			c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		d.stats.StreamsAccepted.Add(1)
		d.newStream(c, nil, true)
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
		s.d.unauth.Add(-1)
	}
	if old := p.stream.Swap(s); old != s {
		s.d.log.Debug("peer reached by stream", "peer", p.public.String(), "stream", s.String())
	}
}

// tickStream runs p's transport work on the timers goroutine: the fallback
// of an auto peer to TCP, its UDP checks, the dials.
func (p *Peer) tickStream(now time.Time) {
	d := p.dev
	mode := Transport(p.transport.Load())
	if mode == TransportUDP {
		if s := p.stream.Load(); s != nil && s.outbound == p {
			p.stream.CompareAndSwap(s, nil)
			s.close() // configured back to UDP
		}
		return
	}
	ep := p.endpoint.Load()
	p.mu.Lock()
	stuck := p.hsIndex != 0 && now.Sub(p.hsStarted) >= d.tm.TransportFallback
	p.mu.Unlock()
	st := &p.tr
	st.mu.Lock()
	defer st.mu.Unlock()
	if mode == TransportAuto && !st.onTCP && stuck && ep != nil {
		st.onTCP, st.udpOK, st.nextCheck, st.checkEvery = true, 0, now.Add(d.tm.UDPRetry), d.tm.UDPRetry
		p.toTCP.Add(1)
		d.log.Info("no handshake over UDP: moving to TCP", "peer", p.public.String(), "endpoint", *ep,
			"after", d.tm.TransportFallback)
	}
	wantTCP := mode == TransportTCP || st.onTCP
	cur := p.stream.Load()
	if wantTCP && cur == nil && ep != nil && !st.dialing && !now.Before(st.nextDial) {
		st.dialing = true
		d.wg.Add(1)
		go p.dial(*ep)
	}
	if wantTCP && cur != nil && cur.outbound == p && stuck && now.Sub(st.dialed) >= d.tm.TransportFallback {
		// A stream that carries no handshake through is as good as none.
		cur.close()
	}
	if mode == TransportAuto && st.onTCP && ep != nil && !now.Before(st.nextCheck) {
		p.checkUDP(now, *ep)
	}
}

// dial connects a stream to ep for p, with backoff on failure.
func (p *Peer) dial(ep netip.AddrPort) {
	d := p.dev
	defer d.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), streamAuthTimeout)
	defer cancel()
	go func() {
		select {
		case <-d.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := d.transport.Dial(ctx, d.netNS, d.mark.Load(), ep)
	st := &p.tr
	st.mu.Lock()
	st.dialing = false
	now := time.Now()
	if err != nil {
		st.fails++
		backoff := min(maxDialBackoff, time.Duration(1<<min(st.fails, 8))*250*time.Millisecond)
		st.nextDial = now.Add(backoff)
		st.mu.Unlock()
		if st.fails == 1 || st.fails%10 == 0 {
			d.log.Warn("cannot connect over TCP", "peer", p.public.String(), "endpoint", ep, "err", err, "retry_in", backoff)
		}
		return
	}
	st.fails, st.dialed, st.nextDial = 0, now, now.Add(500*time.Millisecond)
	st.mu.Unlock()
	p.mu.Lock()
	removed := p.removed
	p.mu.Unlock()
	if removed {
		c.Close()
		return
	}
	s := d.newStream(c, p, false)
	if old := p.stream.Swap(s); old != nil && old != s {
		old.close()
	}
	d.stats.StreamsDialed.Add(1)
	d.log.Info("connected over TCP", "peer", p.public.String(), "stream", s.String())
	p.initiate(now, true) // a new stream, maybe a restarted server: a handshake at once
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
	if conn := d.udpConn(); conn != nil {
		conn.WriteToUDPAddrPort(buf[:m], ep)
	}
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
		st.nextCheck = time.Now().Add(d.tm.UDPRetry / 6) // confirm soon
		return
	}
	st.onTCP, st.udpOK, st.checkID = false, 0, 0
	p.toUDP.Add(1)
	d.log.Info("UDP works again: moving back from TCP", "peer", p.public.String())
	if s := p.stream.Swap(nil); s != nil {
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
}
