package tunnel_test

import "testing"

// BenchmarkTunnelTCP measures TCP through a tapwire-to-tapwire tunnel
// between two namespaces, both engines in this process (MB/s is goodput).
func BenchmarkTunnelTCP(b *testing.B) {
	x, y := pair(b)
	const size = 64 << 20
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		transfer(b, x, y, false, size)
	}
}
