//go:build darwin || freebsd

package tun

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Read reads one packet (or frame) into p and returns its length, without
// the address-family header. It blocks until a packet arrives, the read
// deadline passes, or the device is closed. A packet longer than p is
// truncated.
func (d *Device) Read(p []byte) (int, error) {
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

// Write writes one packet (or frame), adding the address-family header to a
// TUN packet. The kernel takes it whole or not at all: the returned length
// is len(p) or 0. A TUN packet that is neither IPv4 nor IPv6 is refused with
// an error wrapping unix.EAFNOSUPPORT.
func (d *Device) Write(p []byte) (int, error) {
	var bufs [1][]byte
	bufs[0] = p
	n, err := d.WriteBatch(bufs[:], 0)
	var pe *PacketError
	if errors.As(err, &pe) {
		err = &OpError{Op: "write", Name: d.name, Err: pe.Err}
	}
	if n == 0 {
		return 0, err
	}
	return len(p), err
}

// ReadBatch reads up to len(bufs) packets. Packet i is placed at
// bufs[i][offset:] and its length stored in sizes[i]; len(sizes) must be at
// least len(bufs), and offset at most len(bufs[i]). It blocks until at least
// one packet is there, then takes what else is already queued without
// blocking again, and returns the number of packets read.
//
// Bytes before offset are headroom: with an offset of at least 4 on a TUN
// device, the kernel's address-family header is read into the 4 bytes
// before offset, and the packet lands in place without a copy. Headroom is
// always a valid offset.
func (d *Device) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
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

func (d *Device) readBatchLocked(bufs [][]byte, sizes []int, offset int) (int, error) {
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
func (d *Device) readBatchFn(fd uintptr) bool {
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

// WriteBatch writes the packets bufs[i][offset:], in order, and returns how
// many the kernel took. On a TUN device it writes the address-family header
// into the 4 bytes before offset when offset is at least 4 (Headroom is), and
// otherwise copies each packet behind a header in a buffer of its own. A
// packet the kernel refuses on its own (malformed, too big, neither IPv4 nor
// IPv6 on TUN) is dropped and the rest are still written; the error is then
// a *PacketError naming the first refused packet and how many were dropped,
// and the caller may simply carry on. Any other error (the device closed, a
// write deadline) stops the batch.
func (d *Device) WriteBatch(bufs [][]byte, offset int) (int, error) {
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

func (d *Device) writeBatchFn(fd uintptr) bool {
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
func (d *Device) framePacket(buf []byte) ([]byte, error) {
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
func (d *Device) ready(op string) error {
	if d.closed.Load() {
		return &OpError{Op: op, Name: d.name, Err: ErrClosed}
	}
	return nil
}

// mapErr turns an I/O error into the package's documented errors.
func (d *Device) mapErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case d.closed.Load() || errors.Is(err, os.ErrClosed):
		err = ErrClosed
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		err = ErrDeviceRemoved
	}
	return &OpError{Op: op, Name: d.name, Err: err}
}

// SetDeadline sets the read and write deadlines (see SetReadDeadline).
func (d *Device) SetDeadline(t time.Time) error {
	if err := d.SetReadDeadline(t); err != nil {
		return err
	}
	return d.SetWriteDeadline(t)
}

// SetReadDeadline makes reads blocked past t, and reads started after it,
// fail with an error matching os.ErrDeadlineExceeded (and net.Error's
// Timeout). A zero t means no deadline.
func (d *Device) SetReadDeadline(t time.Time) error {
	if err := d.file.SetReadDeadline(t); err != nil {
		return d.mapErr("set read deadline", err)
	}
	return nil
}

// SetWriteDeadline is SetReadDeadline for writes.
func (d *Device) SetWriteDeadline(t time.Time) error {
	if err := d.file.SetWriteDeadline(t); err != nil {
		return d.mapErr("set write deadline", err)
	}
	return nil
}
