package tunnel

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/protocol"
)

// Every way of running the data path (the readers alone, workers, workers
// and writers) delivers a burst of numbered packets each way complete and
// in order: the pipelines keep each peer's order.
func TestMemPipelinesKeepOrder(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 2, 3, 4, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			t.Parallel()
			w := newMemWorld()
			w.workers = workers
			a, b := w.tunPair(t)
			udpIn(t, a, b, "first")
			expectUDP(t, b, "first")
			burstInOrder(t, a, b, 3000)
			burstInOrder(t, b, a, 3000)
		})
	}
}

// burstInOrder sends n packets of various sizes from a to b as fast as a's
// device takes them, and checks that b's device delivers all of them, in
// the order sent.
func burstInOrder(t *testing.T, a, b *memEnd, n int) {
	t.Helper()
	ctx := testCtx(t)
	src, dst := netip.AddrPortFrom(a.inner, 1000), netip.AddrPortFrom(b.inner, 2000)
	go func() {
		payload := make([]byte, 1300)
		for i := range n {
			binary.BigEndian.PutUint32(payload, uint32(i))
			// Sizes vary, so that batches mix GSO runs and single messages.
			if a.dev.Send(ctx, memnet.UDP(src, dst, payload[:8+(i*97)%1290])) != nil {
				return
			}
		}
	}()
	for i := range n {
		pkt, err := b.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("packet %d of %d never arrived: %v", i, n, err)
		}
		p := memnet.Payload(pkt)
		if len(p) < 4 {
			t.Fatalf("packet %d: payload %q", i, p)
		}
		if got := binary.BigEndian.Uint32(p); got != uint32(i) {
			t.Fatalf("packet %d arrived as number %d: out of order or lost", i, got)
		}
	}
	if d := b.dev.Dropped.Load(); d != 0 {
		t.Errorf("%d packets dropped at b's device", d)
	}
}

// The chunks of a batch cover its messages once each, whatever the number
// of workers and messages.
func TestDispatchCoversEveryMessage(t *testing.T) {
	for _, workers := range []int{2, 3, 4, 7, 16} {
		for n := 1; n <= 200; n++ {
			d := &Device{workers: workers, work: make(chan workItem, 64), closed: make(chan struct{})}
			s := &countSlot{seen: make([]int, n)}
			s.init()
			if !d.dispatch(s, &s.chunks, n) {
				t.Fatal("dispatch failed on an open device")
			}
			for len(d.work) > 0 {
				it := <-d.work
				it.slot.work(it.lo, it.hi)
				it.slot.chunkDone()
			}
			if !s.wait(d.closed) {
				t.Fatal("wait failed on an open device")
			}
			for i, c := range s.seen {
				if c != 1 {
					t.Fatalf("workers %d, %d messages: message %d worked on %d times", workers, n, i, c)
				}
			}
			if want := min(workers, (n+minChunk-1)/minChunk); s.chunks.n != max(want, 1) {
				t.Errorf("workers %d, %d messages: %d chunks, want %d", workers, n, s.chunks.n, max(want, 1))
			}
		}
	}
}

type countSlot struct {
	chunks
	seen []int
}

func (s *countSlot) work(lo, hi int) {
	for i := lo; i < hi; i++ {
		s.seen[i]++
	}
}

// Options.Workers 0: none below 4 CPUs, one per CPU from 4.
func TestDefaultWorkers(t *testing.T) {
	for procs, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 4, 16: 16} {
		if got := defaultWorkers(procs); got != want {
			t.Errorf("defaultWorkers(%d) = %d, want %d", procs, got, want)
		}
	}
}

// The TAP data path keeps order too: frames between a hub's tap and a
// spoke, both ways, through every way of running the data path.
func TestMemTapPipelinesKeepOrder(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			t.Parallel()
			w := newMemWorld()
			w.workers = workers
			own, spoke := macOf(0xaa), macOf(2)
			hub, s := w.hub(t, own, 1)
			sendFrame(t, s[0], own, spoke, "learn me")
			expectFrame(t, hub, "learn me")
			framesInOrder(t, s[0], hub, own, spoke, 2000)
			framesInOrder(t, hub, s[0], spoke, own, 2000)
		})
	}
}

