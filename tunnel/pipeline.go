package tunnel

import (
	"errors"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// The data path on every core (see docs/ARCHITECTURE.md). Each direction
// is a pipeline of batches, as wireguard-go's since its commit 4201e08:
//
//   - its reader (the device's, or a socket's) reads a batch into a slot
//     and does what must be done in order: looking up peers and keypairs,
//     taking send counters, queueing the messages;
//   - the sealing (or authenticating) of the batch's messages is cut in
//     even chunks, which the device's workers and the reader itself take
//     (the reader then helps with any chunk still queued);
//   - a writer takes the slots in the order they were read, waits for
//     their chunks, and does what must again be done in order: sending the
//     batch (sendmmsg), or checking the replay windows, delivering the
//     packets and writing them to the device. From minPipelined workers
//     that is a goroutine of its own, with pipeSlots batches in flight;
//     with fewer, the reader waits for its chunks and writes the batch.
//
// So the batches of a direction, and every packet in them, leave in the
// order read (what is sent beside the pipelines, a keepalive from the
// timers or packets staged during a handshake, may overtake a few batches,
// well within the receiver's replay window); nothing is allocated per packet (slots and their buffers
// are made once, work items are values); and a reader waits for a free
// slot, so a slow writer slows its reader rather than dropping. With one
// worker (Options.Workers 1, the default below 4 CPUs) the reader does it
// all, as one goroutine per direction did before.

// pipeSlots is how many batches a direction has in flight: one being
// read, one being worked on, one being written.
const pipeSlots = 3

// minChunk is the fewest messages one chunk of work holds: below it, the
// handing over costs more than the work.
const minChunk = 8

// chunksPerWorker is how many chunks a batch is cut into per worker (at
// most). Two, to even out a late start, measured slower than one
// (BenchmarkSealStage, 2 CPUs): each chunk is a handing over.
const chunksPerWorker = 1

// workItem is one chunk of a slot's work: messages lo to hi.
type workItem struct {
	slot   pipeSlot
	lo, hi int
}

// pipeSlot is a batch whose messages workers seal or authenticate.
type pipeSlot interface {
	work(lo, hi int)
	chunkDone()
}

// chunks keeps what a slot waits for: the chunks of its work not done yet,
// and ready, which the last one done signals.
type chunks struct {
	n       int // chunks handed out for the current batch
	pending atomic.Int32
	ready   chan struct{}
}

func (c *chunks) init() { c.ready = make(chan struct{}, 1) }

// chunkDone counts one chunk done, and signals ready after the last.
func (c *chunks) chunkDone() {
	if c.pending.Add(-1) == 0 {
		c.ready <- struct{}{}
	}
}

// wait waits until every chunk handed out is done, or the device closes
// (false: the batch must not be used). It spins a while first: the chunks
// are even, so the others end about when the caller's does, and parking
// costs a wake-up.
func (c *chunks) wait(closed <-chan struct{}) bool {
	if c.n <= 1 {
		return true // done by the reader itself, or nothing to do
	}
	spin(func() bool { return c.pending.Load() == 0 })
	select {
	case <-c.ready:
		return true
	case <-closed:
		return false
	}
}

// minAutoWorkers is the fewest CPUs on which Options.Workers 0 gives
// workers.
const minAutoWorkers = 4

// defaultWorkers is Options.Workers 0 on procs CPUs.
func defaultWorkers(procs int) int {
	if procs < minAutoWorkers {
		return 1
	}
	return procs
}

// parallel reports whether the device has workers.
func (d *Device) parallel() bool { return d.workers > 1 }

// minPipelined is the fewest workers with which each direction also has a
// writer goroutine, and batches in flight while the next is read.
const minPipelined = 4

// pipelined reports whether the data path runs as pipelines with writers:
// with fewer workers the reader waits for its batch's chunks and writes it.
func (d *Device) pipelined() bool { return d.workers >= minPipelined }

// worker does chunks of work until the device closes. After each it
// looks for more for a while before it parks: under load the next batch
// comes within that time, and waking a parked goroutine's thread costs
// tens of microseconds (an idle CPU to wake, in a virtual machine an
// interrupt through the hypervisor), as much as sealing half a batch.
func (d *Device) worker() {
	defer d.wg.Done()
	var it workItem
	for {
		got := spin(func() bool {
			select {
			case it = <-d.work:
				return true
			default:
				return false
			}
		})
		if !got {
			select {
			case it = <-d.work:
			case <-d.closed:
				return
			}
		}
		it.slot.work(it.lo, it.hi)
		it.slot.chunkDone()
		it = workItem{}
	}
}

// spinTime is how long spin polls before giving up.
const spinTime = 50 * time.Microsecond

// spin calls done until it reports true or spinTime went by, yielding
// the processor between calls; it returns done's last answer.
func spin(done func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if done() {
			return true
		}
		if i%32 == 0 {
			now := time.Now()
			if start.IsZero() {
				start = now
			} else if now.Sub(start) > spinTime {
				return false
			}
		}
		runtime.Gosched()
	}
}

