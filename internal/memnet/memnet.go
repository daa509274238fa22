// Package memnet is an in-memory world for tests of the tunnel engine:
// TUN and TAP devices whose other side a test drives (Device), datagram
// endpoints joined by a switch that a test can watch, filter and rewrite
// (Network, Host, Conn), and a clock that moves only when told (Clock).
// Nothing in it touches the kernel, so the tests that use it need no root,
// run in parallel and, with the Clock, do not depend on how fast the
// machine is.
//
// Queues are bounded: what does not fit is dropped and counted, as a
// kernel's queues would, never blocking the writer.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwire/tapwire/dgram"
	"github.com/tapwire/tapwire/tun"
)

// queueLen bounds every queue: a device's both ways, an endpoint's input.
const queueLen = 4096

// Device is an in-memory TUN or TAP device. The engine uses it as a
// tunnel.PacketDevice; the test is the host's network stack behind it:
// Send hands the engine a packet (or frame) to carry, Recv takes one the
// engine delivered.
type Device struct {
	name string
	mode tun.Mode
	mtu  int

	in      chan []byte // host -> engine
	out     chan []byte // engine -> host
	closed  chan struct{}
	once    sync.Once
	pending atomic.Int64 // packets sent by the host and not yet handled by the engine
	lastN   atomic.Int64 // packets of the last ReadBatch (handled when the next begins)
	mac     atomic.Pointer[net.HardwareAddr]

	// Dropped counts packets the engine wrote while the host's queue was
	// full.
	Dropped atomic.Uint64
}

// NewDevice returns a device named name carrying IP packets (tun.ModeTUN)
// or Ethernet frames (tun.ModeTAP), with MTU mtu.
func NewDevice(name string, mode tun.Mode, mtu int) *Device {
	return &Device{name: name, mode: mode, mtu: mtu,
		in: make(chan []byte, queueLen), out: make(chan []byte, queueLen), closed: make(chan struct{})}
}

// Name returns the device's name.
func (d *Device) Name() string { return d.name }

// Mode returns the device's mode.
func (d *Device) Mode() tun.Mode { return d.mode }

// MTU returns the device's MTU.
func (d *Device) MTU() (int, error) { return d.mtu, nil }

// HardwareAddr returns the MAC address of a TAP device, as
// *tun.Device.HardwareAddr does: the one SetHardwareAddr set, nil before.
// A TUN device has none: an error.
func (d *Device) HardwareAddr() (net.HardwareAddr, error) {
	if d.mode != tun.ModeTAP {
		return nil, fmt.Errorf("memnet: %s: a TUN device has no MAC address", d.name)
	}
	if m := d.mac.Load(); m != nil {
		return slices.Clone(*m), nil
	}
	return nil, nil
}

// SetHardwareAddr sets the MAC address of a TAP device, as `ip link set
// address` would.
func (d *Device) SetHardwareAddr(mac net.HardwareAddr) error {
	if d.mode != tun.ModeTAP || len(mac) != 6 {
		return fmt.Errorf("memnet: %s: cannot set MAC address %v", d.name, mac)
	}
	m := slices.Clone(mac)
	d.mac.Store(&m)
	return nil
}

// BatchSize returns tun.DefaultBatchSize.
func (d *Device) BatchSize() int { return tun.DefaultBatchSize }

// ReadBatch blocks until the host sent a packet, then returns up to
// len(bufs) of them. It returns tun.ErrClosed once the device is closed.
// A packet longer than its buffer is cut, as a short read would.
func (d *Device) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.pending.Add(-d.lastN.Swap(0)) // the engine is done with the last batch
	var p []byte
	select {
	case p = <-d.in:
	case <-d.closed:
		return 0, fmt.Errorf("memnet: read %s: %w", d.name, tun.ErrClosed)
	}
	n := 0
	defer func() { d.lastN.Store(int64(n)) }()
	for {
		sizes[n] = copy(bufs[n][offset:], p)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-d.in:
		default:
			return n, nil
		}
	}
}

// WaitIdle waits until the engine has handled every packet the host sent
// (it asks for more), or the device is closed, or 10 s went by; it reports
// whether it had to wait.
func (d *Device) WaitIdle() bool {
	return WaitZero(&d.pending, d.closed)
}

