//go:build linux

package tunnel_test

import "testing"

// BenchmarkTunnelTCP measures TCP through a tapwire-to-tapwire tunnel
// between two namespaces, both engines in this process (MB/s is goodput).
func BenchmarkTunnelTCP(b *testing.B) {
	x, y := pair(b)
	benchTransfer(b, x, y)
}

// BenchmarkTapTunnelTCP is BenchmarkTunnelTCP in TAP mode: Ethernet frames
// through the same encryption, switched by MAC address.
func BenchmarkTapTunnelTCP(b *testing.B) {
	x, y := tapPair(b, false)
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