// dispatch cuts the work of n messages of slot s into chunks, hands all
// but the first to the workers and does the first itself. c is s's chunk
// state. It returns false if the device closed meanwhile.
func (d *Device) dispatch(s pipeSlot, c *chunks, n int) bool {
	k := min(chunksPerWorker*d.workers, (n+minChunk-1)/minChunk)
	if k <= 1 {
		c.n = 1
		s.work(0, n)
		return true
	}
	// Chunk i is messages i*n/k to (i+1)*n/k: k of them, sizes within one.
	c.n = k
	c.pending.Store(int32(k - 1))
	for i := 1; i < k; i++ {
		select {
		case d.work <- workItem{slot: s, lo: i * n / k, hi: (i + 1) * n / k}:
		case <-d.closed:
			return false
		}
	}
	s.work(0, n/k)
	// Then help: whatever chunks no worker took yet (this batch's, or the
	// other direction's), so that none waits for a worker to wake.
	for c.pending.Load() > 0 {
		select {
		case it := <-d.work:
			it.slot.work(it.lo, it.hi)
			it.slot.chunkDone()
		default:
			return true
		}
	}
	return true
}

// txSlot is a batch read from the TUN or TAP device: its buffers, and
// what it sends.
type txSlot struct {
	chunks
	bufs  [][]byte
	sizes []int
	n     int
	conn  PacketConn // the socket its messages leave on
	sb    *udpBatch  // its messages (nil: no socket)
	out   *l2out     // TAP: its frames to peers (out.sb is sb)
}

func (s *txSlot) work(lo, hi int) { s.sb.sealRange(lo, hi) }

// txPipe is the device reader's pipeline.
type txPipe = pipe[txSlot]

func (d *Device) newTxPipe(batch int) *txPipe {
	return newPipe(d.pipelined(), func() *txSlot {
		s := &txSlot{bufs: make([][]byte, batch), sizes: make([]int, batch)}
		for i := range s.bufs {
			s.bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
		}
		return s
	})
}

// setConn makes conn the socket s's messages leave on.
func (d *Device) setConn(s *txSlot, conn PacketConn) {
	if s.conn == conn && (s.sb != nil || conn == nil) && (d.mode != tun.ModeTAP || s.out != nil) {
		return
	}
	s.conn, s.sb, s.out = conn, nil, nil
	if d.mode == tun.ModeTAP {
		// Flooded copies go in scratch buffers: room for two per frame.
		s.out = d.newL2Out(conn, 2*len(s.bufs))
		s.out.elastic = d.pipelined()
		s.sb = s.out.sb
	} else if conn != nil {
		s.sb = newUDPBatch(conn, len(s.bufs), 0)
	}
	if s.sb != nil {
		s.sb.elastic = d.pipelined()
	}
}

// flushTx sends what s queued, its s.n jobs sealed by its chunks.
func (d *Device) flushTx(s *txSlot) {
	if s.sb != nil {
		s.sb.sealed = s.n
		s.sb.flush()
		d.stats.GSOSends.Add(uint64(s.sb.gsoMsgs))
	}
	if s.out != nil {
		s.out.used = 0
	}
}