// framesInOrder sends n numbered frames from src to dst from a's host and
// checks that b's host gets them all, in order.
func framesInOrder(t *testing.T, a, b *memEnd, dst, src [6]byte, n int) {
	t.Helper()
	ctx := testCtx(t)
	go func() {
		payload := make([]byte, 1400)
		for i := range n {
			binary.BigEndian.PutUint32(payload, uint32(i))
			if a.dev.Send(ctx, memnet.Frame(dst, src, 0x88b5, payload[:46+(i*89)%1350])) != nil {
				return
			}
		}
	}()
	for i := range n {
		f, err := b.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("frame %d of %d never arrived: %v", i, n, err)
		}
		if len(f) < 18 {
			t.Fatalf("frame %d: %x", i, f)
		}
		if got := binary.BigEndian.Uint32(f[14:]); got != uint32(i) {
			t.Fatalf("frame %d arrived as number %d: out of order or lost", i, got)
		}
	}
}

// BenchmarkSealStage is one direction's crypto stage: a batch of 64
// packets of 1420 bytes (one TUN read's worth), their counters taken in
// order, then sealed by the reader and the workers (Workers = GOMAXPROCS,
// so -cpu 1,2,4 compares the reader alone with the reader and workers),
// waited for as the writer does. MB/s is plaintext sealed; compare it
// with protocol's BenchmarkSealTransport/1400 for one core's ceiling.
func BenchmarkSealStage(b *testing.B) {
	const batch, size = 64, 1420
	w := newMemWorld()
	w.workers = 1
	x, y := w.tunPair(b)
	udpIn(b, x, y, "handshake")
	expectUDP(b, y, "handshake")
	p := x.peer(y)
	p.mu.Lock()
	kp := p.current
	p.mu.Unlock()

	d := &Device{workers: runtime.GOMAXPROCS(0), closed: make(chan struct{})}
	if d.parallel() {
		d.work = make(chan workItem, 4*pipeSlots*d.workers)
		d.wg.Add(d.workers - 1)
		for range d.workers - 1 {
			go d.worker()
		}
	}
	b.Cleanup(func() { close(d.closed); d.wg.Wait() })
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, protocol.TransportOverhead+protocol.PaddedLen(size, size))
	}
	s := &txSlot{sb: &udpBatch{jobs: make([]sealJob, 0, batch)}}
	s.init()
	b.SetBytes(batch * size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N { // not b.Loop: its first run, at the default GOMAXPROCS, is reported as -cpu's first
		s.sb.jobs = s.sb.jobs[:0]
		for _, buf := range bufs {
			j := sealJob{kp: kp, buf: buf, n: size, pad: size, typ: protocol.TypeTransport}
			if _, ok := j.prepare(); !ok {
				b.Fatal("prepare failed")
			}
			s.sb.jobs = append(s.sb.jobs, j)
		}
		d.dispatch(s, &s.chunks, batch)
		if !s.wait(d.closed) {
			b.Fatal("closed")
		}
	}
}

// A pipeline's batch that needs more scratch space than one arena makes
// more once and reuses them after each flush: nothing allocated per batch
// in the steady state.
func TestElasticArenasReused(t *testing.T) {
	var conn sinkConn
	b := newUDPBatch(&conn, batchSize, 0)
	b.elastic = true
	to := netip.MustParseAddrPort("192.0.2.2:51820")
	batch := func() {
		for range 3 * arenaSize / 4096 { // three arenas' worth
			buf := b.scratch(4096)
			if buf == nil {
				t.Fatal("an elastic batch refused scratch space")
			}
			b.add(buf[:64], to)
		}
		b.flush()
	}
	batch() // the arenas and the grown queue are made here
	if n := testing.AllocsPerRun(20, batch); n != 0 {
		t.Errorf("%v allocations per batch once the arenas exist", n)
	}
	// Sent: the first batch, AllocsPerRun's warm-up and its 20.
	if len(b.arenas) != 3 || conn.sent != 22*3*arenaSize/4096 {
		t.Errorf("%d arenas for three arenas' worth, %d datagrams sent", len(b.arenas), conn.sent)
	}
}

// sinkConn counts what is written to it.
type sinkConn struct{ sent int }

func (c *sinkConn) LocalPort() uint16                       { return 51820 }
func (c *sinkConn) IPv6() bool                              { return false }
func (c *sinkConn) ReadBatch(msgs []Datagram) (int, error)  { return 0, nil }
func (c *sinkConn) WriteBatch(msgs []Datagram) (int, error) { c.sent += len(msgs); return 0, nil }
func (c *sinkConn) SetMark(mark uint32) error               { return nil }
func (c *sinkConn) Close() error                            { return nil }
