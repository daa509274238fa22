package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/packet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/route"
	"github.com/tapwire/tapwire/tun"
)

// Options configure a Device.
type Options struct {
	Log    *slog.Logger // nil: slog.Default()
	Timers Timers       // zero fields: the whitepaper's values
	// NetNS is the network namespace of the UDP socket ("" for the
	// caller's); usually the one the TUN device was opened in.
	NetNS string
	// Switch configures the MAC learning table of a TAP device (ageing,
	// addresses learned per peer); unused in TUN mode.
	Switch l2switch.Options
	// ClampMSS lowers the MSS of TCP connections opened through the tunnel
	// to what one datagram on each peer's path carries (and never above
	// the device's MTU less 40 over IPv4, 60 over IPv6), as OpenVPN's
	// mssfix and tinc's ClampMSS do: hosts bridged behind a TAP device,
	// with a 1500-byte MTU, then send segments that need no fragments.
	ClampMSS bool
	// Network opens the datagram endpoints; nil: the kernel's UDP
	// sockets, in NetNS. Tests pass an in-memory one.
	Network Network
	// Clock tells the time and paces the timers; nil: the system's.
	Clock Clock
	// Workers is how many goroutines seal and authenticate data messages
	// (see pipeline.go), the readers included: 1, each direction on one
	// goroutine; N > 1, the readers and N-1 workers. 0: one per CPU the
	// Go runtime uses (GOMAXPROCS) from 4 CPUs, 1 below: on 2 CPUs the
	// two directions' readers already keep both busy under load, and
	// workers cost 6-16% there (BENCHMARKS.md).
	Workers int
}

// checksumTruster is a PacketDevice whose coalescing can skip verifying
// checksums (tun.Device.TrustChecksums on Linux).
type checksumTruster interface{ TrustChecksums(on bool) }

// Device is a WireGuard interface: a TUN device, a UDP socket and peers;
// or, in TAP mode, a TAP device whose Ethernet frames the peers exchange
// through a MAC learning switch.
type Device struct {
	log   *slog.Logger
	tm    Timers
	tun   PacketDevice
	mtu   int
	netNS string
	net   Network
	rtmtu routeMTUer // the network's route MTUs (nil: unknown)
	clock Clock

	mode       tun.Mode
	msgType    uint32                  // type of the data messages sent: protocol.TypeTransport or TypeFrame
	padMTU     int                     // the limit of padding: the MTU, or for frames 2 + maxFrame
	maxFrame   int                     // TAP: the largest frame carried, MTU + MaxFrameOverhead
	sw         *l2switch.Table[*Peer]  // TAP: where MACs are; the nil port is the tap device
	mss4, mss6 uint16                  // MSS clamp (0: off)
	peerList   atomic.Pointer[[]*Peer] // the peers, for flooding without a lock
	hub        hubState                // TAP: the tap's address pinned, the flood limit (see l2.go)
	// The timers' schedule (see timerset.go): timers, the peers by due
	// time, and spare are the timer goroutine's own; awake holds the
	// peers woken since its last tick.
	timers      timerHeap
	spare, due  []*Peer
	evaluations atomic.Uint64 // peers' timers evaluated (see evaluate)
	timerMu     sync.Mutex
	awake       []*Peer

	mu          sync.RWMutex // guards the configuration below
	privateKey  protocol.Key
	local       *protocol.Local
	checker     *protocol.CookieChecker
	peers       map[protocol.Key]*Peer
	allowedMACs map[protocol.Key][]l2switch.MAC // TAP: sources a peer may use
	listenPort  uint16
	fwmark      uint32
	mark        atomic.Uint32 // fwmark, for those who must not take mu (the path MTU timers)
	conn        PacketConn
	expired     time.Time       // when the timers last aged the MAC table (TAP)
	onPathError func(pathError) // d.pathTooBig, bound once

	// Streams (see stream.go): how they are made, the listener (guarded by
	// mu), those open, and the accepted ones not yet authenticated.
	transport  streamTransport
	streamLn   net.Listener
	listenTCP  uint16
	streamsMu  sync.Mutex
	streams    map[*stream]struct{}
	unauthBy   map[netip.Addr]int // accepted streams not yet authenticated, by address (guarded by streamsMu)
	unauthList []*stream          // the same, oldest first (guarded by streamsMu)
	unauth     atomic.Int32

	routes  route.Table[*Peer]
	indices indexTable
	limiter *rateLimiter
	// Handshakes (see handshake.go): the queue to the worker, the cookie
	// replies each source gets, and the Curve25519 work per second.
	hsq           *hsQueue
	cookieLimiter *rateLimiter
	budget        tokenBucket

	// handshakes counts handshake messages received in the current second,
	// to tell when the device is under load and must ask for cookies.
	hsSecond  atomic.Int64
	hsCount   atomic.Int64
	loadUntil atomic.Int64 // unix nanoseconds until which the device stays under load

	// The pipelines' workers (see pipeline.go): how many (the readers
	// included), and their work.
	workers int
	work    chan workItem

	stats  Stats
	closed chan struct{}
	stop   sync.Once // closes closed: on Close, or when the device disappears
	free   sync.Once // lets go of the device, the socket and the keys: on Close
	wg     sync.WaitGroup
}

