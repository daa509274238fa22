package protocol

import (
	"errors"
	"time"
)

// Message types: the first byte of every WireGuard message, followed by
// three reserved zero bytes, so that the first four bytes read as a
// little-endian uint32 give the type (see MessageType).
const (
	TypeInitiation  = 1 // handshake initiation (message 1)
	TypeResponse    = 2 // handshake response (message 2)
	TypeCookieReply = 3 // cookie reply to a handshake message sent under load
	TypeTransport   = 4 // transport data (and keepalives)

	// TypeFrame is tapwire's transport message for Ethernet frames (an
	// interface in TAP mode): a transport message in every respect but its
	// first reserved byte, which is 1. WireGuard implementations read the
	// four bytes as type 0x104, which they do not know, and drop the
	// message, so a frame is never delivered as an IP packet; a tapwire
	// peer in TUN mode recognises it and reports the mismatch. Its
	// plaintext is the frame's length as a big-endian uint16, the frame,
	// then padding (see the tunnel package).
	TypeFrame = TypeTransport | 1<<8

	// TypeFragment is tapwire's transport message for a piece of a frame
	// (or IP packet) too big for one datagram on the path to a peer: a
	// transport message whose first reserved byte is 2 (0x204), its type
	// authenticated as TypeFrame's is. Its plaintext is a fragment header
	// and a slice of the frame (see package fragment). WireGuard
	// implementations drop it as an unknown type.
	TypeFragment = TypeTransport | 2<<8

	// TypeProbe is tapwire's path MTU probe and its reply: a transport
	// message whose first reserved byte is 3 (0x304), its type
	// authenticated. A probe is padded to the datagram size it tests and a
	// tapwire peer answers it with a short reply; WireGuard
	// implementations drop it as an unknown type, delivering nothing and
	// counting no error.
	TypeProbe = TypeTransport | 3<<8
)

// IsTransportType reports whether typ is a transport message type:
// WireGuard's TypeTransport or one of tapwire's TypeFrame, TypeFragment and
// TypeProbe, which share its header, encryption and counters.
func IsTransportType(typ uint32) bool {
	switch typ {
	case TypeTransport, TypeFrame, TypeFragment, TypeProbe:
		return true
	}
	return false
}

// Wire sizes, in bytes.
const (
	InitiationSize      = 148 // handshake initiation, macs included
	ResponseSize        = 92  // handshake response, macs included
	CookieReplySize     = 64  // cookie reply
	TransportHeaderSize = 16  // transport message header: type, receiver index, counter

	// TransportOverhead is what a transport message adds to its (padded)
	// packet: the header and the Poly1305 tag. It is also the size of a
	// keepalive, which carries an empty packet.
	TransportOverhead = TransportHeaderSize + TagSize
	KeepaliveSize     = TransportOverhead

	// PaddingMultiple is the multiple transport plaintexts are padded to
	// (with zeros, never beyond the MTU; see PaddedLen).
	PaddingMultiple = 16

	TagSize         = 16 // Poly1305 tag
	MACSize         = 16 // mac1, mac2 and cookies: keyed BLAKE2s-128
	TimestampSize   = 12 // TAI64N
	CookieNonceSize = 24 // XChaCha20-Poly1305 nonce of a cookie reply
)

// Offsets of the fields of handshake messages that an engine needs without
// decrypting anything.
const (
	offsetSender           = 4  // initiation and response: sender index
	offsetResponseReceiver = 8  // response: receiver index
	offsetTransportCounter = 8  // transport: 64-bit counter
	offsetCookieReceiver   = 4  // cookie reply: receiver index
	offsetCookieNonce      = 8  // cookie reply: 24-byte nonce
	offsetCookieBody       = 32 // cookie reply: encrypted cookie and tag
)

