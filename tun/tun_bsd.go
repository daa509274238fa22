//go:build darwin || freebsd

package tun

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device is an open TUN or TAP device: one descriptor, registered with the Go
// runtime poller.
//
// On macOS and FreeBSD a device has exactly one queue. Reads return plain IP
// packets (TUN) or Ethernet frames (TAP), without the 4-byte address-family
// header the kernel puts in front of TUN packets; writes take the same and
// add the header. One goroutine may read while another writes; calls in the
// same direction are serialised. Methods other than I/O are safe for
// concurrent use.
type Device struct {
	name    string
	mode    Mode
	io      *pktFile
	onClose func() error // run once after the descriptor is closed, or nil
}

// newDevice wraps fd, which it owns on success; on error fd is left open,
// the caller's. path names the file for os.File; onClose, if not nil, runs
// once when the device is closed.
func newDevice(fd int, path, name string, mode Mode, onClose func() error) (*Device, error) {
	hdr := 0
	if mode == ModeTUN {
		hdr = afHeaderLen
	}
	io, err := newPktFile(fd, path, name, hdr)
	if err != nil {
		return nil, err
	}
	return &Device{name: name, mode: mode, io: io, onClose: onClose}, nil
}

// checkBSD checks cfg before anything is created: malformed values, the
// Linux-only options, and the name's length.
func checkBSD(cfg *Config) error {
	if err := checkNonLinux(cfg, runtime.GOOS); err != nil {
		return err
	}
	return checkBSDName(cfg.Name)
}

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// Mode returns whether the device is TUN or TAP.
func (d *Device) Mode() Mode { return d.mode }

// PacketInfo reports whether packets carry Linux's packet information
// header: never on this system.
func (d *Device) PacketInfo() bool { return false }

// MultiQueue reports whether the device is multi-queue: never on this system.
func (d *Device) MultiQueue() bool { return false }

// BatchSize is the number of buffers ReadBatch can fill in one call, and a
// good size for WriteBatch.
func (d *Device) BatchSize() int { return DefaultBatchSize }

// MTU returns the interface MTU.
func (d *Device) MTU() (int, error) {
	var ifr ifreq
	if err := ifIoctl(d.name, unix.SIOCGIFMTU, &ifr); err != nil {
		return 0, opErr("get MTU of", d.name, err)
	}
	return int(int32(binary.NativeEndian.Uint32(ifr.data[:]))), nil
}

// SetMTU sets the interface MTU.
func (d *Device) SetMTU(mtu int) error {
	var ifr ifreq
	binary.NativeEndian.PutUint32(ifr.data[:], uint32(int32(mtu)))
	if err := ifIoctl(d.name, unix.SIOCSIFMTU, &ifr); err != nil {
		e := opErr("set MTU of", d.name, err).(*OpError)
		if errors.Is(err, unix.EINVAL) {
			e.Hint = "the MTU is out of the interface's range"
		}
		return e
	}
	return nil
}

// Index returns the interface index.
func (d *Device) Index() (int, error) {
	ifi, err := net.InterfaceByName(d.name)
	if err != nil {
		return 0, &OpError{Op: "get index of", Name: d.name, Err: err}
	}
	return ifi.Index, nil
}

// HardwareAddr returns the MAC address of a TAP device. A TUN device has
// none: that is an error.
func (d *Device) HardwareAddr() (net.HardwareAddr, error) {
	if d.mode != ModeTAP {
		return nil, &OpError{Op: "get MAC address", Name: d.name, Err: unix.EINVAL, Hint: "only TAP devices have a MAC address"}
	}
	ifi, err := net.InterfaceByName(d.name)
	if err != nil {
		return nil, &OpError{Op: "get MAC address", Name: d.name, Err: err}
	}
	return ifi.HardwareAddr, nil
}

// SetHardwareAddr sets the MAC address of a TAP device (SIOCSIFLLADDR).
func (d *Device) SetHardwareAddr(mac net.HardwareAddr) error {
	if d.mode != ModeTAP {
		return &OpError{Op: "set MAC address", Name: d.name, Err: unix.EINVAL, Hint: "only TAP devices have a MAC address"}
	}
	if len(mac) != 6 {
		return &OpError{Op: "set MAC address", Name: d.name, Err: unix.EINVAL, Hint: "a MAC address has 6 bytes"}
	}
	// ifr_addr: a struct sockaddr whose sa_len is the address length and
	// whose sa_data is the address.
	var ifr ifreq
	ifr.data[0] = byte(len(mac))
	ifr.data[1] = unix.AF_LINK
	copy(ifr.data[2:], mac)
	if err := ifIoctl(d.name, unix.SIOCSIFLLADDR, &ifr); err != nil {
		return opErr("set MAC address", d.name, err)
	}
	return nil
}

