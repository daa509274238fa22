package tunnel

import "net/netip"

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
// reader receives into. A batch belongs to one goroutine.
type udpBatch struct {
	conn PacketConn
	v4   bool // the endpoint reaches IPv4 addresses only

	rx []Datagram // receive side: buffers of maxDatagram bytes

	// send side
	msgs    []Datagram
	gsoMsgs int // sends of the last flush that carried several datagrams
	arena   []byte
	used    int // bytes of arena handed out since the last flush
}

// arenaSize is the scratch space a batch hands out between flushes: the
// fragments of a few dozen frames.
const arenaSize = 256 << 10

// newUDPBatch returns a batch of size messages on conn, with receive
// buffers of bufSize bytes each when bufSize > 0.
func newUDPBatch(conn PacketConn, size, bufSize int) *udpBatch {
	b := &udpBatch{conn: conn, v4: !conn.IPv6(), msgs: make([]Datagram, 0, size)}
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
	if n > arenaSize || len(b.msgs) == cap(b.msgs) {
		return nil
	}
	if b.arena == nil {
		b.arena = make([]byte, arenaSize)
	}
	if b.used+n > len(b.arena) {
		return nil
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
	if len(b.msgs) == cap(b.msgs) {
		b.flush()
	}
	b.msgs = append(b.msgs, Datagram{Buf: msg, Addr: to})
	return true
}

// flush sends the queued datagrams and empties the queue (and the scratch
// space).
func (b *udpBatch) flush() error {
	b.gsoMsgs = 0
	if len(b.msgs) == 0 {
		return nil
	}
	var err error
	b.gsoMsgs, err = b.conn.WriteBatch(b.msgs)
	clear(b.msgs) // let go of the buffers
	b.msgs, b.used = b.msgs[:0], 0
	return err
}