// WaitZero waits until n is 0, closed (if not nil) is closed or 10 s went
// by, and reports whether it had to wait.
func WaitZero(n *atomic.Int64, closed <-chan struct{}) bool {
	waited := false
	for deadline := time.Now().Add(10 * time.Second); n.Load() > 0 && time.Now().Before(deadline); {
		select {
		case <-closed:
			return waited
		default:
		}
		waited = true
		runtime.Gosched()
		time.Sleep(20 * time.Microsecond)
	}
	return waited
}

// WriteBatch hands each bufs[i][offset:] to the host.
func (d *Device) WriteBatch(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		if _, err := d.Write(b[offset:]); err != nil {
			return 0, err
		}
	}
	return len(bufs), nil
}

// Write hands a copy of p to the host, or drops and counts it when the
// host's queue is full.
func (d *Device) Write(p []byte) (int, error) {
	select {
	case <-d.closed:
		return 0, fmt.Errorf("memnet: write %s: %w", d.name, tun.ErrClosed)
	default:
	}
	select {
	case d.out <- append([]byte(nil), p...):
	default:
		d.Dropped.Add(1)
	}
	return len(p), nil
}

// Close closes the device; a blocked ReadBatch returns tun.ErrClosed.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// Send gives the engine a packet (or frame) to carry, as the host's stack
// writing to the interface would. It blocks while the queue is full.
func (d *Device) Send(ctx context.Context, pkt []byte) error {
	cp := append([]byte(nil), pkt...)
	d.pending.Add(1) // before the queue: the engine may be done with it at once
	select {
	case d.in <- cp:
		return nil
	case <-d.closed:
		d.pending.Add(-1)
		return fmt.Errorf("memnet: send on %s: %w", d.name, tun.ErrClosed)
	case <-ctx.Done():
		d.pending.Add(-1)
		return ctx.Err()
	}
}

// Recv returns the next packet (or frame) the engine delivered to the
// host, waiting until ctx is done.
func (d *Device) Recv(ctx context.Context) ([]byte, error) {
	select {
	case p := <-d.out:
		return p, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("memnet: receive on %s: %w", d.name, ctx.Err())
	}
}

// Packet is one datagram crossing a Network.
type Packet struct {
	Src, Dst netip.AddrPort
	Data     []byte
}

// Filter sees every datagram a Network carries, before it is delivered. It
// may change Src (a NAT on the way, a roaming peer), Dst or Data; it
// returns false to drop the datagram. It runs on the sender's goroutine.
type Filter func(p *Packet) bool

// Network joins endpoints by address. The zero value is not usable: call
// NewNetwork.
type Network struct {
	mu      sync.RWMutex
	conns   map[netip.AddrPort]*Conn
	filter  Filter
	port    uint16
	pending atomic.Int64 // datagrams queued or being handled by their receiver

	// Lost counts datagrams to an address nobody listens on; Filtered
	// those a Filter dropped.
	Lost, Filtered atomic.Uint64
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{conns: make(map[netip.AddrPort]*Conn), port: 40000}
}

// SetFilter sets (nil: clears) the filter every datagram goes through.
func (n *Network) SetFilter(f Filter) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

// Host returns the host with address addr on n: a tunnel.Network whose
// endpoints are bound to addr.
func (n *Network) Host(addr netip.Addr) *Host { return &Host{n: n, addr: addr} }

func (n *Network) deliver(p Packet) {
	n.mu.RLock()
	f := n.filter
	n.mu.RUnlock()
	if f != nil && !f(&p) {
		n.Filtered.Add(1)
		return
	}
	n.mu.RLock() // held while queueing, so that Close sees every datagram queued
	defer n.mu.RUnlock()
	c := n.conns[p.Dst]
	if c == nil {
		n.Lost.Add(1)
		return
	}
	if c.engine {
		n.pending.Add(1) // before the queue: the reader may be done with it at once
	}
	select {
	case c.q <- p:
	default:
		if c.engine {
			n.pending.Add(-1)
		}
		c.Dropped.Add(1)
	}
}