// Stats counts what a Device dropped, by reason (nothing it drops is
// answered), and after the drops what else it did that is worth watching.
type Stats struct {
	Malformed      atomic.Uint64 // too short, unknown type, wrong size
	BadMAC         atomic.Uint64 // handshake messages whose mac1 (or needed mac2) did not verify
	CookiesSent    atomic.Uint64 // cookie replies sent under load
	RateLimited    atomic.Uint64 // handshake messages over a source's rate
	UnknownPeer    atomic.Uint64 // initiations from a static key no peer has
	BadHandshake   atomic.Uint64 // handshake messages that failed to decrypt or were replayed
	UnknownIndex   atomic.Uint64 // messages for a receiver index we do not have
	BadPacket      atomic.Uint64 // transport data that failed authentication
	Replayed       atomic.Uint64 // transport data with a counter already seen
	SourceMismatch atomic.Uint64 // decrypted packets from an address outside the peer's allowed IPs
	NoRoute        atomic.Uint64 // packets from the TUN device to no peer's allowed IPs
	NoEndpoint     atomic.Uint64 // packets for a peer whose endpoint is unknown
	ModeMismatch   atomic.Uint64 // authentic data of the other mode: IP packets on a TAP interface, frames on a TUN one
	FloodLimited   atomic.Uint64 // TAP: frames from a peer to flood (broadcast, multicast, unknown unicast) over DeviceConfig.FloodLimit
	// HandshakesDropped counts handshake messages dropped unverified:
	// the worker's queue was full, or the second's Curve25519 budget spent.
	HandshakesDropped atomic.Uint64
	TooBig            atomic.Uint64 // frames over the MTU plus MaxFrameOverhead (from the tap or a peer); TUN packets over a peer's path that are not split (each answered with ICMP when it may be)
	FragMalformed     atomic.Uint64 // fragments whose header is malformed or out of range
	FragDuplicate     atomic.Uint64 // fragments whose data had arrived already
	FragOverlap       atomic.Uint64 // fragments overlapping data that had arrived
	FragMismatch      atomic.Uint64 // fragments that disagree with their frame, or whose frame is too big
	FragTimedOut      atomic.Uint64 // incomplete frames dropped: timed out, or evicted by newer ones

	// Not drops: sessions established (a keypair made current), as
	// initiator (the peer's response consumed) or as responder (the
	// initiator's first data on the new keypair confirmed it): each moves
	// the peer's latest handshake.
	HandshakesCompleted atomic.Uint64

	// Not drops: how often the socket offloads carried several datagrams.
	GSOSends    atomic.Uint64 // sends of several datagrams in one UDP GSO message
	GROReceives atomic.Uint64 // receives of several datagrams coalesced by UDP GRO
	MSSClamped  atomic.Uint64 // TCP SYNs whose MSS was lowered (Options.ClampMSS)

	// Not drops: what the path MTU work did.
	Fragmented    atomic.Uint64 // frames or packets split into fragments for a peer's path
	FragmentsSent atomic.Uint64 // fragment messages sent
	Reassembled   atomic.Uint64 // frames or packets put together from fragments
	ICMPTooBig    atomic.Uint64 // TUN: ICMP "too big" messages written back for packets over a peer's path (IPv4 with DF, IPv6)
	IPFragmented  atomic.Uint64 // TUN: IPv4 packets without DF cut into IPv4 fragments for the path of a peer that takes no fragments
	ProbesSent    atomic.Uint64 // path MTU probes sent
	ProbeReplies  atomic.Uint64 // path MTU probes answered

	// Streams (TCP): accepted, dialed, closed for garbage, half a message
	// or silence (or over the limit of unauthenticated ones), and messages
	// dropped because a stream's queue was full or it was closed.
	StreamsAccepted atomic.Uint64
	StreamsDialed   atomic.Uint64
	StreamJunk      atomic.Uint64
	StreamDropped   atomic.Uint64
}