// SetPersist(true) is a *NotSupportedError: a device lasts as long as its
// descriptor on this system. SetPersist(false) asks for what already holds
// and returns nil.
func (d *Device) SetPersist(on bool) error {
	if on {
		return &NotSupportedError{Feature: "persistent devices (a device lasts as long as its descriptor)", OS: runtime.GOOS}
	}
	return nil
}

// SetCarrier(false) is a *NotSupportedError: the carrier is up while the
// device is open, and this system cannot drop it. SetCarrier(true) asks for
// what already holds and returns nil.
func (d *Device) SetCarrier(on bool) error {
	if !on {
		return &NotSupportedError{Feature: "dropping the carrier", OS: runtime.GOOS}
	}
	return nil
}

// Close closes the device's descriptor, and on FreeBSD destroys the
// interface if Open created it. Blocked reads and writes return ErrClosed.
// Close is idempotent.
func (d *Device) Close() error {
	first, err := d.io.close()
	if !first {
		return nil
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if d.onClose != nil {
		if err := d.onClose(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Read reads one packet (or frame) into p and returns its length: a plain
// IP packet on TUN, without the kernel's address-family header. It blocks
// until a packet arrives, the read deadline passes, or the device is closed.
// A packet longer than p is truncated.
func (d *Device) Read(p []byte) (int, error) { return d.io.read(p) }

// Write writes one packet (or frame), adding the address-family header to a
// TUN packet. The kernel takes it whole or not at all: the returned length
// is len(p) or 0. A TUN packet that is neither IPv4 nor IPv6 is refused with
// an error wrapping unix.EAFNOSUPPORT.
func (d *Device) Write(p []byte) (int, error) { return d.io.write(p) }

// ReadBatch reads up to len(bufs) packets. Packet i is placed at
// bufs[i][offset:] and its length stored in sizes[i]; len(sizes) must be at
// least len(bufs), and offset at most len(bufs[i]). It blocks until at least
// one packet is there, then takes what else is already queued without
// blocking again, and returns the number of packets read.
//
// Bytes before offset are headroom: with an offset of at least 4 on a TUN
// device, the kernel's address-family header is read into the 4 bytes
// before offset, and the packet lands in place without a copy (with less,
// through a copy). Headroom is always a valid offset.
func (d *Device) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.io.readBatch(bufs, sizes, offset)
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
	return d.io.writeBatch(bufs, offset)
}

// SetDeadline sets the read and write deadlines (see SetReadDeadline).
func (d *Device) SetDeadline(t time.Time) error { return d.io.setDeadline(t) }

// SetReadDeadline makes reads blocked past t, and reads started after it,
// fail with an error matching os.ErrDeadlineExceeded (and net.Error's
// Timeout). A zero t means no deadline.
func (d *Device) SetReadDeadline(t time.Time) error { return d.io.setReadDeadline(t) }

// SetWriteDeadline is SetReadDeadline for writes.
func (d *Device) SetWriteDeadline(t time.Time) error { return d.io.setWriteDeadline(t) }

// ifreq is struct ifreq on macOS and FreeBSD (64-bit): the name, then a
// 16-byte union (a struct sockaddr, an int, or a pointer).
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data [16]byte
}

// ifreqPtr is struct ifreq with a pointer in its union (ifr_data), for the
// ioctls that take one; the pointer field keeps the pointee alive and in
// place for the garbage collector.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16 - unsafe.Sizeof(uintptr(0))]byte
}

// ifIoctl issues an interface ioctl for name on a throw-away datagram
// socket, as ifconfig does.
func ifIoctl(name string, req uint, ifr *ifreq) error {
	copy(ifr.name[:], name)
	return sockIoctl(req, unsafe.Pointer(ifr))
}

// sockIoctl issues ioctl req with arg on a throw-away AF_INET datagram
// socket.
func sockIoctl(req uint, arg unsafe.Pointer) error {
	s, err := socketCloexec(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	return ioctl(s, req, arg)
}

// ioctl issues ioctl(fd, req, arg).
func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// socketCloexec makes a socket that is not inherited across exec (macOS has
// no SOCK_CLOEXEC, so the fork lock covers the gap, as in package net).
func socketCloexec(family, typ, proto int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(family, typ, proto)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// opErr wraps a kernel error with a hint for the usual causes.
func opErr(op, name string, err error) error {
	e := &OpError{Op: op, Name: name, Err: err}
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		e.Hint = "needs root"
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		e.Hint = "the name is in use by another interface; pick another name"
	case errors.Is(err, unix.ENXIO):
		e.Err = ErrDeviceRemoved
	}
	return e
}

// TrustChecksums is Linux's, where written packets can be coalesced; here
// nothing is, and it changes nothing.
func (d *Device) TrustChecksums(on bool) {}
