package tunnel

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
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

// kernelNetwork is the kernel's UDP in a network namespace: the Network of
// a Device whose Options name none.
type kernelNetwork struct {
	netNS string
	log   *slog.Logger
	rt    *routeMTUs
}

func newKernelNetwork(netNS string, log *slog.Logger) *kernelNetwork {
	return &kernelNetwork{netNS: netNS, log: log, rt: newRouteMTUs()}
}

// ListenPacket opens a UDP socket on port in the network's namespace, with
// big buffers, UDP GRO, and Don't Fragment with the kernel's reports about
// sizes (setPathOptions).
func (n *kernelNetwork) ListenPacket(port uint16) (PacketConn, error) {
	var conn *net.UDPConn
	err := inns.Do(n.netNS, func() (err error) {
		conn, err = net.ListenUDP("udp", &net.UDPAddr{Port: int(port)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on UDP port %d: %w", port, err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	enableGRO(conn)
	if err := setPathOptions(conn); err != nil {
		n.log.Warn("no path MTU discovery on the socket: datagrams may be fragmented or lost for size", "err", err)
	}
	c, err := newKernelConn(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (n *kernelNetwork) routeMTU(mark uint32, ep netip.AddrPort) int {
	return n.rt.get(n.netNS, mark, ep)
}

func (n *kernelNetwork) close() { n.rt.close() }

// kernelConn is a UDP socket of the kernel's moving many datagrams per
// system call, with headers, iovecs and addresses made once, so that the
// data path allocates nothing. It sends with sendmmsg, grouping runs of
// equal-sized datagrams to one address into UDP GSO sends (one message,
// the kernel cuts it up), and receives with recvmmsg and UDP GRO (the
// kernel hands over runs of equal-sized datagrams from one source as one
// buffer, with their size).
type kernelConn struct {
	conn *net.UDPConn
	rc   syscall.RawConn
	v4   bool // the socket is AF_INET (no IPv6 in its namespace)
	port uint16
	gso  atomic.Bool // UDP GSO works on this socket (cleared if the kernel refuses it)

	rmu     sync.Mutex // one reader at a time
	r       mmsgState
	senders sync.Pool // *mmsgState, one per concurrent WriteBatch
	errq    errQueue  // what the path says about sizes
}

var (
	_ PacketConn   = (*kernelConn)(nil)
	_ pathReporter = (*kernelConn)(nil)
	_ oneWriter    = (*kernelConn)(nil)
	_ routeMTUer   = (*kernelNetwork)(nil)
)

func newKernelConn(conn *net.UDPConn) (*kernelConn, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &kernelConn{conn: conn, rc: rc}
	la, _ := conn.LocalAddr().(*net.UDPAddr)
	if la != nil {
		c.v4 = la.IP.To4() != nil
		c.port = uint16(la.Port)
	}
	c.gso.Store(true)
	c.r.c = c
	c.r.fn = c.r.recvmmsg
	c.senders.New = func() any {
		s := &mmsgState{c: c}
		s.fn = s.sendmmsg
		return s
	}
	return c, nil
}

func (c *kernelConn) LocalPort() uint16 { return c.port }
func (c *kernelConn) IPv6() bool        { return !c.v4 }
func (c *kernelConn) Close() error      { return c.conn.Close() }

// SetMark sets the socket's fwmark (SO_MARK), which policy routing uses to
// keep the tunnel's own packets out of the tunnel.
func (c *kernelConn) SetMark(mark uint32) error {
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}); err != nil {
		return err
	}
	return serr
}

func (c *kernelConn) drainPathErrors(fn func(pathError)) { c.errq.drain(c.rc, fn) }

// mmsgState is the memory of one recvmmsg or sendmmsg batch.
type mmsgState struct {
	c     *kernelConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	ctrl  [][cmsgSize]byte
	first []int // send: index in msgs of the first datagram of each mmsghdr
	msgs  []Datagram
	one   [1]Datagram // writeOne's

	nh, gsoMsgs int // send: messages (mmsghdrs) built, of which carry several datagrams
	n, done     int
	err         error
	retried     bool // the message at done was tried again after an async error
	gsoBig      bool // the message at done was a GSO send refused (EINVAL) as too big
	fn          func(uintptr) bool
}

func (s *mmsgState) grow(n int) {
	if len(s.hdrs) >= n {
		return
	}
	n = max(n, batchSize)
	s.hdrs = make([]mmsghdr, n)
	s.iovs = make([]unix.Iovec, n)
	s.names = make([]unix.RawSockaddrInet6, n)
	s.ctrl = make([][cmsgSize]byte, n)
	s.first = make([]int, n)
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

// ReadBatch receives with one recvmmsg, blocking in the poller until a
// datagram is there.
func (c *kernelConn) ReadBatch(msgs []Datagram) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	s := &c.r
	s.grow(len(msgs))
	for i := range msgs {
		buf := msgs[i].Buf
		s.iovs[i].Base, s.iovs[i].Len = &buf[0], uint64(len(buf))
		s.hdrs[i].hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i])), Namelen: unix.SizeofSockaddrInet6,
			Iov: &s.iovs[i], Iovlen: 1, Control: &s.ctrl[i][0], Controllen: cmsgSize}
	}
	s.n, s.err, s.nh = 0, nil, len(msgs)
	err := c.rc.Read(s.fn)
	for i := range msgs {
		s.iovs[i].Base = nil
	}
	if err != nil {
		return 0, err
	}
	if s.err != nil {
		return 0, s.err
	}
	for i := range s.n {
		msgs[i].N = int(s.hdrs[i].len)
		msgs[i].Addr = parseSockaddr(&s.names[i])
		msgs[i].Segment = groSize(s.ctrl[i][:s.hdrs[i].hdr.Controllen])
	}
	return s.n, nil
}

