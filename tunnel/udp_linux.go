package tunnel

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
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

const (
	// maxGSOSegments is the kernel's limit on datagrams per UDP GSO send.
	maxGSOSegments = 64
	// maxGSOBytes bounds the payload of one GSO send (a UDP datagram's
	// length field, less the headers).
	maxGSOBytes = 65000
	// cmsgSize fits one control message carrying an int or a uint16.
	cmsgSize = 24
)

// udpBatch moves many datagrams per system call with buffers, iovecs and
// addresses made once, so the data path allocates nothing. It sends with
// sendmmsg, grouping runs of equal-sized datagrams to one address into UDP
// GSO sends (one message, the kernel cuts it up), and receives with
// recvmmsg and UDP GRO (the kernel hands over runs of equal-sized datagrams
// from one source as one buffer, with their size).
type udpBatch struct {
	rc    syscall.RawConn
	v4    bool         // the socket is AF_INET (no IPv6 in its namespace)
	gso   *atomic.Bool // UDP GSO works on this socket (shared by the device)
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	ctrl  [][cmsgSize]byte

	// receive side
	bufs    [][]byte
	sizes   []int
	segSize []int // GRO segment size of bufs[i] (0: one datagram)
	addrs   []netip.AddrPort

	// send side
	msgs    [][]byte
	to      []netip.AddrPort
	first   []int // index in msgs of the first datagram of each mmsghdr
	nh      int   // messages (mmsghdrs) built for this flush
	gsoMsgs int   // of which carry several datagrams
	arena   []byte
	used    int // bytes of arena handed out since the last flush

	n, done int
	err     error
	retried bool // the message at done was tried again after an async error
	gsoBig  bool // the message at done was a GSO send refused (EINVAL) as too big
	recvFn  func(uintptr) bool
	sendFn  func(uintptr) bool
}

// arenaSize is the scratch space a batch hands out between flushes: the
// fragments of a few dozen frames.
const arenaSize = 256 << 10

// scratch returns n bytes that stay the caller's until the next flush (the
// fragments of a frame are built there), or nil when the batch has no
// room left: flush, then ask again. It also returns nil when the batch is
// full of messages, so that the add of a message built in the space never
// flushes (which would hand the space out again before the message left).
// The space is allocated on first use.
func (b *udpBatch) scratch(n int) []byte {
	if n > arenaSize || len(b.msgs) == len(b.hdrs) {
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

// enableGRO asks the kernel to coalesce received datagrams (Linux 5.0+);
// it reports whether it did.
func enableGRO(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	})
	return ok
}

func newUDPBatch(conn *net.UDPConn, size, bufSize int, gso *atomic.Bool) (*udpBatch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &udpBatch{
		rc:      rc,
		gso:     gso,
		hdrs:    make([]mmsghdr, size),
		iovs:    make([]unix.Iovec, size),
		names:   make([]unix.RawSockaddrInet6, size),
		ctrl:    make([][cmsgSize]byte, size),
		sizes:   make([]int, size),
		segSize: make([]int, size),
		addrs:   make([]netip.AddrPort, size),
		msgs:    make([][]byte, 0, size),
		to:      make([]netip.AddrPort, 0, size),
		first:   make([]int, size),
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

// recv reads up to len(bufs) messages into bufs[i][offset:], blocking in
// the poller until at least one is there. With GRO a message may hold
// several datagrams of segSize[i] bytes each (the last may be shorter).
func (b *udpBatch) recv(offset int) (int, error) {
	for i := range b.hdrs {
		buf := b.bufs[i][offset:]
		b.iovs[i].Base, b.iovs[i].Len = &buf[0], uint64(len(buf))
		b.hdrs[i].hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: unix.SizeofSockaddrInet6,
			Iov: &b.iovs[i], Iovlen: 1, Control: &b.ctrl[i][0], Controllen: cmsgSize}
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
		b.segSize[i] = groSize(b.ctrl[i][:b.hdrs[i].hdr.Controllen])
	}
	return b.n, nil
}

// groSize finds the UDP_GRO control message and returns its segment size.
func groSize(ctrl []byte) int {
	for len(ctrl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(ctrl) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && int(h.Len) >= unix.CmsgLen(2) {
			data := ctrl[unix.CmsgLen(0):h.Len]
			if len(data) >= 4 {
				return int(binary.NativeEndian.Uint32(data))
			}
			return int(binary.NativeEndian.Uint16(data))
		}
		ctrl = ctrl[min(len(ctrl), unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0))):]
	}
	return 0
}

