//go:build darwin || freebsd || linux

package tun

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pktFile is the I/O of a device that is one descriptor, registered with the
// Go runtime poller, whose packets may carry an address-family header (macOS
// utun, FreeBSD tun): the header is stripped on read and added on write, in
// the caller's headroom when there is room and through a copy otherwise. It
// is what Device is made of on macOS and FreeBSD; it builds on Linux too, so
// that its tests run there over a socket pair.
//
// One goroutine may read while another writes; calls in the same direction
// are serialised.
type pktFile struct {
	name string          // the interface name, for errors
	hdr  int             // afHeaderLen with the address-family header, else 0
	af   afNumbers       // the system's AF_INET and AF_INET6
	file *os.File        // owns the descriptor; registered with the poller
	rc   syscall.RawConn // file's raw connection, for batch I/O

	closed atomic.Bool

	rmu      sync.Mutex // serialises reads, guards the read batch state
	rbufs    [][]byte
	rsizes   []int
	roffset  int
	rn       int
	rerr     error
	rscratch []byte             // header + packet, when the caller leaves no room for the header
	readFunc func(uintptr) bool // d.readBatchFn, bound once to avoid allocating

	wmu       sync.Mutex // serialises writes, guards the write batch state
	wbufs     [][]byte
	woffset   int
	wn        int
	wdropped  int
	wfirst    int
	wfirstErr error
	werr      error
	wscratch  []byte
	writeFunc func(uintptr) bool
}

// newPktFile wraps fd, which it owns on success; on error fd is left open,
// the caller's. path names the file for os.File; hdr is afHeaderLen or 0.
func newPktFile(fd int, path, name string, hdr int) (*pktFile, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, &OpError{Op: "set non-blocking", Name: name, Err: err}
	}
	// A non-blocking descriptor gives a File registered with the poller.
	// SyscallConn fails only on a nil File.
	f := os.NewFile(uintptr(fd), path)
	rc, _ := f.SyscallConn()
	d := &pktFile{
		name: name, hdr: hdr,
		af:   afNumbers{inet: unix.AF_INET, inet6: unix.AF_INET6},
		file: f, rc: rc,
	}
	d.readFunc = d.readBatchFn
	d.writeFunc = d.writeBatchFn
	return d, nil
}

// close closes the descriptor, waking blocked calls; it reports whether this
// call closed it (false: it was closed already).
func (d *pktFile) close() (bool, error) {
	if d.closed.Swap(true) {
		return false, nil
	}
	if err := d.file.Close(); err != nil {
		return true, &OpError{Op: "close", Name: d.name, Err: err}
	}
	return true, nil
}

// read is Device.Read.
func (d *pktFile) read(p []byte) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := d.ready("read"); err != nil {
		return 0, err
	}
	if d.hdr == 0 {
		n, err := d.file.Read(p)
		if err != nil {
			return 0, d.mapErr("read", err)
		}
		return n, nil
	}
	var sizes [1]int
	bufs := [1][]byte{p}
	n, err := d.readBatchLocked(bufs[:], sizes[:], 0)
	return sizes[0] * min(n, 1), err
}

// write is Device.Write.
func (d *pktFile) write(p []byte) (int, error) {
	var bufs [1][]byte
	bufs[0] = p
	n, err := d.writeBatch(bufs[:], 0)
	var pe *PacketError
	if errors.As(err, &pe) {
		err = &OpError{Op: "write", Name: d.name, Err: pe.Err}
	}
	if n == 0 {
		return 0, err
	}
	return len(p), err
}

// readBatch is Device.ReadBatch.
func (d *pktFile) readBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, &OpError{Op: "read batch", Name: d.name, Err: errors.New("len(sizes) < len(bufs)")}
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := d.ready("read"); err != nil {
		return 0, err
	}
	return d.readBatchLocked(bufs, sizes, offset)
}

func (d *pktFile) readBatchLocked(bufs [][]byte, sizes []int, offset int) (int, error) {
	if d.hdr > 0 && offset < d.hdr {
		// No room for the header in front: read through a scratch buffer
		// as long as the largest buffer, and copy.
		need := 0
		for _, b := range bufs {
			need = max(need, len(b)-offset)
		}
		if cap(d.rscratch) < d.hdr+need {
			d.rscratch = make([]byte, d.hdr+need)
		}
	}
	d.rbufs, d.rsizes, d.roffset, d.rn, d.rerr = bufs, sizes, offset, 0, nil
	err := d.rc.Read(d.readFunc)
	n, rerr := d.rn, d.rerr
	d.rbufs, d.rsizes, d.rerr = nil, nil, nil
	if n > 0 {
		return n, nil // an error after some packets shows again on the next call
	}
	if rerr != nil {
		err = rerr
	}
	if err != nil {
		return 0, d.mapErr("read", err)
	}
	return 0, nil
}

