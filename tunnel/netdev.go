package tunnel

import (
	"net/netip"
	"sync"
	"time"

	"github.com/tapwire/tapwire/dgram"
	"github.com/tapwire/tapwire/tun"
)

// PacketDevice is the device a Device carries packets (TUN) or Ethernet
// frames (TAP) of: *tun.Device, or an in-memory device in tests. The engine
// reads it from one goroutine and writes it from others.
type PacketDevice interface {
	// Name returns the interface name.
	Name() string
	// Mode reports whether the device carries IP packets or frames.
	Mode() tun.Mode
	// MTU returns the device's MTU; it is read once, by New.
	MTU() (int, error)
	// BatchSize is how many packets one ReadBatch returns at most.
	BatchSize() int
	// ReadBatch blocks until a packet is there, then reads up to len(bufs)
	// of them, each into bufs[i][offset:], and its size into sizes[i]. It
	// returns an error wrapping tun.ErrClosed once Close was called; any
	// error stops the Device.
	ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error)
	// WriteBatch writes each of bufs[i][offset:]; bytes before offset are
	// the device's to use (headroom). It drops what the device refuses.
	WriteBatch(bufs [][]byte, offset int) (int, error)
	// Write writes one packet.
	Write(p []byte) (int, error)
	// Close closes the device and makes a blocked ReadBatch return.
	Close() error
}

var _ PacketDevice = (*tun.Device)(nil)

// Clock tells a Device the time and runs its timers. Options.Clock nil
// means the system's clock.
type Clock interface {
	Now() time.Time
	// Every calls fn with the clock's time every d, one call at a time,
	// until stop is called; stop waits for a call under way to return. A
	// clock may skip calls a slow fn misses (as time.Ticker does).
	Every(d time.Duration, fn func(now time.Time)) (stop func())
}

// systemClock is the Clock of the operating system: a goroutine per Every,
// on a time.Ticker.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Every(d time.Duration, fn func(now time.Time)) func() {
	t := time.NewTicker(d)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				fn(now)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.Stop()
			close(quit)
			<-done
		})
	}
}

// Datagram, PacketConn and Network are the datagram endpoints' types,
// which in-memory implementations share with the engine.
type (
	Datagram   = dgram.Datagram
	PacketConn = dgram.Conn
	Network    = dgram.Network
)

// pathReporter is a PacketConn that learns what the path says about sizes
// (the kernel's socket error queue): drainPathErrors hands each report to
// fn. Only the kernel's sockets are.
type pathReporter interface {
	drainPathErrors(fn func(pathError))
}

// oneWriter is a PacketConn that sends one datagram without allocating.
type oneWriter interface {
	writeOne(msg []byte, to netip.AddrPort) error
}

// routeMTUer is a Network that knows the MTU of the local route to an
// address, with a mark (0: unknown).
type routeMTUer interface {
	routeMTU(mark uint32, ep netip.AddrPort) int
	close()
}