// submit hands a slot whose messages were queued to the pipeline: its
// sealing to the workers and itself, then the slot to the writer. With one
// worker it is sealed and sent at once.
func (d *Device) submitTx(p *txPipe, s *txSlot) {
	s.n = 0
	if s.sb != nil {
		s.n = len(s.sb.jobs)
	}
	s.chunks.n = 0
	if s.n > 0 && !d.dispatch(s, &s.chunks, s.n) {
		return // closing: the slot is dropped with its batch
	}
	if !d.pipelined() {
		if s.wait(d.closed) {
			d.flushTx(s)
			p.free <- s
		}
		return
	}
	p.ordered <- s // never blocks: there are as many places as slots
}

// writeTx sends the pipeline's slots in order until the reader stops.
func (d *Device) writeTx(p *txPipe) {
	defer d.wg.Done()
	for s := range p.ordered {
		if !s.wait(d.closed) {
			return // closing: an unsealed batch never leaves
		}
		d.flushTx(s)
		p.free <- s
	}
}

// errNotOpened is an openJob's error until a worker authenticates it.
var errNotOpened = errors.New("tunnel: message not authenticated")

// rxSlot is a batch read from a socket: its datagrams and the transport
// messages among them, to authenticate.
type rxSlot struct {
	chunks
	b    *udpBatch
	jobs []openJob
}

// openJob is one transport message of an rxSlot: the peer and keypair its
// receiver index names and, once authenticated, what that gave.
type openJob struct {
	msg     []byte
	typ     uint32
	src     netip.AddrPort
	peer    *Peer
	kp      *protocol.Keypair
	plain   []byte
	counter uint64
	err     error
}

func (s *rxSlot) work(lo, hi int) {
	for i := lo; i < hi; i++ {
		j := &s.jobs[i]
		j.plain, j.counter, j.err = j.kp.AuthenticateTransport(j.msg)
	}
}

// rxPipe is a socket reader's pipeline.
type rxPipe = pipe[rxSlot]

func (d *Device) newRxPipe(conn PacketConn) *rxPipe {
	return newPipe(d.pipelined(), func() *rxSlot {
		return &rxSlot{b: newUDPBatch(conn, batchSize, maxDatagram), jobs: make([]openJob, 0, batchSize)}
	})
}

// pipe is a direction's slots: the free ones, and those to write, in the
// order read.
type pipe[S any] struct {
	free, ordered chan *S
}

// newPipe makes a pipe of pipeSlots slots (one when not pipelined), each
// made by mk, its chunk state ready, all free.
func newPipe[S any, P interface {
	*S
	init()
}](pipelined bool, mk func() P) *pipe[S] {
	k := 1
	if pipelined {
		k = pipeSlots
	}
	p := &pipe[S]{free: make(chan *S, k), ordered: make(chan *S, k)}
	for range k {
		s := mk()
		s.init()
		p.free <- s
	}
	return p
}

// rxOut is what delivers a socket's packets, in order: the device writer,
// frames switched to peers (TAP), the space fragments are put together in.
type rxOut struct {
	w   *tunWriter
	out *l2out
	rx  []byte
}

func (d *Device) newRxOut(conn PacketConn) *rxOut {
	o := &rxOut{w: newTUNWriter(d.tun, batchSize), rx: make([]byte, d.maxReassembled())}
	if d.mode == tun.ModeTAP {
		o.out = d.newL2Out(conn, batchSize)
	}
	return o
}

// deliverRx checks and delivers the authenticated messages of s in order,
// and writes what they carried to the device.
func (d *Device) deliverRx(s *rxSlot, o *rxOut) {
	now := d.now()
	for i := range s.jobs {
		j := &s.jobs[i]
		pkt := j.peer.deliver(j.kp, j.msg, j.plain, j.counter, j.err, j.typ, j.src, o.rx, nil)
		switch {
		case len(pkt) == 0:
		case o.out != nil:
			d.switchFrame(pkt, j.peer, now, o.w, o.out)
		default:
			o.w.add(pkt)
		}
	}
	clear(s.jobs) // let go of the peers, keypairs and buffers
	s.jobs = s.jobs[:0]
	o.w.flush()
	if o.out != nil {
		o.out.flush()
	}
}

// writeRx delivers the pipeline's slots in order until the reader stops.
func (d *Device) writeRx(p *rxPipe, o *rxOut) {
	defer d.wg.Done()
	for s := range p.ordered {
		if !s.wait(d.closed) {
			return
		}
		d.deliverRx(s, o)
		p.free <- s
	}
}