// WaitIdle waits until every datagram sent was handled by its receiver
// (the receiver asked for more, or closed), or 10 s went by; it reports
// whether it had to wait.
func (n *Network) WaitIdle() bool { return WaitZero(&n.pending, nil) }

// Host is one address on a Network.
type Host struct {
	n    *Network
	addr netip.Addr
}

// ListenPacket implements tunnel.Network.
func (h *Host) ListenPacket(port uint16) (dgram.Conn, error) {
	c, err := h.listen(port, true)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Listen opens an endpoint on port (0: a free one) of h's address.
func (h *Host) Listen(port uint16) (*Conn, error) { return h.listen(port, false) }

// listen opens an endpoint; engine says an engine reads it (WaitIdle waits
// for it), set before anyone can send to it.
func (h *Host) listen(port uint16, engine bool) (*Conn, error) {
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		for {
			n.port++
			if _, busy := n.conns[netip.AddrPortFrom(h.addr, n.port)]; !busy {
				break
			}
		}
		port = n.port
	}
	ap := netip.AddrPortFrom(h.addr, port)
	if _, busy := n.conns[ap]; busy {
		return nil, fmt.Errorf("memnet: listen on %v: address in use", ap)
	}
	c := &Conn{n: n, addr: ap, q: make(chan Packet, queueLen), closed: make(chan struct{}), engine: engine}
	n.conns[ap] = c
	return c, nil
}

// Conn is an endpoint of a Network: a dgram.Conn.
type Conn struct {
	n      *Network
	addr   netip.AddrPort
	q      chan Packet
	closed chan struct{}
	once   sync.Once
	mark   atomic.Uint32
	lastN  atomic.Int64 // datagrams of the last read (handled when the next begins)
	engine bool         // opened by ListenPacket: an engine reads it, and WaitIdle waits for it

	// Dropped counts datagrams for this endpoint dropped because its queue
	// was full.
	Dropped atomic.Uint64
}

// Addr returns the endpoint's address.
func (c *Conn) Addr() netip.AddrPort { return c.addr }

// LocalPort returns the endpoint's port.
func (c *Conn) LocalPort() uint16 { return c.addr.Port() }

// IPv6 reports whether the endpoint's address is IPv6.
func (c *Conn) IPv6() bool { return c.addr.Addr().Is6() }

// Mark returns the last mark SetMark set.
func (c *Conn) Mark() uint32 { return c.mark.Load() }

// SetMark records mark.
func (c *Conn) SetMark(mark uint32) error {
	c.mark.Store(mark)
	return nil
}

// ReadBatch implements dgram.Conn: it blocks until a datagram is there.
func (c *Conn) ReadBatch(msgs []dgram.Datagram) (int, error) {
	if c.engine {
		c.n.pending.Add(-c.lastN.Swap(0)) // the reader is done with the last batch
	}
	var p Packet
	select {
	case p = <-c.q:
	case <-c.closed:
		return 0, fmt.Errorf("memnet: read %v: %w", c.addr, net.ErrClosed)
	}
	n := 0
	defer func() { c.lastN.Store(int64(n)) }()
	for {
		m := &msgs[n]
		m.N, m.Segment, m.Addr = copy(m.Buf, p.Data), 0, p.Src
		n++
		if n == len(msgs) {
			return n, nil
		}
		select {
		case p = <-c.q:
		default:
			return n, nil
		}
	}
}

// WriteBatch implements dgram.Conn: each datagram is copied to the
// endpoint of its address (through the Network's filter); datagrams to
// nobody are lost, as UDP's are.
func (c *Conn) WriteBatch(msgs []dgram.Datagram) (int, error) {
	select {
	case <-c.closed:
		return 0, fmt.Errorf("memnet: write %v: %w", c.addr, net.ErrClosed)
	default:
	}
	var first error
	for _, m := range msgs {
		if !c.IPv6() && !m.Addr.Addr().Unmap().Is4() {
			if first == nil {
				first = fmt.Errorf("memnet: write to %v on an IPv4 endpoint: %w", m.Addr, errors.ErrUnsupported)
			}
			continue // refused alone: the rest go
		}
		c.n.deliver(Packet{Src: c.addr, Dst: m.Addr, Data: append([]byte(nil), m.Buf...)})
	}
	return 0, first
}

