package tun

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Queue is one descriptor of a device. A single-queue device has one; a
// multi-queue device has one per queue, and the kernel spreads flows across
// them (by the hash of each flow, so a flow stays on one queue).
//
// One goroutine may read and another write a queue at the same time; calls in
// the same direction are serialised.
type Queue struct {
	dev   *Device
	index int
	fd    int
	file  *os.File        // owns fd; registered with the runtime poller
	rc    syscall.RawConn // file's raw connection, for batch I/O

	closed   atomic.Bool
	detached atomic.Bool
	readDL   atomic.Int64 // the caller's read deadline (UnixNano, 0 = none)

	rmu      sync.Mutex // serialises reads, guards the read batch state
	rbufs    [][]byte
	rsizes   []int
	roffset  int
	rn       int
	rerr     error
	readFunc func(uintptr) bool // q.readBatchFn, bound once to avoid allocating

	wmu       sync.Mutex // serialises writes, guards the write batch state
	wbufs     [][]byte
	woffset   int
	wn        int
	wdropped  int
	wfirst    int
	wfirstErr error
	werr      error
	wsegs     int // packets written, counting each segment of a super-packet

	vnet      *vnetState // non-nil when the descriptor has a virtio-net header
	writeFunc func(uintptr) bool
}

func newQueue(d *Device, fd, index int) (*Queue, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, &OpError{Op: "set non-blocking", Name: d.name, Err: err}
	}
	// A non-blocking descriptor gives a File registered with the poller.
	f := os.NewFile(uintptr(fd), cloneDevice)
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, &OpError{Op: "register", Name: d.name, Err: err}
	}
	q := &Queue{dev: d, index: index, fd: fd, file: f, rc: rc}
	q.readFunc = q.readBatchFn
	q.writeFunc = q.writeBatchFn
	if d.flags&unix.IFF_VNET_HDR != 0 {
		q.vnet = newVnetState(q, d.l2Len(), d.off.Offloads)
		q.readFunc = q.readVnetFn
		q.writeFunc = q.writeVnetFn
	}
	return q, nil
}

// Device returns the device the queue belongs to.
func (q *Queue) Device() *Device { return q.dev }

// Read reads one packet (or frame) into p and returns its length. It blocks
// until a packet arrives, the read deadline passes, or the queue is closed.
func (q *Queue) Read(p []byte) (int, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if err := q.ready("read"); err != nil {
		return 0, err
	}
	if q.vnet != nil {
		v := q.vnet
		v.one[0] = p
		n, err := q.readBatchLocked(v.one[:], v.oneSize[:], 0)
		v.one[0] = nil
		return v.oneSize[0] * min(n, 1), err
	}
	n, err := q.file.Read(p)
	if err != nil {
		return 0, q.mapErr("read", err)
	}
	return n, nil
}

