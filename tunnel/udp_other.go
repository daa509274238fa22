//go:build !linux

package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/tapwire/tapwire/internal/inns"
)

// kernelNetwork is the system's UDP: the Network of a Device whose Options
// name none. Outside Linux there is no recvmmsg, sendmmsg, GSO, GRO or
// error queue: a batch is one datagram per system call, as wireguard-go's
// StdNetBind does on these systems, and the path MTU is learnt by probes
// alone.
type kernelNetwork struct {
	netNS string
	log   *slog.Logger
}

func newKernelNetwork(netNS string, log *slog.Logger) *kernelNetwork {
	return &kernelNetwork{netNS: netNS, log: log}
}

// ListenPacket opens a UDP socket on port, on every address (IPv6 and
// IPv4 where the system gives one socket both), with big buffers.
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
	c := &stdConn{conn: conn}
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		c.v4 = la.IP.To4() != nil
		c.port = uint16(la.Port)
	}
	return c, nil
}

func (n *kernelNetwork) close() {}

// stdConn is a UDP socket moved through package net, one datagram per
// call.
type stdConn struct {
	conn *net.UDPConn
	v4   bool
	port uint16
	rmu  sync.Mutex
}

var _ PacketConn = (*stdConn)(nil)

func (c *stdConn) LocalPort() uint16 { return c.port }
func (c *stdConn) IPv6() bool        { return !c.v4 }
func (c *stdConn) Close() error      { return c.conn.Close() }

// SetMark sets the socket's mark where the system has one (FreeBSD's
// SO_USER_COOKIE); 0 is always accepted.
func (c *stdConn) SetMark(mark uint32) error {
	if mark == 0 {
		return nil
	}
	rc, err := c.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setSocketMark(fd, mark) }); err != nil {
		return err
	}
	return serr
}

// ReadBatch blocks for one datagram and returns it.
func (c *stdConn) ReadBatch(msgs []Datagram) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, from, err := c.conn.ReadFromUDPAddrPort(msgs[0].Buf)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, err
		}
		return 0, fmt.Errorf("receive: %w", err)
	}
	msgs[0].N = n
	msgs[0].Segment = 0
	msgs[0].Addr = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return 1, nil
}

// WriteBatch sends each datagram with its own call; a refused one does not
// hold back the rest, and the first refusal is returned.
func (c *stdConn) WriteBatch(msgs []Datagram) (int, error) {
	var first error
	for i := range msgs {
		if err := c.writeOne(msgs[i].Buf, msgs[i].Addr); err != nil && first == nil {
			first = err
		}
	}
	return 0, first
}

// writeOne sends one datagram; an IPv4 address goes out of an IPv6 socket
// as its IPv4-mapped form.
func (c *stdConn) writeOne(msg []byte, to netip.AddrPort) error {
	if !c.v4 && to.Addr().Is4() {
		to = netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port())
	}
	if _, err := c.conn.WriteToUDPAddrPort(msg, to); err != nil {
		return fmt.Errorf("send to %v: %w", to, err)
	}
	return nil
}
