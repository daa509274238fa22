// Package interop proves that github.com/tapwire/tapwire/protocol speaks
// WireGuard byte for byte with wireguard-go (golang.zx2c4.com/wireguard):
// handshakes in both roles, with and without preshared key, transport data
// both ways, mac1 and cookie replies. It is a separate module so that the
// main module does not depend on wireguard-go. Run it with
//
//	cd protocol/interop && go test ./...
package interop
