package devconf

import (
	"net/netip"
	"time"

	"github.com/tapwire/tapwire/protocol"
)

// DeviceConfig is one configuration transaction (a `wg set`, or one set=1
// request on the UAPI socket), applied atomically: all of it or none. See
// the package documentation for what each field does.
type DeviceConfig struct {
	PrivateKey *protocol.Key // nil: unchanged; zero key: remove
	ListenPort *uint16       // nil: unchanged; 0: pick a free port
	FwMark     *uint32       // nil: unchanged; 0: no mark
	// ListenTCP is tapwire's extension (UAPI key tapwire_listen_tcp): the
	// TCP port that accepts tunnel streams; nil: unchanged; 0: none.
	ListenTCP *uint16
	// FloodLimit is tapwire's extension (UAPI key tapwire_flood_limit),
	// for a TAP hub: the frames each peer may have flooded (broadcast,
	// multicast, unknown unicast) per second, one second's worth at once;
	// nil: unchanged; 0: no limit.
	FloodLimit   *uint32
	ReplacePeers bool         // remove all peers before applying Peers
	Peers        []PeerConfig // in the order sent; apply in this order
}

// PeerConfig is the part of a transaction about one peer (on the UAPI
// socket, the lines from a public_key line to the next).
type PeerConfig struct {
	PublicKey           protocol.Key
	Remove              bool            // remove the peer; the other fields are empty
	UpdateOnly          bool            // do not create the peer if it does not exist
	PresharedKey        *protocol.Key   // nil: unchanged; zero key: none
	Endpoint            *netip.AddrPort // nil: unchanged
	PersistentKeepalive *uint16         // seconds; nil: unchanged; 0: off
	// Transport is tapwire's extension (UAPI key tapwire_transport): how
	// the peer is reached; nil: unchanged. A new peer's is TransportUDP.
	Transport         *Transport
	ReplaceAllowedIPs bool           // drop the peer's allowed IPs first
	RemoveAllowedIPs  []netip.Prefix // drop these (masked) if the peer holds them
	AllowedIPs        []netip.Prefix // add these (masked), taking them from other peers
}

// DeviceStatus is a device's configuration and counters, what a UAPI get=1
// reports and `wg show` prints.
type DeviceStatus struct {
	PrivateKey protocol.Key // zero: none
	ListenPort uint16       // the port actually bound; 0: none
	FwMark     uint32       // 0: none
	Peers      []PeerStatus
}

// PeerStatus is one peer in a DeviceStatus.
type PeerStatus struct {
	PublicKey           protocol.Key
	PresharedKey        protocol.Key   // zero: none
	Endpoint            netip.AddrPort // zero: none
	PersistentKeepalive uint16         // seconds, 0: off
	LastHandshake       time.Time      // zero: never
	RxBytes, TxBytes    uint64
	AllowedIPs          []netip.Prefix
	ProtocolVersion     int // 0 is reported as 1
}