// New starts a Device on an open TUN or TAP device, which it owns from
// then on. The device has no key and no peers until Apply gives it some.
//
// On a TAP device the peers exchange Ethernet frames in protocol.TypeFrame
// messages, which WireGuard peers and TUN-mode tapwire peers drop (a
// tapwire peer reports the mismatch); allowed IPs play no part, and every
// peer is a port of a MAC learning switch. Frames up to the device's MTU
// plus MaxFrameOverhead are carried; the MTU is read once, here.
func New(dev PacketDevice, opts Options) (*Device, error) {
	mtu, err := dev.MTU()
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	d := &Device{
		log:           opts.Log,
		tm:            opts.Timers.withDefaults(),
		tun:           dev,
		mtu:           mtu,
		netNS:         opts.NetNS,
		mode:          dev.Mode(),
		msgType:       protocol.TypeTransport,
		padMTU:        mtu,
		peers:         make(map[protocol.Key]*Peer),
		allowedMACs:   make(map[protocol.Key][]l2switch.MAC),
		limiter:       newRateLimiter(20, 10),
		hsq:           newHSQueue(),
		cookieLimiter: newRateLimiter(cookieRate, cookieBurst),
		budget:        tokenBucket{rate: handshakeBudget, burst: handshakeBudget / 10},
		net:           opts.Network,
		clock:         opts.Clock,
		transport:     tcpTransport{},
		streams:       make(map[*stream]struct{}),
		closed:        make(chan struct{}),
	}
	if d.mode == tun.ModeTAP {
		d.msgType = protocol.TypeFrame
		d.maxFrame = min(mtu+MaxFrameOverhead, 65535)
		d.padMTU = frameLenSize + d.maxFrame
		d.sw = l2switch.New[*Peer](opts.Switch)
	}
	if opts.ClampMSS {
		d.mss4, d.mss6 = packet.MSSFor(mtu)
	}
	d.updatePeerList()
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("dev", dev.Name())
	if d.clock == nil {
		d.clock = systemClock{}
	}
	if d.net == nil {
		d.net = newKernelNetwork(d.netNS, d.log)
	}
	d.rtmtu, _ = d.net.(routeMTUer)
	if t, ok := dev.(checksumTruster); ok {
		// What reaches the device was authenticated by ChaCha20-Poly1305
		// (or made by the engine): its coalescing need not verify checksums.
		t.TrustChecksums(true)
	}
	d.pinTapMAC(d.now())
	d.onPathError = d.pathTooBig
	d.indices.m = make(map[uint32]indexEntry)
	d.workers = opts.Workers
	if d.workers <= 0 {
		d.workers = defaultWorkers(runtime.GOMAXPROCS(0))
	}
	if d.parallel() {
		d.work = make(chan workItem, 4*pipeSlots*d.workers)
	}
	if err := d.bind(0); err != nil {
		d.closeRouteMTUs()
		return nil, err
	}
	if d.parallel() {
		// The readers take chunks too: workers-1 goroutines beside them.
		d.wg.Add(d.workers - 1)
		for range d.workers - 1 {
			go d.worker()
		}
	}
	d.wg.Add(2)
	if d.mode == tun.ModeTAP {
		go d.readTAP()
	} else {
		go d.readTUN()
	}
	d.wg.Add(1)
	go d.handshakeWorker()
	stopTimers := d.clock.Every(d.tm.Tick, d.timerTick)
	go func() {
		defer d.wg.Done()
		<-d.closed
		stopTimers()
	}()
	return d, nil
}