// readBatchFn runs inside RawConn.Read: it returns false to wait for the
// descriptor to become readable, true when done.
func (d *pktFile) readBatchFn(fd uintptr) bool {
	for d.rn < len(d.rbufs) {
		buf := d.rbufs[d.rn]
		var dst []byte
		copying := false
		switch {
		case d.hdr == 0:
			dst = buf[d.roffset:]
		case d.roffset >= d.hdr:
			dst = buf[d.roffset-d.hdr:]
		default:
			dst = d.rscratch[:d.hdr+len(buf)-d.roffset]
			copying = true
		}
		n, err := unix.Read(int(fd), dst)
		switch err {
		case nil:
			if n == 0 {
				// The descriptor is readable and has nothing: the
				// device is gone (an empty read again would spin).
				d.rerr = io.EOF
				return true
			}
			if n < d.hdr {
				continue // not a packet: nothing to hand over
			}
			if copying {
				copy(buf[d.roffset:], dst[d.hdr:n])
			}
			d.rsizes[d.rn] = n - d.hdr
			d.rn++
		case unix.EINTR:
		case unix.EAGAIN:
			return d.rn > 0
		default:
			d.rerr = err
			return true
		}
	}
	return true
}

// writeBatch is Device.WriteBatch.
func (d *pktFile) writeBatch(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if err := d.ready("write"); err != nil {
		return 0, err
	}
	d.wbufs, d.woffset, d.wn, d.wdropped, d.wfirst, d.werr = bufs, offset, 0, 0, -1, nil
	err := d.rc.Write(d.writeFunc)
	written := d.wn - d.wdropped
	dropped, first, ferr, werr := d.wdropped, d.wfirst, d.wfirstErr, d.werr
	d.wbufs, d.werr, d.wfirstErr = nil, nil, nil
	if werr != nil {
		err = werr
	}
	if err != nil {
		return written, d.mapErr("write", err)
	}
	if dropped > 0 {
		return written, &PacketError{Index: first, Dropped: dropped, Err: ferr}
	}
	return written, nil
}

func (d *pktFile) writeBatchFn(fd uintptr) bool {
	for d.wn < len(d.wbufs) {
		out, err := d.framePacket(d.wbufs[d.wn])
		if err == nil {
			_, err = unix.Write(int(fd), out)
		}
		switch err {
		case nil:
			d.wn++
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		case unix.EAFNOSUPPORT, unix.EINVAL, unix.EMSGSIZE, unix.EFAULT, unix.ENOMEM, unix.ENOBUFS, unix.EIO:
			// This packet alone is refused: drop it and go on.
			if d.wdropped == 0 {
				d.wfirst, d.wfirstErr = d.wn, err
			}
			d.wdropped++
			d.wn++
		default:
			d.werr = err
			return true
		}
	}
	return true
}

// framePacket returns what to write for buf[d.woffset:]: the packet itself
// on TAP; on TUN, the packet behind its address-family header, placed in the
// headroom or, without room, in front of a copy.
func (d *pktFile) framePacket(buf []byte) ([]byte, error) {
	pkt := buf[d.woffset:]
	if d.hdr == 0 {
		return pkt, nil
	}
	if d.woffset >= d.hdr {
		out := buf[d.woffset-d.hdr:]
		if !d.af.putHeader(out, pkt) {
			return nil, unix.EAFNOSUPPORT
		}
		return out, nil
	}
	if cap(d.wscratch) < d.hdr+len(pkt) {
		d.wscratch = make([]byte, d.hdr+len(pkt))
	}
	out := d.wscratch[:d.hdr+len(pkt)]
	if !d.af.putHeader(out, pkt) {
		return nil, unix.EAFNOSUPPORT
	}
	copy(out[d.hdr:], pkt)
	return out, nil
}

// ready checks the device's state before I/O.
func (d *pktFile) ready(op string) error {
	if d.closed.Load() {
		return &OpError{Op: op, Name: d.name, Err: ErrClosed}
	}
	return nil
}

// mapErr turns an I/O error into the package's documented errors.
func (d *pktFile) mapErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case d.closed.Load() || errors.Is(err, os.ErrClosed):
		err = ErrClosed
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV), errors.Is(err, io.EOF):
		err = ErrDeviceRemoved
	}
	return &OpError{Op: op, Name: d.name, Err: err}
}

// setDeadline is Device.SetDeadline.
func (d *pktFile) setDeadline(t time.Time) error {
	if err := d.setReadDeadline(t); err != nil {
		return err
	}
	return d.setWriteDeadline(t)
}

// setReadDeadline is Device.SetReadDeadline.
func (d *pktFile) setReadDeadline(t time.Time) error {
	if err := d.file.SetReadDeadline(t); err != nil {
		return d.mapErr("set read deadline", err)
	}
	return nil
}

// setWriteDeadline is Device.SetWriteDeadline.
func (d *pktFile) setWriteDeadline(t time.Time) error {
	if err := d.file.SetWriteDeadline(t); err != nil {
		return d.mapErr("set write deadline", err)
	}
	return nil
}
