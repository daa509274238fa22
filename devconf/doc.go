// Package devconf holds the values that configure a tunnel device and
// report on it, shared by the engine (package tunnel), the UAPI socket
// (package uapi), wg-quick files (package config) and the commands: a
// [DeviceConfig] is one `wg set` transaction, a [DeviceStatus] what `wg
// show` prints, and an [*Error] the errno a failed transaction reports.
// It is a leaf: it imports only package protocol and the standard library,
// so the engine and the socket both use it without importing each other.
//
// Pointer fields mean "unchanged" when nil, as in wgctrl-go's wgtypes.
//
// # What applying a DeviceConfig does (wireguard-go's semantics)
//
// An implementation receives the transaction in the order the client sent
// it and must behave as if its lines were applied one by one, as
// wireguard-go does, but all-or-nothing:
//
//   - PrivateKey: nil leaves the key alone; the zero key removes it (the
//     status then has no private key and the device cannot handshake).
//     Setting a key removes any peer whose public key is the new public key,
//     and must re-derive per-peer static-static state (existing sessions are
//     expired). Setting the key the device already has must change nothing:
//     wg setconf and syncconf send private_key every time.
//   - ListenPort: nil leaves it; 0 means "pick a free port". The socket is
//     rebound when the device is up, and the status must report the port
//     really bound, not 0. The current port again may rebind or do nothing.
//     A bind failure is EADDRINUSE (wireguard-go reports any bind failure as
//     EADDRINUSE, and also a failure to set fwmark).
//   - FwMark: nil leaves it; 0 clears the mark.
//   - ListenTCP (tapwire): nil leaves it; 0 closes the TCP listener.
//   - FloodLimit (tapwire): nil leaves it; 0 lifts the limit. A TUN
//     device, which floods nothing, keeps it and ignores it.
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
//     ignore the rest of the entry (uapi.ParseSet leaves the other fields
//     empty);
//   - UpdateOnly: if the peer does not exist, ignore the entry entirely
//     (without it, an entry for an unknown peer creates the peer);
//   - PresharedKey: nil leaves it; the zero key means no preshared key;
//   - Endpoint: nil leaves it; a set endpoint replaces the current one
//     (roaming may change it again later). It is an IP address and port,
//     possibly IPv6 with a zone; wg resolves host names before sending;
//   - PersistentKeepalive: nil leaves it; 0 turns it off. wireguard-go sends
//     a keepalive at once when it goes from off to on (if the device is up);
//   - Transport (tapwire): nil leaves it;
//   - ReplaceAllowedIPs: drop the peer's allowed IPs first;
//   - RemoveAllowedIPs: drop these prefixes if this peer holds them
//     (allowed_ip=-PREFIX, sent by newer wg tools);
//   - AllowedIPs: add these; a prefix held by another peer moves to this
//     one (a prefix belongs to at most one peer). uapi.ParseSet masks them
//     and keeps RemoveAllowedIPs and AllowedIPs disjoint, so either order
//     works;
//   - once configured, if the device is up, start the peer, send its staged
//     packets, and the keepalive mentioned above.
//
// A failed transaction returns an error; an [*Error] in it (possibly
// wrapped) chooses the errno the UAPI reports (see package uapi).
package devconf
