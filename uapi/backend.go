package uapi

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/protocol"
)

// DeviceConfig is one set=1 transaction, applied atomically by the Backend.
type DeviceConfig struct {
	PrivateKey *protocol.Key // nil: unchanged; zero key: remove
	ListenPort *uint16       // nil: unchanged; 0: pick a free port
	FwMark     *uint32       // nil: unchanged; 0: no mark
	// ListenTCP is tapwire's extension (set key tapwire_listen_tcp): the
	// TCP port that accepts tunnel streams; nil: unchanged; 0: none.
	ListenTCP    *uint16
	ReplacePeers bool         // remove all peers before applying Peers
	Peers        []PeerConfig // in the order sent; apply in this order
}

// PeerConfig is the part of a set=1 transaction that starts with a
// public_key line.
type PeerConfig struct {
	PublicKey           protocol.Key
	Remove              bool            // remove the peer; the other fields are empty
	UpdateOnly          bool            // do not create the peer if it does not exist
	PresharedKey        *protocol.Key   // nil: unchanged; zero key: none
	Endpoint            *netip.AddrPort // nil: unchanged
	PersistentKeepalive *uint16         // seconds; nil: unchanged; 0: off
	// Transport is tapwire's extension (set key tapwire_transport): "udp",
	// "tcp" or "auto"; "" leaves it unchanged.
	Transport         string
	ReplaceAllowedIPs bool           // drop the peer's allowed IPs first
	RemoveAllowedIPs  []netip.Prefix // allowed_ip=-PREFIX: drop these (masked)
	AllowedIPs        []netip.Prefix // add these (masked), taking them from other peers
}

// DeviceStatus is what a get=1 reports.
type DeviceStatus struct {
	PrivateKey protocol.Key // zero: none (omitted)
	ListenPort uint16       // the port actually bound; 0: omitted
	FwMark     uint32       // 0: omitted
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

// Backend is the device the Server configures. Status and Apply may be
// called from several connections' goroutines, but the Server never runs an
// Apply concurrently with another Apply or with a Status.
type Backend interface {
	// Status returns the device's current configuration and counters.
	Status() DeviceStatus
	// Apply applies one transaction atomically: all of it or, when it
	// returns an error, none of it. An *Error (possibly wrapped) chooses the
	// errno reported to the client; a wrapped syscall.Errno is reported as
	// is; any other error is reported as ENOANO, as wireguard-go does.
	Apply(DeviceConfig) error
}

// Error is a protocol error carrying the errno reported to the client.
// Errno is positive (syscall.EINVAL is 22); the server writes it negated,
// "errno=-22", as wireguard-go does and as wg(8) expects.
type Error struct {
	Errno int
	Err   error
}

// Errorf returns an *Error with the given errno and a formatted message.
func Errorf(errno syscall.Errno, format string, args ...any) *Error {
	return &Error{Errno: int(errno), Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string {
	name := syscall.Errno(e.code()).Error()
	if e.Err == nil {
		return fmt.Sprintf("uapi: errno %d (%s)", e.code(), name)
	}
	return fmt.Sprintf("uapi: %v (errno %d, %s)", e.Err, e.code(), name)
}

func (e *Error) Unwrap() error { return e.Err }

// code returns the errno as a positive number, accepting negated values as
// wireguard-go's constants are, and ENOANO for none.
func (e *Error) code() int {
	switch {
	case e.Errno > 0:
		return e.Errno
	case e.Errno < 0:
		return -e.Errno
	}
	return int(syscall.ENOANO)
}

// errnoOf returns the positive errno to report for err (0 for nil).
func errnoOf(err error) int {
	if err == nil {
		return 0
	}
	var ue *Error
	if errors.As(err, &ue) {
		return ue.code()
	}
	var en syscall.Errno
	if errors.As(err, &en) && en != 0 {
		return int(en)
	}
	return int(syscall.ENOANO)
}