// Name returns the interface name.
func (d *Device) Name() string { return d.tun.Name() }

// Mode returns the device's mode: TUN (IP packets) or TAP (frames).
func (d *Device) Mode() tun.Mode { return d.mode }

// Stats returns the device's drop counters.
func (d *Device) Stats() *Stats { return &d.stats }

// Close stops the device, closes its socket and its TUN device. It waits
// for its goroutines to end.
func (d *Device) Close() error {
	d.stop.Do(func() { close(d.closed) })
	d.free.Do(func() {
		d.tun.Close()
		d.mu.Lock()
		if d.conn != nil {
			d.conn.Close()
		}
		for _, p := range d.peers {
			p.zeroKeys()
		}
		// The static key goes too (its crypto/ecdh copy with the last
		// reference to it).
		clear(d.privateKey[:])
		d.local, d.checker = nil, nil
		d.mu.Unlock()
	})
	d.closeStreams()
	d.wg.Wait()
	d.closeRouteMTUs()
	return nil
}

func (d *Device) closeRouteMTUs() {
	if d.rtmtu != nil {
		d.rtmtu.close()
	}
}

// now returns the device clock's time.
func (d *Device) now() time.Time { return d.clock.Now() }

// Done is closed when the device stops, on Close or when its TUN device
// disappears (ip link del).
func (d *Device) Done() <-chan struct{} { return d.closed }

// bind opens the UDP socket on port (0: any) and starts its reader. The
// caller holds d.mu, or the device is not yet shared.
func (d *Device) bind(port uint16) error {
	conn, err := d.openConn(port)
	if err != nil {
		return err
	}
	if d.fwmark != 0 {
		if err := conn.SetMark(d.fwmark); err != nil {
			conn.Close()
			return fmt.Errorf("tunnel: set fwmark %#x: %w", d.fwmark, err)
		}
	}
	d.installConn(conn)
	return nil
}

// openConn opens a socket on port (0: any).
func (d *Device) openConn(port uint16) (PacketConn, error) {
	conn, err := d.net.ListenPacket(port)
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	return conn, nil
}

// installConn makes conn the device's socket, closing the old one, and
// starts its reader. The caller holds d.mu, or the device is not yet
// shared.
func (d *Device) installConn(conn PacketConn) {
	if d.conn != nil {
		d.conn.Close()
	}
	d.conn = conn
	d.listenPort = conn.LocalPort()
	d.wg.Add(1)
	go d.readUDP(conn)
}

// writeTo sends one datagram on conn (nil: none, an error).
func writeTo(conn PacketConn, msg []byte, to netip.AddrPort) error {
	if conn == nil {
		return net.ErrClosed
	}
	if w, ok := conn.(oneWriter); ok {
		return w.writeOne(msg, to)
	}
	_, err := conn.WriteBatch([]Datagram{{Buf: msg, Addr: to}})
	return err
}

// drainPathErrors hands what the path said about the sizes of datagrams
// conn sent to d.pathTooBig (on the kernel's sockets: their error queue).
func (d *Device) drainPathErrors(conn PacketConn) {
	if r, ok := conn.(pathReporter); ok {
		r.drainPathErrors(d.onPathError)
	}
}