// Timers and limits of the whitepaper (section 6), with the values
// wireguard-go uses. The engine runs the timers; this package only enforces
// the message limits on a Keypair and the initiation rate on a Handshake.
const (
	// RekeyAfterMessages: after sending this many messages with a keypair,
	// the initiator of that keypair starts a new handshake.
	RekeyAfterMessages uint64 = 1 << 60
	// RejectAfterMessages: a keypair never sends nor accepts a counter at
	// or above this value (2^64 - 2^13 - 1, as in the whitepaper and
	// wireguard-go; SealTransport fails with ErrKeypairExhausted).
	RejectAfterMessages uint64 = 1<<64 - 1<<13 - 1

	// RekeyAfterTime: the initiator of a keypair starts a new handshake
	// once the keypair is this old (when it next sends).
	RekeyAfterTime = 120 * time.Second
	// RejectAfterTime: a keypair older than this is neither used to send
	// nor accepted for receiving (see Keypair.Expired).
	RejectAfterTime = 180 * time.Second
	// RekeyAttemptTime: how long an engine retries a handshake before
	// giving up (and dropping the packets staged for it).
	RekeyAttemptTime = 90 * time.Second
	// RekeyTimeout: how long to wait for a response before resending an
	// initiation; wireguard-go adds up to RekeyTimeoutJitterMax to it.
	RekeyTimeout          = 5 * time.Second
	RekeyTimeoutJitterMax = 334 * time.Millisecond
	// MaxTimerHandshakes is how many retries fit in RekeyAttemptTime.
	MaxTimerHandshakes = int(RekeyAttemptTime / RekeyTimeout)
	// KeepaliveTimeout: send a keepalive when data was received and
	// nothing was sent for this long.
	KeepaliveTimeout = 10 * time.Second
	// CookieRefreshTime: lifetime of a cookie held by the initiator, and
	// how often the responder's cookie secret changes.
	CookieRefreshTime = 120 * time.Second
	// HandshakeInitiationRate: a peer's initiations are accepted at most
	// once per this interval (flood protection in AcceptInitiation).
	HandshakeInitiationRate = time.Second / 50
	// UnderLoadAfterTime: wireguard-go stays "under load" (asking for
	// cookies) this long after its handshake queue was last congested.
	UnderLoadAfterTime = time.Second
	// ZeroKeyMaterialTime: wireguard-go erases all keys of a peer when no
	// new keypair was made for this long (3 × RejectAfterTime).
	ZeroKeyMaterialTime = 3 * RejectAfterTime
)

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrMalformed: a message of the wrong size or type, or whose
	// indices do not match the state it was given to.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrAuth: an AEAD tag (or a mac) did not verify: a forged, corrupted
	// or foreign message, or one made with another key (a wrong preshared
	// key included).
	ErrAuth = errors.New("protocol: message authentication failed")
	// ErrReplay: an authentic transport message whose counter was already
	// received or is behind the replay window.
	ErrReplay = errors.New("protocol: replayed transport counter")
	// ErrKeypairExhausted: the keypair reached RejectAfterMessages.
	ErrKeypairExhausted = errors.New("protocol: keypair exhausted (RejectAfterMessages reached)")
	// ErrTimestamp: an initiation whose timestamp is not newer than the
	// last one accepted from that peer (a replayed initiation).
	ErrTimestamp = errors.New("protocol: initiation timestamp not newer than the last accepted one (replay)")
	// ErrFlood: an initiation within HandshakeInitiationRate of the last
	// one accepted from that peer.
	ErrFlood = errors.New("protocol: initiations from this peer arrive faster than HandshakeInitiationRate")
	// ErrCookie: a cookie reply that cannot be used (no handshake message
	// was sent to match it, or it does not decrypt).
	ErrCookie = errors.New("protocol: unusable cookie reply")
	// ErrState: a handshake step called out of order (for example
	// CreateResponse before AcceptInitiation, or DeriveKeypair twice).
	ErrState = errors.New("protocol: handshake is not in the state this step needs")
	// ErrShortBuffer: the output buffer is too small for the message.
	ErrShortBuffer = errors.New("protocol: buffer too small")
	// ErrInvalidKey: a Diffie-Hellman result was all zeros (a low-order
	// public key), or the remote static key is such a key.
	ErrInvalidKey = errors.New("protocol: invalid public key (zero Diffie-Hellman result)")
	// ErrPeerMismatch: AcceptInitiation was given an initiation whose
	// static key is not the handshake's remote key.
	ErrPeerMismatch = errors.New("protocol: initiation is from another peer")
)
