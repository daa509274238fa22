// Package uapi implements WireGuard's cross-platform userspace API
// (https://www.wireguard.com/xplatform/), the text protocol that the wg(8)
// tool speaks over /var/run/wireguard/IFACE.sock to userspace
// implementations, so that `wg show`, `wg set`, `wg setconf`, `wg syncconf`
// and `wg showconf` work against a tapwire device.
//
// The package parses and formats the protocol and runs the socket server;
// the tunnel engine implements [Backend]. A set=1 transaction is parsed in
// full into a [DeviceConfig] before anything is applied, so a malformed
// request changes nothing; the Backend applies a well-formed one atomically.
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
//
// # What Apply must do (wireguard-go's semantics)
//
// Apply receives the transaction in the order the client sent it and must
// behave as if the lines were applied one by one, as wireguard-go does, but
// all-or-nothing:
//
//   - PrivateKey: nil leaves the key alone; the zero key removes it (get then
//     omits private_key and the device cannot handshake). Setting a key
//     removes any peer whose public key is the new public key, and must
//     re-derive per-peer static-static state (existing sessions are expired).
//     Setting the key the device already has must change nothing: wg
//     setconf and syncconf send private_key every time.
//   - ListenPort: nil leaves it; 0 means "pick a free port". The socket is
//     rebound when the device is up, and Status must report the port really
//     bound, not 0. The current port again may rebind or do nothing. A bind
//     failure is EADDRINUSE (wireguard-go reports any bind failure as
//     EADDRINUSE, and also a failure to set fwmark).
//   - FwMark: nil leaves it; 0 clears the mark.
//   - ReplacePeers: remove every peer (with its sessions and counters)
//     before handling Peers. wg setconf sends it; wg syncconf does not, it
//     removes the peers the file lacks one by one and keeps the others'
//     sessions. Both send private_key, listen_port and fwmark, zero when the
//     file lacks them: listen_port=0 is common and rebinds to a new port.
//
// Then Peers, in order. The same public key may appear more than once, and
// later entries see the effect of earlier ones. For each entry:
//
//   - if its public key is the device's own (after this transaction's
//     PrivateKey), ignore it;
//   - Remove: remove the peer if it exists (no error if it does not) and
//     ignore the rest of the entry (ParseSet leaves the other fields empty);
//   - UpdateOnly: if the peer does not exist, ignore the entry entirely
//     (without it, an entry for an unknown peer creates the peer);
//   - PresharedKey: nil leaves it; the zero key means no preshared key;
//   - Endpoint: nil leaves it; a set endpoint replaces the current one
//     (roaming may change it again later). It is an IP address and port,
//     possibly IPv6 with a zone; wg resolves host names before sending;
//   - PersistentKeepalive: nil leaves it; 0 turns it off. wireguard-go sends
//     a keepalive at once when it goes from off to on (if the device is up);
//   - ReplaceAllowedIPs: drop the peer's allowed IPs first;
//   - RemoveAllowedIPs: drop these prefixes if this peer holds them
//     (allowed_ip=-PREFIX, sent by newer wg tools);
//   - AllowedIPs: add these; a prefix held by another peer moves to this
//     one (a prefix belongs to at most one peer). ParseSet masks them and
//     keeps RemoveAllowedIPs and AllowedIPs disjoint, so either order works;
//   - once configured, if the device is up, start the peer, send its staged
//     packets, and the keepalive mentioned above.
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
// port that accepts tunnel streams (0: none), and tapwire_transport=udp,
// tcp or auto (a peer key) says how the peer is reached. "get=tapwire"
// answers with the device's Info as JSON (see InfoBackend). A get=1 answer
// holds nothing wg would not understand.
//
// Error numbers: EINVAL for bad input (unknown key, bad value, key in the
// wrong section), EPROTO for a line without '=', EIO for I/O errors,
// EADDRINUSE when the port cannot be bound, and ENOANO (55) for an error
// from Apply that carries no errno.
package uapi