// send writes a message to a peer now, on its path: its stream, or its UDP
// endpoint.
func (d *Device) send(p *Peer, msg []byte) error {
	if s := p.liveStream(); s != nil {
		p.lastSent.Store(d.now().UnixNano())
		if !s.enqueue(msg) {
			return errors.New("stream full")
		}
		p.txBytes.Add(uint64(len(msg)))
		return nil
	}
	if devconf.Transport(p.transport.Load()) == devconf.TransportTCP {
		d.stats.NoEndpoint.Add(1) // no stream yet: nothing goes over UDP
		return errors.New("no stream yet")
	}
	ep := p.endpoint.Load()
	if ep == nil {
		d.stats.NoEndpoint.Add(1)
		return errors.New("no endpoint")
	}
	d.mu.RLock()
	conn := d.conn
	d.mu.RUnlock()
	p.lastSent.Store(d.now().UnixNano()) // the attempt counts, so a dead network is not retried every tick
	// The kernel's WriteBatch tries once more after an error an ICMP
	// report left on the socket, which the send took in its place.
	if err := writeTo(conn, msg, *ep); err != nil {
		return err
	}
	p.txBytes.Add(uint64(len(msg)))
	return nil
}

// readDevice reads the device in batches, at offset tun.Headroom, into
// the slots of its send pipeline, and hands each batch to handle, which
// queues its messages in the slot, then to the pipeline (see pipeline.go),
// until the device is closed or removed (which stops the Device).
func (d *Device) readDevice(handle func(s *txSlot)) {
	defer d.wg.Done()
	p := d.newTxPipe(d.tun.BatchSize())
	if d.pipelined() {
		d.wg.Add(1)
		go d.writeTx(p)
	}
	defer func() {
		close(p.ordered) // the writer sends what is in flight, then stops
		// Stopped, not freed: Close, which the owner still calls, lets go
		// of the device, the socket and the keys.
		d.stop.Do(func() { close(d.closed) })
		d.closeConn()
	}()
	for {
		var s *txSlot
		select {
		case s = <-p.free:
		case <-d.closed:
			return
		}
		n, err := d.tun.ReadBatch(s.bufs, s.sizes, tun.Headroom)
		if err != nil {
			if !errors.Is(err, tun.ErrClosed) {
				d.log.Info("device gone, stopping", "mode", d.mode, "err", err)
			}
			return
		}
		d.mu.RLock()
		conn := d.conn
		d.mu.RUnlock()
		d.setConn(s, conn)
		s.n = n
		handle(s)
		d.submitTx(p, s)
	}
}

// readTUN reads packets from the TUN device and sends each to the peer whose
// allowed IPs hold its destination, encrypting in place and sending the
// batch with one sendmmsg.
func (d *Device) readTUN() {
	const off = tun.Headroom
	ptb := make([]byte, packet.TooBigMaxLen)
	var lim ptbLimiter
	d.readDevice(func(s *txSlot) {
		bufs, sb := s.bufs, s.sb
		for i := range s.n {
			pkt := bufs[i][off : off+s.sizes[i]]
			p, ok := d.routes.LookupDst(pkt)
			if !ok {
				d.stats.NoRoute.Add(1)
				continue
			}
			p.clampMSS(pkt)
			if limit := p.limit(); limit > 0 && len(pkt) > limit && d.tunTooBig(p, pkt, limit, sb, ptb, &lim) {
				continue
			}
			// The message is built in place: header in the headroom.
			p.sendPacket(bufs[i][off-protocol.TransportHeaderSize:], s.sizes[i], sb)
		}
	})
}

func (d *Device) closeConn() {
	d.mu.Lock()
	if d.conn != nil {
		d.conn.Close()
	}
	d.mu.Unlock()
}

