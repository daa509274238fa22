// Package uapi implements WireGuard's cross-platform userspace API
// (https://www.wireguard.com/xplatform/), the text protocol that the wg(8)
// tool speaks over /var/run/wireguard/IFACE.sock to userspace
// implementations (on Windows, the named pipe
// \\.\pipe\ProtectedPrefix\Administrators\WireGuard\IFACE that wg.exe and
// wireguard-go use, open to SYSTEM and Administrators only), so that
// `wg show`, `wg set`, `wg setconf`, `wg syncconf` and `wg showconf` work
// against a tapwire device. SocketPath names the endpoint on each system.
//
// The package parses and formats the protocol and runs the socket server;
// the tunnel engine implements [Backend]. A set=1 transaction is parsed in
// full into a [devconf.DeviceConfig] before anything is applied, so a
// malformed request changes nothing; the Backend applies a well-formed one
// atomically.
//
// # Wire format
//
// A client sends "get=1\n\n" or "set=1\n" followed by key=value lines and a
// blank line. The server answers a get with the device's key=value lines, and
// every request with "errno=N\n\n": 0 on success, otherwise the negated
// errno, as wireguard-go writes it and as wg(8) reads it back (errno=-22 is
// EINVAL). A connection may carry several requests in sequence. A request
// that cannot be understood is answered with an errno and the connection is
// closed; a set=1 whose client goes away before the blank line is discarded.
// A set=1 is parsed in full before it is applied, so it is bounded (see
// DefaultMaxSetSize and WithMaxSetSize): a bigger one is read to its blank
// line and dropped as it comes, answered with EMSGSIZE, and the connection
// carries on. Each connection has its own goroutine and none holds a lock
// while it waits for its client: one that sends nothing, or stops in the
// middle of a request, holds up no one.
//
// # What Apply must do
//
// Apply receives the transaction in the order the client sent it and must
// apply it as wireguard-go would, line by line but all-or-nothing; package
// devconf describes each field's effect. The types are there, not here, so
// that the engine implements Backend without importing this package. The
// keys map to the fields by name: private_key to PrivateKey, replace_peers
// to ReplacePeers, public_key starts a PeerConfig, remove=true is Remove,
// update_only=true UpdateOnly, persistent_keepalive_interval
// PersistentKeepalive, allowed_ip=PREFIX goes to AllowedIPs and
// allowed_ip=-PREFIX to RemoveAllowedIPs.
//
// Status reports protocol_version=1, the last handshake as Unix seconds and
// nanoseconds (zero time: 0 and 0), rx and tx byte counters, and all keys in
// lower-case hex; the private key, listen port and fwmark are omitted when
// zero, and the preshared key is always sent (all zeros when none).
//
// # tapwire's extensions
//
// wg never sends them; tapwire up does, and a user may with socat. In a
// set=1 transaction, tapwire_listen_tcp=PORT (a device key) is the TCP
// port that accepts tunnel streams (0: none), tapwire_flood_limit=N (a
// device key) the frames a second each peer of a TAP hub may have flooded
// (0: no limit; see devconf.DeviceConfig.FloodLimit), and
// tapwire_transport=udp, tcp or auto (a peer key) says how the peer is
// reached. "get=tapwire" answers with the device's Info as JSON (see
// InfoBackend); "stop=tapwire" asks the interface to take itself down (see
// WithStop and RequestStop: tapwire down on Windows, which has no signals
// to send). A get=1 answer holds nothing wg would not understand.
//
// Error numbers (a [*devconf.Error] carries one): EINVAL for bad input
// (unknown key, bad value, key in the wrong section), EPROTO for a line
// without '=', EIO for I/O errors, EMSGSIZE (90) for a set=1 over the bound
// (wireguard-go has none), EADDRINUSE when the port cannot be bound, and
// ENOANO (55) for an error from Apply that carries no errno.
package uapi
