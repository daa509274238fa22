package tunnel

import (
	"net/netip"

	"github.com/tapwire/tapwire/protocol"
)

// batchSize is how many datagrams the socket reader receives, and how many
// messages a sender gathers, per batch (what the kernel's UDP GSO and
// recvmmsg take in one call comfortably; tun.DefaultBatchSize is the same).
const batchSize = 64

// maxDatagram is the largest datagram received (with GRO, the largest run).
const maxDatagram = 65536

// udpBatch gathers the datagrams a goroutine sends, with buffers made
// once, so the data path allocates nothing: add queues a message, flush
// hands the queue to the endpoint in one WriteBatch (which, on the kernel's
// sockets, is one sendmmsg with UDP GSO). It also holds the buffers a
// reader receives into. A batch belongs to one goroutine at a time.
//
// A message may be queued before it is sealed, with the work to seal it
// (a sealJob): flush seals what is still unsealed before anything leaves,
// and a send pipeline (see pipeline.go) has its workers seal the jobs in
// parallel before the flush.
type udpBatch struct {
	conn PacketConn
	v4   bool // the endpoint reaches IPv4 addresses only
	// elastic: a pipeline's batch, flushed only by its writer: add and
	// scratch grow the batch instead of flushing it (what they allocate
	// stays for the next batches).
	elastic bool

	rx []Datagram // receive side: buffers of maxDatagram bytes

	// send side
	msgs    []Datagram
	jobs    []sealJob // messages of msgs still to seal, in order
	sealed  int       // jobs[:sealed] are sealed
	gsoMsgs int       // sends of the last flush that carried several datagrams
	arena   []byte
	used    int      // bytes of arena handed out since the last flush
	arenas  [][]byte // elastic: every arena made, arena being arenas[ai]
	ai      int
}

// sealJob is a message queued before it was sealed: the plaintext
// buf[16:16+n], to seal with kp and counter, padded as far as pad, as a
// message of type typ (see protocol.Keypair.SealTransportCounter).
type sealJob struct {
	kp      *protocol.Keypair
	buf     []byte
	n, pad  int
	typ     uint32
	counter uint64
}

// prepare checks the job's arguments and takes its counter; it returns the
// length of the message it will make, or false (nothing to send).
func (j *sealJob) prepare() (int, bool) {
	m, err := protocol.CheckSeal(j.buf, j.n, j.pad, j.typ)
	if err != nil {
		return 0, false
	}
	if j.counter, err = j.kp.TakeCounter(); err != nil {
		return 0, false
	}
	return m, true
}

// seal seals the job's message in place.
func (j *sealJob) seal() { j.kp.SealTransportCounter(j.buf, j.n, j.pad, j.typ, j.counter) }

// sealRange seals jobs[lo:hi]; several goroutines may seal disjoint ranges.
func (b *udpBatch) sealRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		b.jobs[i].seal()
	}
}

// arenaSize is the scratch space a batch hands out between flushes: the
// fragments of a few dozen frames.
const arenaSize = 256 << 10

// newUDPBatch returns a batch of size messages on conn, with receive
// buffers of bufSize bytes each when bufSize > 0.
func newUDPBatch(conn PacketConn, size, bufSize int) *udpBatch {
	b := &udpBatch{conn: conn, v4: !conn.IPv6(), msgs: make([]Datagram, 0, size), jobs: make([]sealJob, 0, size)}
	if bufSize > 0 {
		b.rx = make([]Datagram, size)
		for i := range b.rx {
			b.rx[i].Buf = make([]byte, bufSize)
		}
	}
	return b
}

// scratch returns n bytes that stay the caller's until the next flush (the
// fragments of a frame are built there), or nil when the batch has no
// room left: flush, then ask again. It also returns nil when the batch is
// full of messages, so that the add of a message built in the space never
// flushes (which would hand the space out again before the message left).
// The space is allocated on first use.
func (b *udpBatch) scratch(n int) []byte {
	if n > arenaSize || (!b.elastic && len(b.msgs) == cap(b.msgs)) {
		return nil
	}
	if b.arena == nil {
		b.arena = make([]byte, arenaSize)
		b.arenas = append(b.arenas[:0], b.arena)
	}
	if b.used+n > len(b.arena) {
		if !b.elastic {
			return nil
		}
		// The next arena, made once and kept: the messages queued use
		// the earlier ones until the flush.
		if b.ai++; b.ai == len(b.arenas) {
			b.arenas = append(b.arenas, make([]byte, arenaSize))
		}
		b.arena, b.used = b.arenas[b.ai], 0
	}
	buf := b.arena[b.used : b.used+n : b.used+n]
	b.used += n
	return buf
}

// recv receives into the batch's buffers; see PacketConn.ReadBatch.
func (b *udpBatch) recv() (int, error) { return b.conn.ReadBatch(b.rx) }

// add queues a datagram for the next flush, flushing first when the batch
// is full. It refuses an IPv6 address on an IPv4-only endpoint.
func (b *udpBatch) add(msg []byte, to netip.AddrPort) bool {
	if b.v4 && !to.Addr().Unmap().Is4() {
		return false
	}
	if len(b.msgs) == cap(b.msgs) && !b.elastic {
		b.flush()
	}
	b.msgs = append(b.msgs, Datagram{Buf: msg, Addr: to})
	return true
}

// addJob queues msg, the message job will seal, for the next flush; see add.
func (b *udpBatch) addJob(msg []byte, to netip.AddrPort, job *sealJob) bool {
	if !b.add(msg, to) {
		return false
	}
	b.jobs = append(b.jobs, *job)
	return true
}

// flush seals the messages still unsealed, sends the queued datagrams and
// empties the queue (and the scratch space).
func (b *udpBatch) flush() error {
	b.gsoMsgs = 0
	if len(b.msgs) == 0 {
		return nil
	}
	b.sealRange(b.sealed, len(b.jobs))
	clear(b.jobs) // let go of the keypairs and buffers
	b.jobs, b.sealed = b.jobs[:0], 0
	var err error
	b.gsoMsgs, err = b.conn.WriteBatch(b.msgs)
	clear(b.msgs) // let go of the buffers
	b.msgs, b.used = b.msgs[:0], 0
	if b.ai > 0 {
		b.ai, b.arena = 0, b.arenas[0]
	}
	return err
}