// readUDP handles the messages arriving on one socket until it is closed:
// many datagrams per recvmmsg into the slots of its receive pipeline (see
// pipeline.go), the transport messages authenticated and decrypted in
// place by the workers, then in order checked and their packets written to
// the TUN device in one batch (which coalesces TCP and UDP flows into
// super-packets when the device has offloads). Other messages are handled
// here as they come (handshake messages go to their worker's queue).
func (d *Device) readUDP(conn PacketConn) {
	defer d.wg.Done()
	p := d.newRxPipe(conn)
	o := d.newRxOut(conn)
	if d.pipelined() {
		d.wg.Add(1)
		go d.writeRx(p, o)
	}
	defer close(p.ordered) // the writer delivers what is in flight, then stops
	fails := 0             // receive errors in a row
	for {
		var s *rxSlot
		select {
		case s = <-p.free:
		case <-d.closed:
			return
		}
		n, err := s.b.recv()
		if err != nil {
			p.free <- s
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An error an ICMP report left on the socket: its details
			// are in the error queue. Anything else that keeps failing
			// (ENOMEM, say) is retried after a pause that grows to 100 ms,
			// not in a tight loop.
			d.drainPathErrors(conn)
			if fails++; fails > 8 {
				select {
				case <-d.closed:
					return
				case <-time.After(min(time.Duration(fails-8)*time.Millisecond, 100*time.Millisecond)):
				}
			}
			continue
		}
		fails = 0
		for i := range n {
			data := s.b.rx[i].Buf[:s.b.rx[i].N]
			seg := s.b.rx[i].Segment
			if seg <= 0 {
				seg = len(data)
			} else if seg < len(data) {
				d.stats.GROReceives.Add(1)
			}
			// With GRO one buffer holds a run of datagrams of seg bytes.
			for len(data) > 0 {
				msg := data[:min(seg, len(data))]
				data = data[len(msg):]
				d.classify(s, msg, s.b.rx[i].Addr)
			}
		}
		s.chunks.n = 0
		if len(s.jobs) > 0 && !d.dispatch(s, &s.chunks, len(s.jobs)) {
			return
		}
		if !d.pipelined() {
			if !s.wait(d.closed) {
				return
			}
			d.deliverRx(s, o)
			p.free <- s
			continue
		}
		p.ordered <- s // never blocks: there are as many places as slots
	}
}

// classify queues a transport message of a known keypair in s for its
// workers, and handles any other message at once.
func (d *Device) classify(s *rxSlot, msg []byte, src netip.AddrPort) {
	typ, ok := protocol.MessageType(msg)
	if !ok || !protocol.IsTransportType(typ) {
		d.receive(msg, src, nil, nil) // never a packet: handshakes are queued, the rest dropped
		return
	}
	receiver, _, err := protocol.ParseTransportHeader(msg)
	if err != nil {
		d.stats.Malformed.Add(1)
		return
	}
	e, ok := d.indices.get(receiver)
	if !ok || e.kp == nil {
		d.stats.UnknownIndex.Add(1)
		return
	}
	// Failed until a worker authenticates it: a job no chunk covered
	// could never pass for authentic.
	s.jobs = append(s.jobs, openJob{msg: msg, typ: typ, src: src, peer: e.peer, kp: e.kp, err: errNotOpened})
}

// tunWriter gathers decrypted packets into buffers with headroom and writes
// them to the TUN device in batches, which the device coalesces.
type tunWriter struct {
	dev  PacketDevice
	bufs [][]byte
	out  [][]byte
}

func newTUNWriter(dev PacketDevice, n int) *tunWriter {
	w := &tunWriter{dev: dev, bufs: make([][]byte, n), out: make([][]byte, 0, n)}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	return w
}

func (w *tunWriter) add(pkt []byte) {
	if len(w.out) == len(w.bufs) {
		w.flush()
	}
	buf := w.bufs[len(w.out)]
	n := copy(buf[tun.Headroom:], pkt)
	w.out = append(w.out, buf[:tun.Headroom+n])
}

