package tunnel

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is the kernel's struct mmsghdr, for recvmmsg and sendmmsg.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// udpBatch moves many datagrams per system call (recvmmsg/sendmmsg) with
// buffers, iovecs and addresses made once, so the data path allocates
// nothing.
type udpBatch struct {
	rc    syscall.RawConn
	v4    bool // the socket is AF_INET (no IPv6 in its namespace)
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6

	// receive side
	bufs  [][]byte
	sizes []int
	addrs []netip.AddrPort

	// send side
	msgs [][]byte
	to   []netip.AddrPort

	n, done int
	err     error
	recvFn  func(uintptr) bool
	sendFn  func(uintptr) bool
}

func newUDPBatch(conn *net.UDPConn, size, bufSize int) (*udpBatch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &udpBatch{
		rc:    rc,
		hdrs:  make([]mmsghdr, size),
		iovs:  make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size),
		sizes: make([]int, size),
		addrs: make([]netip.AddrPort, size),
		msgs:  make([][]byte, 0, size),
		to:    make([]netip.AddrPort, 0, size),
	}
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		b.v4 = true
	}
	if bufSize > 0 {
		b.bufs = make([][]byte, size)
		for i := range b.bufs {
			b.bufs[i] = make([]byte, bufSize)
		}
	}
	b.recvFn, b.sendFn = b.recvmmsg, b.sendmmsg
	return b, nil
}

// recv reads up to len(bufs) datagrams into bufs[i][offset:], blocking in
// the poller until at least one is there.
func (b *udpBatch) recv(offset int) (int, error) {
	for i := range b.hdrs {
		buf := b.bufs[i][offset:]
		b.iovs[i].Base, b.iovs[i].Len = &buf[0], uint64(len(buf))
		b.hdrs[i].hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: unix.SizeofSockaddrInet6,
			Iov: &b.iovs[i], Iovlen: 1}
	}
	b.n, b.err = 0, nil
	if err := b.rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.err != nil {
		return 0, b.err
	}
	for i := range b.n {
		b.sizes[i] = int(b.hdrs[i].len)
		b.addrs[i] = parseSockaddr(&b.names[i])
	}
	return b.n, nil
}

func (b *udpBatch) recvmmsg(fd uintptr) bool {
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
		unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		b.n = int(r)
	case unix.EAGAIN:
		return false
	case unix.EINTR:
		return false
	default:
		b.err = errno
	}
	return true
}

func parseSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
}

// add queues a datagram for the next flush.
func (b *udpBatch) add(msg []byte, to netip.AddrPort) {
	b.msgs = append(b.msgs, msg)
	b.to = append(b.to, to)
}

// flush sends the queued datagrams with sendmmsg and empties the queue. It
// returns how many were sent.
func (b *udpBatch) flush() (int, error) {
	n := len(b.msgs)
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		msg := b.msgs[i]
		b.iovs[i].Base, b.iovs[i].Len = &msg[0], uint64(len(msg))
		namelen := b.putSockaddr(&b.names[i], b.to[i])
		b.hdrs[i].hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: namelen,
			Iov: &b.iovs[i], Iovlen: 1}
	}
	b.done, b.err = 0, nil
	err := b.rc.Write(b.sendFn)
	if err == nil {
		err = b.err
	}
	sent := b.done
	clear(b.msgs)
	b.msgs, b.to = b.msgs[:0], b.to[:0]
	for i := range n {
		b.iovs[i].Base = nil
	}
	return sent, err
}

func (b *udpBatch) sendmmsg(fd uintptr) bool {
	for b.done < len(b.msgs) {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.done])),
			uintptr(len(b.msgs)-b.done), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.done += int(r)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			// One datagram refused (no route, say): skip it, send the rest.
			b.err = errno
			b.done++
		}
	}
	return true
}

func (b *udpBatch) putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	if b.v4 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], ap.Port())
		return unix.SizeofSockaddrInet4
	}
	// As16 maps IPv4 addresses into IPv6, as a dual-stack socket wants.
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	return unix.SizeofSockaddrInet6
}
