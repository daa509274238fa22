// Package tunnel is tapwire's WireGuard engine: peers, the handshake and
// keypair lifecycle with the whitepaper's timers, allowed-IPs routing with
// the source check on receive, roaming, keepalives, cookies under load and
// per-source handshake rate limiting, between a TUN device and a UDP socket.
//
// A Device is configured through Apply and reported by Status, the same
// operations the wg tool performs over the cross-platform UAPI (package
// uapi), so `wg set`, `wg show` and wg-quick drive it unchanged.
//
// # Goroutines
//
// A Device runs one goroutine reading the TUN device (encrypting and sending
// to peers), one reading the UDP socket (handshakes and decryption, writing
// to the TUN device), and one evaluating the peers' timers. A peer that goes
// silent costs a timer check per tick and nothing else: no goroutine waits on
// a peer, so one peer never blocks another.
package tunnel