func (w *tunWriter) flush() {
	if len(w.out) > 0 {
		w.dev.WriteBatch(w.out, tun.Headroom) // packets the kernel refuses are dropped
		w.out = w.out[:0]
	}
}

// handleMessage dispatches one message by type, and returns the packet (or
// frame) a data message carried, decrypted in place, or put together from
// fragments in rx, and the peer it came from. The message came over UDP
// from src, or (via not nil) on a stream. Anything that does not verify is
// dropped and counted, never answered.
func (d *Device) handleMessage(msg []byte, src netip.AddrPort, rx []byte, via *stream) ([]byte, *Peer) {
	typ, ok := protocol.MessageType(msg)
	if !ok {
		d.stats.Malformed.Add(1)
		return nil, nil
	}
	return d.handleTyped(msg, typ, src, rx, via)
}

// handleTyped is handleMessage for a message whose type typ was read.
func (d *Device) handleTyped(msg []byte, typ uint32, src netip.AddrPort, rx []byte, via *stream) ([]byte, *Peer) {
	switch typ {
	case protocol.TypeTransport, protocol.TypeFrame, protocol.TypeFragment, protocol.TypeProbe:
		return d.handleTransport(msg, typ, src, rx, via)
	case protocol.TypeInitiation, protocol.TypeResponse, protocol.TypeCookieReply:
		d.handleHandshake(msg, src, via, nil)
	default:
		d.stats.Malformed.Add(1)
	}
	return nil, nil
}

// checkHandshakeMACs verifies mac1 with checker, and under load mac2,
// answering with a cookie reply (in sb, or at once) when mac2 is missing,
// and the source's rate. It reports whether to go on; the caller takes a
// share of the budget (takeBudget) just before the Curve25519 work.
func (d *Device) checkHandshakeMACs(checker *protocol.CookieChecker, msg []byte, src netip.AddrPort, senderIndex uint32, via *stream, sb *udpBatch) bool {
	if checker == nil || !checker.CheckMAC1(msg) {
		d.stats.BadMAC.Add(1)
		return false
	}
	now := d.now()
	if d.underLoad(now) {
		srcBytes := protocol.SourceBytes(src)
		if !checker.CheckMAC2(msg, srcBytes) {
			d.sendCookieReply(checker, msg, senderIndex, src, srcBytes, via, sb, now)
			return false
		}
		if !d.limiter.allow(src.Addr(), now) {
			d.stats.RateLimited.Add(1)
			return false
		}
	}
	return true
}

// takeBudget takes a share of the Curve25519 work allowed this second,
// reporting whether there was one (when not, the message is dropped and
// counted). Callers take it after every cheaper check passed, so that
// messages that would be refused anyway (a response to no handshake) spend
// none of it.
func (d *Device) takeBudget() bool {
	if !d.budget.take(d.now()) {
		d.stats.HandshakesDropped.Add(1)
		return false
	}
	return true
}

func (d *Device) handleInitiation(msg []byte, src netip.AddrPort, via *stream, sb *udpBatch) {
	if len(msg) != protocol.InitiationSize {
		d.stats.Malformed.Add(1)
		return
	}
	sender := binary.LittleEndian.Uint32(msg[4:8])
	// The key and its checker are read together: Apply may remove the
	// private key meanwhile (both nil then).
	d.mu.RLock()
	local, checker := d.local, d.checker
	d.mu.RUnlock()
	if local == nil || !d.checkHandshakeMACs(checker, msg, src, sender, via, sb) {
		if local == nil {
			d.stats.BadMAC.Add(1)
		}
		return
	}
	if !d.takeBudget() {
		return
	}
	in, err := local.ConsumeInitiation(msg)
	if err != nil {
		d.stats.BadHandshake.Add(1)
		return
	}
	d.mu.RLock()
	p := d.peers[in.RemoteStatic]
	d.mu.RUnlock()
	if p == nil {
		d.stats.UnknownPeer.Add(1)
		return
	}
	p.handleInitiation(in, src, via)
}