// Write writes one packet (or frame). The kernel takes it whole or not at
// all: the returned length is len(p) or 0.
func (q *Queue) Write(p []byte) (int, error) {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if err := q.ready("write"); err != nil {
		return 0, err
	}
	if q.vnet != nil {
		if err := q.writev(q.vnet.zero[:], p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n, err := q.file.Write(p)
	if err != nil {
		return n, q.mapErr("write", err)
	}
	return n, nil
}

// ReadBatch reads up to len(bufs) packets. Packet i is placed at
// bufs[i][offset:] and its length stored in sizes[i]; len(sizes) must be at
// least len(bufs), and offset at most len(bufs[i]). It blocks until at least
// one packet is there, then takes what else is already queued without
// blocking again, and returns the number of packets read.
//
// Bytes before offset are headroom the caller may use to prepend headers;
// Headroom is always a valid offset.
func (q *Queue) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, &OpError{Op: "read batch", Name: q.dev.name, Err: errors.New("len(sizes) < len(bufs)")}
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if err := q.ready("read"); err != nil {
		return 0, err
	}
	return q.readBatchLocked(bufs, sizes, offset)
}

func (q *Queue) readBatchLocked(bufs [][]byte, sizes []int, offset int) (int, error) {
	if q.vnet != nil {
		// Segments left over from the last super-packet come first.
		if n := q.vnet.rspill.drain(bufs, sizes, offset); n > 0 {
			return n, nil
		}
	}
	q.rbufs, q.rsizes, q.roffset, q.rn, q.rerr = bufs, sizes, offset, 0, nil
	err := q.rc.Read(q.readFunc)
	n, rerr := q.rn, q.rerr
	q.rbufs, q.rsizes, q.rerr = nil, nil, nil
	if n > 0 {
		return n, nil // an error after some packets shows again on the next call
	}
	if rerr != nil {
		err = rerr
	}
	if err != nil {
		return 0, q.mapErr("read", err)
	}
	return 0, nil
}

// readBatchFn runs inside RawConn.Read: it returns false to wait for the
// descriptor to become readable, true when done.
func (q *Queue) readBatchFn(fd uintptr) bool {
	for q.rn < len(q.rbufs) {
		n, err := unix.Read(int(fd), q.rbufs[q.rn][q.roffset:])
		switch err {
		case nil:
			q.rsizes[q.rn] = n
			q.rn++
		case unix.EINTR:
		case unix.EAGAIN:
			return q.rn > 0
		default:
			q.rerr = err
			return true
		}
	}
	return true
}

// WriteBatch writes the packets bufs[i][offset:], in order, and returns how
// many the kernel took. With offloads (see Device.Offloads), WriteBatch may
// merge consecutive segments of a flow into the buffer of the first one,
// which it then extends (bufs[i] = bufs[i][:longer], within cap), and it
// writes the device's header into the headroom before offset: after the
// call, the contents of the buffers are undefined. A packet the kernel refuses on its own (malformed,
// too big for the device) is dropped and the rest are still written; the
// error is then a *PacketError naming the first refused packet and how many
// were dropped, and the caller may simply carry on. Any other error (the
// queue closed, the device removed, a write deadline) stops the batch.
// Bytes before offset are not written; the device may use them for its own
// header.
func (q *Queue) WriteBatch(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if err := q.ready("write"); err != nil {
		return 0, err
	}
	if q.vnet != nil {
		return q.writeVnetBatch(bufs, offset)
	}
	q.wbufs, q.woffset, q.wn, q.wdropped, q.wfirst, q.werr = bufs, offset, 0, 0, -1, nil
	err := q.rc.Write(q.writeFunc)
	written := q.wn - q.wdropped
	dropped, first, ferr, werr := q.wdropped, q.wfirst, q.wfirstErr, q.werr
	q.wbufs, q.werr, q.wfirstErr = nil, nil, nil
	if werr != nil {
		err = werr
	}
	if err != nil {
		return written, q.mapErr("write", err)
	}
	if dropped > 0 {
		return written, &PacketError{Index: first, Dropped: dropped, Err: ferr}
	}
	return written, nil
}

func (q *Queue) writeBatchFn(fd uintptr) bool {
	for q.wn < len(q.wbufs) {
		_, err := unix.Write(int(fd), q.wbufs[q.wn][q.woffset:])
		switch err {
		case nil:
			q.wn++
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		case unix.EINVAL, unix.EMSGSIZE, unix.EFAULT, unix.ENOMEM, unix.ENOBUFS, unix.EIO:
			// This packet alone is refused: drop it and go on.
			if q.wdropped == 0 {
				q.wfirst, q.wfirstErr = q.wn, err
			}
			q.wdropped++
			q.wn++
		default:
			q.werr = err
			return true
		}
	}
	return true
}

// ready checks the queue's state before I/O.
func (q *Queue) ready(op string) error {
	if q.closed.Load() {
		return &OpError{Op: op, Name: q.dev.name, Err: ErrClosed}
	}
	if q.detached.Load() {
		return &OpError{Op: op, Name: q.dev.name, Err: ErrDetached}
	}
	return nil
}

// mapErr turns an I/O error into the package's documented errors.
func (q *Queue) mapErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case q.closed.Load() || errors.Is(err, os.ErrClosed):
		err = ErrClosed
	case q.detached.Load():
		err = ErrDetached
	case errors.Is(err, unix.EBADFD):
		err = ErrDeviceRemoved
	}
	return &OpError{Op: op, Name: q.dev.name, Err: err}
}

// SetDeadline sets the read and write deadlines (see SetReadDeadline).
func (q *Queue) SetDeadline(t time.Time) error {
	if err := q.SetReadDeadline(t); err != nil {
		return err
	}
	return q.SetWriteDeadline(t)
}