func (s *mmsgState) recvmmsg(fd uintptr) bool {
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.nh),
		unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		s.n = int(r)
	case unix.EAGAIN, unix.EINTR:
		return false
	default:
		s.err = errno
	}
	return true
}

// WriteBatch sends msgs with sendmmsg, runs of equal-sized datagrams to
// one address as UDP GSO sends while the kernel takes them. An IPv6
// destination on an IPv4 socket is refused with EAFNOSUPPORT.
func (c *kernelConn) WriteBatch(msgs []Datagram) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if c.v4 {
		for i := range msgs {
			if !msgs[i].Addr.Addr().Unmap().Is4() {
				// Rare (callers check): send around it.
				g1, err1 := c.WriteBatch(msgs[:i])
				g2, err2 := c.WriteBatch(msgs[i+1:])
				if err1 == nil {
					err1 = fmt.Errorf("send to %v on an IPv4 socket: %w", msgs[i].Addr, unix.EAFNOSUPPORT)
				}
				_ = err2
				return g1 + g2, err1
			}
		}
	}
	s := c.senders.Get().(*mmsgState)
	defer c.senders.Put(s)
	return c.writeBatch(s, msgs)
}

// writeOne sends one datagram, allocating nothing (the keepalives,
// handshake messages and probes of the timers and the handshake worker).
func (c *kernelConn) writeOne(msg []byte, to netip.AddrPort) error {
	if c.v4 && !to.Addr().Unmap().Is4() {
		return fmt.Errorf("send to %v on an IPv4 socket: %w", to, unix.EAFNOSUPPORT)
	}
	s := c.senders.Get().(*mmsgState)
	defer c.senders.Put(s)
	s.one[0] = Datagram{Buf: msg, Addr: to}
	_, err := c.writeBatch(s, s.one[:])
	s.one[0] = Datagram{}
	return err
}