// WriteTo sends one datagram.
func (c *Conn) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := c.WriteBatch([]dgram.Datagram{{Buf: b, Addr: to}})
	return err
}

// ReadFrom returns the next datagram, waiting until ctx is done.
func (c *Conn) ReadFrom(ctx context.Context) (Packet, error) {
	select {
	case p := <-c.q:
		if c.engine {
			c.n.pending.Add(-1)
		}
		return p, nil
	case <-c.closed:
		return Packet{}, fmt.Errorf("memnet: read %v: %w", c.addr, net.ErrClosed)
	case <-ctx.Done():
		return Packet{}, fmt.Errorf("memnet: read %v: %w", c.addr, ctx.Err())
	}
}

// Close frees the endpoint's address; a blocked ReadBatch returns
// net.ErrClosed.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.n.mu.Lock()
		if c.n.conns[c.addr] == c {
			delete(c.n.conns, c.addr)
		}
		c.n.mu.Unlock()
		if !c.engine {
			return
		}
		// What it held is handled: nobody will read it.
		c.n.pending.Add(-c.lastN.Swap(0))
		for {
			select {
			case <-c.q:
				c.n.pending.Add(-1)
			default:
				return
			}
		}
	})
	return nil
}

// Clock is a clock that moves only when Advance moves it: a tunnel.Clock
// whose timers run when the test says, on the test's goroutine.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*timer]struct{}
	settle []func() bool
}

type timer struct {
	mu      sync.Mutex // held while fn runs
	period  time.Duration
	next    time.Time
	fn      func(time.Time)
	stopped bool
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: make(map[*timer]struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Every implements tunnel.Clock: Advance calls fn when a period is up.
func (c *Clock) Every(d time.Duration, fn func(time.Time)) func() {
	if d <= 0 {
		panic("memnet: Clock.Every with a period that is not positive")
	}
	t := &timer{period: d, fn: fn}
	c.mu.Lock()
	t.next = c.now.Add(d)
	c.timers[t] = struct{}{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.timers, t)
		c.mu.Unlock()
		t.mu.Lock()
		t.stopped = true
		t.mu.Unlock()
	}
}

// Settle adds a function Advance calls before and after each step, to let
// what the step set off finish (Network.WaitIdle, Device.WaitIdle): it
// waits until its part is idle and reports whether it had to wait. Advance
// calls them all until none had to.
func (c *Clock) Settle(f func() bool) {
	c.mu.Lock()
	c.settle = append(c.settle, f)
	c.mu.Unlock()
}

func (c *Clock) settleAll() {
	c.mu.Lock()
	fs := slices.Clone(c.settle)
	c.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); ; {
		busy := false
		for _, f := range fs {
			if f() {
				busy = true
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			// A count that never comes back to zero: a bug of the test
			// world, said loudly rather than a test hanging for hours.
			panic("memnet: the engines did not go idle in 30 s (a pending count is stuck)")
		}
	}
}

// Advance moves the clock forward by d, stopping at every time a timer is
// due: there it runs the timers due, on the calling goroutine, after
// letting what the time before set off settle (see Settle). When Advance
// returns, the timers have run and what they sent has been received.
func (c *Clock) Advance(d time.Duration) {
	c.settleAll()
	end := c.Now().Add(d)
	for {
		c.mu.Lock()
		step := end
		for t := range c.timers {
			if t.next.Before(step) {
				step = t.next
			}
		}
		if step.After(c.now) {
			c.now = step
		}
		now := c.now
		var due []*timer
		for t := range c.timers {
			if !t.next.After(now) {
				due = append(due, t)
				for !t.next.After(now) {
					t.next = t.next.Add(t.period)
				}
			}
		}
		c.mu.Unlock()
		for _, t := range due {
			t.mu.Lock()
			if !t.stopped {
				t.fn(now)
			}
			t.mu.Unlock()
		}
		c.settleAll()
		if !now.Before(end) {
			return
		}
	}
}