func (d *Device) handleResponse(msg []byte, src netip.AddrPort, via *stream, sb *udpBatch) {
	if len(msg) != protocol.ResponseSize {
		d.stats.Malformed.Add(1)
		return
	}
	sender, receiver, err := protocol.ParseResponseIndices(msg)
	if err != nil {
		d.stats.Malformed.Add(1)
		return
	}
	d.mu.RLock()
	checker := d.checker
	d.mu.RUnlock()
	if !d.checkHandshakeMACs(checker, msg, src, sender, via, sb) {
		return
	}
	e, ok := d.indices.get(receiver)
	if !ok || e.kp != nil {
		d.stats.UnknownIndex.Add(1)
		return
	}
	if !d.takeBudget() {
		return
	}
	e.peer.handleResponse(msg, receiver, src, via)
}

func (d *Device) handleCookieReply(msg []byte) {
	if len(msg) != protocol.CookieReplySize {
		d.stats.Malformed.Add(1)
		return
	}
	receiver := binary.LittleEndian.Uint32(msg[4:8])
	e, ok := d.indices.get(receiver)
	if !ok {
		d.stats.UnknownIndex.Add(1)
		return
	}
	if err := e.peer.cookies.ConsumeReply(msg); err != nil {
		d.stats.BadHandshake.Add(1)
	}
}

func (d *Device) handleTransport(msg []byte, typ uint32, src netip.AddrPort, rx []byte, via *stream) ([]byte, *Peer) {
	receiver, _, err := protocol.ParseTransportHeader(msg)
	if err != nil {
		d.stats.Malformed.Add(1)
		return nil, nil
	}
	e, ok := d.indices.get(receiver)
	if !ok || e.kp == nil {
		d.stats.UnknownIndex.Add(1)
		return nil, nil
	}
	return e.peer.handleTransport(e.kp, msg, typ, src, rx, via), e.peer
}

// indexTable maps the local indices of handshakes and keypairs to them.
type indexTable struct {
	mu sync.RWMutex
	m  map[uint32]indexEntry
}

type indexEntry struct {
	peer *Peer
	kp   *protocol.Keypair // nil: a handshake in flight
}

func (t *indexTable) get(i uint32) (indexEntry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.m[i]
	return e, ok
}

// add reserves a new random index for e.
func (t *indexTable) add(e indexEntry) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		var b [4]byte
		rand.Read(b[:])
		i := binary.LittleEndian.Uint32(b[:])
		if _, used := t.m[i]; !used && i != 0 {
			t.m[i] = e
			return i
		}
	}
}

func (t *indexTable) set(i uint32, e indexEntry) {
	t.mu.Lock()
	t.m[i] = e
	t.mu.Unlock()
}

func (t *indexTable) del(i uint32) {
	if i == 0 {
		return
	}
	t.mu.Lock()
	delete(t.m, i)
	t.mu.Unlock()
}

// timerTick evaluates the timers of every peer that has any (the clock calls it every
// Timers.Tick), and reads what the kernel reported about the sizes of
// datagrams sent.
func (d *Device) timerTick(now time.Time) {
	select {
	case <-d.closed:
		return
	default:
	}
	if d.sw != nil && now.Sub(d.expired) >= time.Second {
		d.sw.Expire(now)
		d.pinTapMAC(now) // the tap's address may have changed
		d.expired = now
	}
	d.drainPathErrors(d.udpConn())
	d.tickPeers(now)
}

// sendProbe sends one path MTU probe.
func (d *Device) sendProbe(p *Peer, msg []byte) {
	if d.send(p, msg) == nil {
		d.stats.ProbesSent.Add(1)
	}
}

// routeMTU returns the MTU of the local route to ep, with the socket's
// fwmark (0: unknown). It takes no lock of the device's.
func (d *Device) routeMTU(ep netip.AddrPort) int {
	if d.rtmtu == nil {
		return 0
	}
	return d.rtmtu.routeMTU(d.mark.Load(), ep)
}
