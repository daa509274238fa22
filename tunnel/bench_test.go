package tunnel_test

import (
	"testing"

	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
)

// BenchmarkTunnelTCP measures TCP through a tapwire-to-tapwire tunnel
// between two namespaces, both engines in this process (MB/s is goodput).
func BenchmarkTunnelTCP(b *testing.B) {
	x, y := pair(b)
	benchTransfer(b, x, y)
}

// BenchmarkTapTunnelTCP is BenchmarkTunnelTCP in TAP mode: Ethernet frames
// through the same encryption, switched by MAC address.
func BenchmarkTapTunnelTCP(b *testing.B) {
	na, nb := wire(b)
	ua, ub := underlay(false)
	x := startTap(b, na, "twa0", ua, 51001, l2switch.Options{}, inA4)
	y := startTap(b, nb, "twb0", ub, 51002, l2switch.Options{}, inB4)
	peer(b, x, y, protocol.Key{}, 0, false)
	peer(b, y, x, protocol.Key{}, 0, false)
	benchTransfer(b, x, y)
}

func benchTransfer(b *testing.B, x, y *host) {
	const size = 64 << 20
	transfer(b, x, y, false, 1<<20) // handshake, ARP
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		transfer(b, x, y, false, size)
	}
}