// SetReadDeadline makes reads blocked past t, and reads started after it,
// fail with an error matching os.ErrDeadlineExceeded (and net.Error's
// Timeout). A zero t means no deadline.
func (q *Queue) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		q.readDL.Store(0)
	} else {
		q.readDL.Store(t.UnixNano())
	}
	if err := q.file.SetReadDeadline(t); err != nil {
		return q.mapErr("set read deadline", err)
	}
	return nil
}

// SetWriteDeadline is SetReadDeadline for writes.
func (q *Queue) SetWriteDeadline(t time.Time) error {
	if err := q.file.SetWriteDeadline(t); err != nil {
		return q.mapErr("set write deadline", err)
	}
	return nil
}

// Detach takes the queue out of the device's rotation (TUNSETQUEUE with
// IFF_DETACH_QUEUE): the kernel sends it no packets, and reads and writes on
// it fail with ErrDetached, including a read blocked at the time, until
// Attach. The descriptor stays open. Only multi-queue devices can detach.
func (q *Queue) Detach() error {
	if err := q.setQueue("detach queue of", unix.IFF_DETACH_QUEUE); err != nil {
		return err
	}
	q.detached.Store(true)
	// Wake a blocked reader so it sees the detached state.
	_ = q.file.SetReadDeadline(time.Unix(1, 0))
	return nil
}

// Attach puts a detached queue back into the device's rotation.
func (q *Queue) Attach() error {
	if err := q.setQueue("attach queue to", unix.IFF_ATTACH_QUEUE); err != nil {
		return err
	}
	var dl time.Time
	if ns := q.readDL.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	_ = q.file.SetReadDeadline(dl)
	q.detached.Store(false)
	return nil
}

// Detached reports whether the queue is detached.
func (q *Queue) Detached() bool { return q.detached.Load() }

func (q *Queue) setQueue(op string, flag uint16) error {
	return q.control(op, func(fd int) error {
		ifr, err := unix.NewIfreq("")
		if err != nil {
			return err
		}
		ifr.SetUint16(flag)
		return unix.IoctlIfreq(fd, unix.TUNSETQUEUE, ifr)
	})
}

// control runs fn with the queue's descriptor, which stays open meanwhile.
func (q *Queue) control(op string, fn func(fd int) error) error {
	if q.closed.Load() {
		return &OpError{Op: op, Name: q.dev.name, Err: ErrClosed}
	}
	var ferr error
	if err := q.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return q.mapErr(op, err)
	}
	if ferr != nil {
		return opErr(op, q.dev.name, ferr)
	}
	return nil
}

// SyscallConn gives raw access to the queue's descriptor, for ioctls this
// package does not wrap (filters, steering programs).
func (q *Queue) SyscallConn() (syscall.RawConn, error) { return q.rc, nil }

// Close closes the queue's descriptor. Blocked reads and writes on it return
// ErrClosed. On a multi-queue device the other queues carry on; closing the
// last queue of a device that is not persistent removes the device.
func (q *Queue) Close() error {
	err := q.close()
	q.dev.removeQueue(q)
	return err
}

func (q *Queue) close() error {
	if q.closed.Swap(true) {
		return nil
	}
	if err := q.file.Close(); err != nil {
		return &OpError{Op: "close", Name: q.dev.name, Err: err}
	}
	return nil
}

// Read reads one packet from the device's first queue (see Queue.Read).
func (d *Device) Read(p []byte) (int, error) { return d.first.Read(p) }

// Write writes one packet to the device's first queue (see Queue.Write).
func (d *Device) Write(p []byte) (int, error) { return d.first.Write(p) }

// ReadBatch reads packets from the device's first queue (see Queue.ReadBatch).
func (d *Device) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.first.ReadBatch(bufs, sizes, offset)
}

// WriteBatch writes packets to the device's first queue (see Queue.WriteBatch).
func (d *Device) WriteBatch(bufs [][]byte, offset int) (int, error) {
	return d.first.WriteBatch(bufs, offset)
}

// SetDeadline sets the first queue's deadlines (see Queue.SetDeadline).
func (d *Device) SetDeadline(t time.Time) error { return d.first.SetDeadline(t) }

// SetReadDeadline sets the first queue's read deadline.
func (d *Device) SetReadDeadline(t time.Time) error { return d.first.SetReadDeadline(t) }

// SetWriteDeadline sets the first queue's write deadline.
func (d *Device) SetWriteDeadline(t time.Time) error { return d.first.SetWriteDeadline(t) }
