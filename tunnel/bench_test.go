package tunnel_test

import (
	"testing"

	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

// BenchmarkTunnelTCP measures TCP through a tapwire-to-tapwire tunnel
// between two namespaces, both engines in this process (MB/s is goodput).
func BenchmarkTunnelTCP(b *testing.B) {
	na, nb := wire(b)
	ua, ub := underlay(false)
	x := startTapwire(b, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	y := startTapwire(b, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	peer(b, x, y, protocol.Key{}, 0, false)
	peer(b, y, x, protocol.Key{}, 0, false)
	const size = 64 << 20
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		transfer(b, x, y, false, size)
	}
}