func (b *udpBatch) recvmmsg(fd uintptr) bool {
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
		unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		b.n = int(r)
	case unix.EAGAIN, unix.EINTR:
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

// add queues a datagram for the next flush, flushing first when the batch
// is full. It refuses an IPv6 address on an IPv4-only socket.
func (b *udpBatch) add(msg []byte, to netip.AddrPort) bool {
	if b.v4 && !to.Addr().Unmap().Is4() {
		return false
	}
	if len(b.msgs) == len(b.hdrs) {
		b.flush()
	}
	b.msgs = append(b.msgs, msg)
	b.to = append(b.to, to)
	return true
}

// flush sends the queued datagrams and empties the queue.
func (b *udpBatch) flush() error {
	b.gsoMsgs = 0
	if len(b.msgs) == 0 {
		return nil
	}
	useGSO := b.gso != nil && b.gso.Load()
	b.build(0, useGSO)
	b.done, b.err, b.retried, b.gsoBig = 0, nil, false, false
	err := b.rc.Write(b.sendFn)
	if err == nil {
		err = b.err
	}
	if useGSO && (err == unix.EIO || err == unix.ENOPROTOOPT) && b.done == 0 {
		// No UDP GSO here (or not for this route): send them one by one,
		// from now on too.
		b.gso.Store(false)
		b.build(0, false)
		b.done, b.err, b.retried, b.gsoBig = 0, nil, false, false
		if err = b.rc.Write(b.sendFn); err == nil {
			err = b.err
		}
	}
	for range len(b.msgs) {
		if !b.gsoBig {
			break
		}
		// A GSO send whose datagrams are bigger than the route's MTU (its
		// interface changed, say): the rest go one by one, and the kernel
		// refuses the big ones with EMSGSIZE, which teaches the path MTU.
		b.build(b.first[b.done], false)
		b.done, b.err, b.retried, b.gsoBig = 0, nil, false, false
		if err = b.rc.Write(b.sendFn); err == nil {
			err = b.err
		}
	}
	clear(b.msgs)
	b.msgs, b.to, b.used = b.msgs[:0], b.to[:0], 0
	for i := range b.iovs {
		b.iovs[i].Base = nil
	}
	return err
}

// build lays the queued datagrams from msgs[from] on out as mmsghdrs: with
// gso, each run of datagrams to one address, of one size (the last may be
// shorter), becomes one message of several iovecs with a UDP_SEGMENT
// control message.
func (b *udpBatch) build(from int, gso bool) {
	b.nh, b.gsoMsgs = 0, 0
	for i := from; i < len(b.msgs); {
		j := i + 1
		if gso {
			seg, total := len(b.msgs[i]), len(b.msgs[i])
			for j < len(b.msgs) && j-i < maxGSOSegments && b.to[j] == b.to[i] &&
				len(b.msgs[j]) <= seg && total+len(b.msgs[j]) <= maxGSOBytes {
				total += len(b.msgs[j])
				j++
				if len(b.msgs[j-1]) < seg {
					break // a shorter datagram ends the run
				}
			}
		}
		for k := i; k < j; k++ {
			b.iovs[k].Base, b.iovs[k].Len = &b.msgs[k][0], uint64(len(b.msgs[k]))
		}
		h := &b.hdrs[b.nh]
		b.first[b.nh] = i
		namelen := b.putSockaddr(&b.names[b.nh], b.to[i])
		h.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[b.nh])), Namelen: namelen,
			Iov: &b.iovs[i], Iovlen: uint64(j - i)}
		if j-i > 1 {
			c := b.ctrl[b.nh][:]
			clear(c)
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			ch.Level, ch.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			binary.NativeEndian.PutUint16(c[unix.CmsgLen(0):], uint16(len(b.msgs[i])))
			h.hdr.Control, h.hdr.Controllen = &c[0], uint64(unix.CmsgSpace(2))
			b.gsoMsgs++
		}
		b.nh++
		i = j
	}
}

func (b *udpBatch) sendmmsg(fd uintptr) bool {
	for b.done < b.nh {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.done])),
			uintptr(b.nh-b.done), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.done += int(r)
			b.retried = false
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			if asyncErr(errno) && !b.retried {
				// Maybe not this message's error but one an ICMP report
				// left on the socket, which this send took in its place:
				// one more try.
				b.retried = true
				continue
			}
			b.retried = false
			// This message refused (no route, too big, or no GSO): note
			// it, go on.
			if b.err == nil {
				b.err = errno
			}
			gso := b.hdrs[b.done].hdr.Controllen != 0
			if b.done == 0 && (errno == unix.EIO || errno == unix.ENOPROTOOPT) && gso {
				return true // let flush fall back to plain sends
			}
			if errno == unix.EINVAL && gso {
				b.gsoBig = true
				return true // let flush send the rest one by one
			}
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
