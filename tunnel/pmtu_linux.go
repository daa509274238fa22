package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// setPathOptions makes the tunnel's socket send every datagram with Don't
// Fragment and report what the path says about sizes:
//
//   - IP_PMTUDISC_PROBE and IPV6_PMTUDISC_PROBE with IPV6_DONTFRAG: never
//     fragment, on IPv4 and IPv6 (a dual-stack socket carries IPv4 too),
//     and send up to the interface's MTU whatever the kernel's path MTU
//     cache holds, so that the engine's own probes can find a path that
//     grew again. Fragments of the outer UDP are what firewalls and NATs
//     drop; a datagram too big for the path is refused whole instead, and
//     said so.
//   - IP_RECVERR and IPV6_RECVERR: ICMP "fragmentation needed" and "packet
//     too big", and local EMSGSIZE refusals, queue an error with the MTU
//     and the destination, which drainErrors reads.
//
// Options the socket's family lacks (IPv6 ones on an IPv4-only socket) are
// skipped.
func setPathOptions(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		f := int(fd)
		v6 := true
		if sa, err := unix.Getsockname(f); err == nil {
			_, v4 := sa.(*unix.SockaddrInet4)
			v6 = !v4
		}
		opts := []struct{ level, opt, val int }{
			{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE},
			{unix.IPPROTO_IP, unix.IP_RECVERR, 1},
		}
		if v6 {
			opts = append(opts,
				struct{ level, opt, val int }{unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE},
				struct{ level, opt, val int }{unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1},
				struct{ level, opt, val int }{unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1})
		}
		for _, o := range opts {
			if err := unix.SetsockoptInt(f, o.level, o.opt, o.val); err != nil {
				serr = fmt.Errorf("setsockopt %d/%d: %w", o.level, o.opt, err)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// errQueue reads a socket's error queue; one per socket, used by the
// socket reader and the timers, never at once.
type errQueue struct {
	mu   sync.Mutex
	buf  [64]byte // the start of the offending datagram, unused
	oob  [256]byte
	read func(uintptr) // q.readOne, bound once, so that a drain allocates nothing
	hdr  unix.Msghdr
	iov  unix.Iovec
	name unix.RawSockaddrInet6
	got  pathError
	ok   bool // got holds a report about sizes
	more bool // a report was read (maybe of another kind)
}

// drain reads every queued error of the socket rc is of and hands those
// about sizes to fn. Errors of other kinds (ICMP port unreachable, say) are
// dropped: the handshake's timers deal with a peer that does not answer.
func (q *errQueue) drain(rc syscall.RawConn, fn func(pathError)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.read == nil {
		q.read = q.readOne
	}
	for range 256 { // bounded: the queue is, too (by the receive buffer)
		q.ok, q.more = false, false
		if rc.Control(q.read) != nil || !q.more {
			return
		}
		if q.ok {
			fn(q.got)
		}
	}
}

// readOne reads one queued error with recvmsg(2) itself: unix.Recvmsg
// allocates for every call, and the timers call this every tick.
func (q *errQueue) readOne(fd uintptr) {
	q.iov = unix.Iovec{Base: &q.buf[0], Len: uint64(len(q.buf))}
	q.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&q.name)), Namelen: unix.SizeofSockaddrInet6,
		Iov: &q.iov, Iovlen: 1, Control: &q.oob[0], Controllen: uint64(len(q.oob))}
	_, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&q.hdr)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if errno != 0 {
		return
	}
	q.more = true
	q.got, q.ok = parseErrQueue(q.oob[:q.hdr.Controllen], parseSockaddr(&q.name).Addr())
}

// parseErrQueue reads a sock_extended_err control message about EMSGSIZE
// for a datagram sent to dst.
func parseErrQueue(oob []byte, dst netip.Addr) (pathError, bool) {
	if !dst.IsValid() {
		return pathError{}, false
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return pathError{}, false
	}
	dst = dst.Unmap()
	for _, m := range msgs {
		isErr := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR ||
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if !isErr || len(m.Data) < int(unsafe.Sizeof(unix.SockExtendedErr{})) {
			continue
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		if unix.Errno(ee.Errno) != unix.EMSGSIZE || ee.Info == 0 {
			continue
		}
		return pathError{dst: dst, mtu: int(ee.Info), local: ee.Origin == unix.SO_EE_ORIGIN_LOCAL}, true
	}
	return pathError{}, false
}

// routeMTUs asks the kernel for the MTU of the route to an address: the
// MTU of the interface the tunnel's datagrams to it would leave by (or a
// route's own mtu). It uses a socket of its own in the tunnel's network
// namespace, connected to each address asked about, with the tunnel's
// fwmark so that policy routing picks the route the tunnel's socket uses.
type routeMTUs struct {
	mu  sync.Mutex
	fd  int // -1: none yet
	v6  bool
	err error
}

func newRouteMTUs() *routeMTUs { return &routeMTUs{fd: -1} }

// open makes the socket in netNS; the caller holds r.mu.
func (r *routeMTUs) open(netNS string) error {
	if r.fd >= 0 || r.err != nil {
		return r.err
	}
	r.err = inns.Do(netNS, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			// Dual-stack whatever net.ipv6.bindv6only says, so that it
			// reaches IPv4 endpoints too, as the tunnel's socket does.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
			r.fd, r.v6 = fd, true
			return nil
		}
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		r.fd = fd
		return nil
	})
	return r.err
}

// get returns the MTU of the route to ep, or 0 if the kernel has none.
func (r *routeMTUs) get(netNS string, mark uint32, ep netip.AddrPort) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.open(netNS); err != nil {
		return 0
	}
	_ = unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	var sa unix.Sockaddr
	a := ep.Addr().Unmap()
	switch {
	case r.v6:
		sa = &unix.SockaddrInet6{Port: int(ep.Port()), Addr: a.As16()}
	case a.Is4():
		sa = &unix.SockaddrInet4{Port: int(ep.Port()), Addr: a.As4()}
	default:
		return 0
	}
	if err := unix.Connect(r.fd, sa); err != nil {
		return 0
	}
	level, opt := unix.IPPROTO_IP, unix.IP_MTU
	if r.v6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_MTU
	}
	mtu, err := unix.GetsockoptInt(r.fd, level, opt)
	if err != nil {
		return 0
	}
	return mtu
}

func (r *routeMTUs) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
	r.err = errors.New("closed")
}

// asyncErr reports whether a send's error may be a socket error left by an
// earlier ICMP report (IP_RECVERR sets it, and the next send returns it
// instead of sending): such a send is worth one retry.
func asyncErr(errno unix.Errno) bool {
	switch errno {
	case unix.EMSGSIZE, unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENETDOWN, unix.EPROTO:
		return true
	}
	return false
}