// writeBatch is WriteBatch with the memory s.
func (c *kernelConn) writeBatch(s *mmsgState, msgs []Datagram) (int, error) {
	s.grow(len(msgs))
	s.msgs = msgs
	defer func() {
		s.msgs = nil
		for i := range s.iovs {
			s.iovs[i].Base = nil
		}
	}()
	useGSO := c.gso.Load()
	s.build(0, useGSO)
	s.done, s.err, s.retried, s.gsoBig = 0, nil, false, false
	err := c.rc.Write(s.fn)
	if err == nil {
		err = s.err
	}
	if useGSO && (err == unix.EIO || err == unix.ENOPROTOOPT) && s.done == 0 {
		// No UDP GSO here (or not for this route): send them one by one,
		// from now on too.
		c.gso.Store(false)
		s.build(0, false)
		s.done, s.err, s.retried, s.gsoBig = 0, nil, false, false
		if err = c.rc.Write(s.fn); err == nil {
			err = s.err
		}
	}
	gsoMsgs := s.gsoSent()
	first := err // the first refusal (a GSO send refused as too big is none: its datagrams go again)
	for range len(msgs) {
		if !s.gsoBig {
			break
		}
		// A GSO send whose datagrams are bigger than the route's MTU (its
		// interface changed, say): the rest go one by one, and the kernel
		// refuses the big ones with EMSGSIZE, which teaches the path MTU.
		s.build(s.first[s.done], false)
		s.done, s.err, s.retried, s.gsoBig = 0, nil, false, false
		if err = c.rc.Write(s.fn); err == nil {
			err = s.err
		}
		if first == nil {
			first = err
		}
	}
	return gsoMsgs, first
}

// gsoSent counts the messages of several datagrams among those tried.
func (s *mmsgState) gsoSent() int {
	n := 0
	for i := range min(s.done, s.nh) {
		if s.hdrs[i].hdr.Controllen != 0 {
			n++
		}
	}
	return n
}

func parseSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
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

// build lays the queued datagrams from msgs[from] on out as mmsghdrs: with
// gso, each run of datagrams to one address, of one size (the last may be
// shorter), becomes one message of several iovecs with a UDP_SEGMENT
// control message.
func (s *mmsgState) build(from int, gso bool) {
	s.nh, s.gsoMsgs = 0, 0
	for i := from; i < len(s.msgs); {
		j := i + 1
		if gso {
			seg, total := len(s.msgs[i].Buf), len(s.msgs[i].Buf)
			for j < len(s.msgs) && j-i < maxGSOSegments && s.msgs[j].Addr == s.msgs[i].Addr &&
				len(s.msgs[j].Buf) <= seg && total+len(s.msgs[j].Buf) <= maxGSOBytes {
				total += len(s.msgs[j].Buf)
				j++
				if len(s.msgs[j-1].Buf) < seg {
					break // a shorter datagram ends the run
				}
			}
		}
		for k := i; k < j; k++ {
			s.iovs[k].Base, s.iovs[k].Len = &s.msgs[k].Buf[0], uint64(len(s.msgs[k].Buf))
		}
		h := &s.hdrs[s.nh]
		s.first[s.nh] = i
		namelen := s.putSockaddr(&s.names[s.nh], s.msgs[i].Addr)
		h.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[s.nh])), Namelen: namelen,
			Iov: &s.iovs[i], Iovlen: uint64(j - i)}
		if j-i > 1 {
			c := s.ctrl[s.nh][:]
			clear(c)
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			ch.Level, ch.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			binary.NativeEndian.PutUint16(c[unix.CmsgLen(0):], uint16(len(s.msgs[i].Buf)))
			h.hdr.Control, h.hdr.Controllen = &c[0], uint64(unix.CmsgSpace(2))
			s.gsoMsgs++
		}
		s.nh++
		i = j
	}
}

func (s *mmsgState) sendmmsg(fd uintptr) bool {
	for s.done < s.nh {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.done])),
			uintptr(s.nh-s.done), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			s.done += int(r)
			s.retried = false
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			if asyncErr(errno) && !s.retried {
				// Maybe not this message's error but one an ICMP report
				// left on the socket, which this send took in its place:
				// one more try.
				s.retried = true
				continue
			}
			s.retried = false
			gso := s.hdrs[s.done].hdr.Controllen != 0
			if errno == unix.EINVAL && gso {
				// A GSO send refused as too big: not a refusal of its
				// datagrams, which WriteBatch sends again one by one.
				s.gsoBig = true
				return true
			}
			// This message refused (no route, too big, or no GSO): note
			// it, go on.
			if s.err == nil {
				s.err = errno
			}
			if s.done == 0 && (errno == unix.EIO || errno == unix.ENOPROTOOPT) && gso {
				return true // let WriteBatch fall back to plain sends
			}
			s.done++
		}
	}
	return true
}

func (s *mmsgState) putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	if s.c.v4 {
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
