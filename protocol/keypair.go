package protocol

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Keypair is the pair of transport keys one handshake derived (whitepaper
// section 5.4.5), with its send counter and receive replay window. It is
// safe for concurrent SealTransport and OpenTransport calls; the exported
// fields are set by DeriveKeypair and must not change afterwards.
type Keypair struct {
	LocalIndex  uint32    // our index: the receiver index of messages to us
	RemoteIndex uint32    // the peer's index: the receiver index we send
	Created     time.Time // when the handshake completed
	Initiator   bool      // whether we initiated the handshake

	send cipher.AEAD
	recv cipher.AEAD

	// The counter and the replay window are written for every message,
	// by the goroutines that send and receive in order, while others seal
	// and open with the fields above: each has a cache line of its own,
	// so that writing one does not take the line from those readers.
	_           cpu.CacheLinePad
	sendCounter atomic.Uint64 // next counter to send
	_           cpu.CacheLinePad
	mu          sync.Mutex // guards replay
	replay      ReplayWindow
}

func newKeypair(send, recv *sum) (*Keypair, error) {
	s, err := chacha20poly1305.New(send[:])
	if err != nil {
		return nil, err
	}
	r, err := chacha20poly1305.New(recv[:])
	if err != nil {
		return nil, err
	}
	return &Keypair{send: s, recv: r}, nil
}

// Errors of the transport path, wrapped once here so that returning them
// allocates nothing.
var (
	errSealShort     = fmt.Errorf("seal transport: %w", ErrShortBuffer)
	errSealType      = fmt.Errorf("seal transport: %w: not a transport message type", ErrMalformed)
	errSealLength    = fmt.Errorf("seal transport: %w: negative length or MTU", ErrMalformed)
	errSealExhausted = fmt.Errorf("seal transport: %w", ErrKeypairExhausted)
	errOpenShort     = fmt.Errorf("open transport: %w: shorter than %d bytes", ErrMalformed, TransportOverhead)
	errOpenType      = fmt.Errorf("open transport: %w: not a transport message", ErrMalformed)
	errOpenIndex     = fmt.Errorf("open transport: %w: receiver index is not this keypair's", ErrMalformed)
	errOpenExhausted = fmt.Errorf("open transport: %w", ErrKeypairExhausted)
	errOpenAuth      = fmt.Errorf("open transport: %w", ErrAuth)
	errOpenReplay    = fmt.Errorf("open transport: %w", ErrReplay)
	errParseShort    = fmt.Errorf("parse transport header: %w: shorter than %d bytes", ErrMalformed, TransportOverhead)
	errParseType     = fmt.Errorf("parse transport header: %w: not a transport message", ErrMalformed)
)

// SealTransport encrypts, in place, the packet buf[TransportHeaderSize :
// TransportHeaderSize+n] into a transport message: the header goes into
// buf[:TransportHeaderSize], zero padding up to a multiple of
// PaddingMultiple follows the packet, then the tag. len(buf) must be at
// least TransportHeaderSize + PaddedLen(n, 0) + TagSize. It returns the
// message length. n == 0 makes a keepalive. Each call takes the next
// counter; past RejectAfterMessages it fails with ErrKeypairExhausted (the
// engine rekeys long before, at RekeyAfterMessages). It does not allocate.
//
// wireguard-go pads to a multiple of 16 but never beyond the tunnel MTU;
// SealTransportMTU does that.
func (kp *Keypair) SealTransport(buf []byte, n int) (int, error) {
	return kp.SealTransportMTU(buf, n, 0)
}

// SealTransportMTU is SealTransport with the padding of PaddedLen(n, mtu):
// to a multiple of 16 but not beyond mtu (no limit when mtu is 0), as
// wireguard-go pads. Passing it the unpadded length n keeps messages of
// MTU-sized packets within the path MTU.
func (kp *Keypair) SealTransportMTU(buf []byte, n, mtu int) (int, error) {
	return kp.SealTransportType(buf, n, mtu, TypeTransport)
}

// SealTransportType is SealTransportMTU for a message of type typ,
// TypeTransport or one of tapwire's transport types (see IsTransportType).
func (kp *Keypair) SealTransportType(buf []byte, n, mtu int, typ uint32) (int, error) {
	m, err := CheckSeal(buf, n, mtu, typ)
	if err != nil {
		return 0, err
	}
	counter, err := kp.TakeCounter()
	if err != nil {
		return 0, err
	}
	kp.SealTransportCounter(buf, n, mtu, typ, counter)
	return m, nil
}

// CheckSeal returns the length of the message SealTransportType(buf, n,
// mtu, typ) would make, or the error it would fail with before taking a
// counter. It touches neither buf nor any keypair.
func CheckSeal(buf []byte, n, mtu int, typ uint32) (int, error) {
	if !IsTransportType(typ) {
		return 0, errSealType
	}
	if n < 0 || mtu < 0 {
		return 0, errSealLength
	}
	padded := PaddedLen(n, mtu)
	if len(buf)-TransportOverhead < padded {
		return 0, errSealShort
	}
	return TransportOverhead + padded, nil
}

// TakeCounter takes the next send counter for a later SealTransportCounter,
// or fails with ErrKeypairExhausted past RejectAfterMessages. A sender that
// seals on several goroutines takes the counters in the order its packets
// are to leave, and seals them in any order. A counter taken and never
// used is harmless: the receiver's window does not wait for it.
func (kp *Keypair) TakeCounter() (uint64, error) {
	counter := kp.sendCounter.Add(1) - 1
	if counter >= RejectAfterMessages {
		kp.sendCounter.Store(RejectAfterMessages)
		return 0, errSealExhausted
	}
	return counter, nil
}

// SealTransportCounter is SealTransportType with a counter from
// TakeCounter, each used once, and arguments CheckSeal accepted (with
// others it may panic). It returns the message length and does not
// allocate. Calls for different buffers may run concurrently.
func (kp *Keypair) SealTransportCounter(buf []byte, n, mtu int, typ uint32, counter uint64) int {
	padded := PaddedLen(n, mtu)
	clear(buf[TransportHeaderSize+n : TransportHeaderSize+padded])
	// The AEAD nonce is 32 zero bits then the little-endian counter. It is
	// built in buf[4:16], where the counter belongs anyway, and the
	// receiver index is written over its zeros after sealing: a nonce on
	// the stack would escape to the heap through the cipher.AEAD interface.
	binary.LittleEndian.PutUint32(buf[0:4], typ)
	binary.LittleEndian.PutUint32(buf[4:8], 0)
	binary.LittleEndian.PutUint64(buf[8:16], counter)
	kp.send.Seal(buf[:TransportHeaderSize], buf[4:16], buf[TransportHeaderSize:TransportHeaderSize+padded], typeAD(buf, typ))
	binary.LittleEndian.PutUint32(buf[4:8], kp.RemoteIndex)
	return TransportOverhead + padded
}

// typeAD is the additional data of a message of type typ: none for
// WireGuard's TypeTransport, as the protocol has it, and the four type
// bytes for tapwire's types, so that the type of a frame, fragment or probe
// message is authenticated and nobody on the path can turn a message of one
// kind into another.
func typeAD(msg []byte, typ uint32) []byte {
	if typ != TypeTransport {
		return msg[0:4]
	}
	return nil
}

// OpenTransport authenticates and decrypts, in place, transport message
// msg (of any transport type, see IsTransportType: the caller tells them
// apart) for this keypair and returns the plaintext, a subslice of msg, padding
// included (the engine trims it by the IP header's length; an empty
// plaintext is a keepalive). The counter is checked against, and entered
// into, the replay window only once the message is authentic. Errors:
// ErrMalformed (too short, not a transport message, or another receiver
// index), ErrKeypairExhausted (counter at or past RejectAfterMessages),
// ErrAuth (bad tag: msg's content is then garbage), ErrReplay. It does not
// allocate. The engine also drops messages for an Expired keypair.
func (kp *Keypair) OpenTransport(msg []byte) ([]byte, error) {
	plain, counter, err := kp.AuthenticateTransport(msg)
	if err != nil {
		return nil, err
	}
	if !kp.CheckReplay(counter) {
		return nil, errOpenReplay
	}
	return plain, nil
}

// AuthenticateTransport is OpenTransport without the replay window: it
// authenticates and decrypts msg in place and returns the plaintext and
// the message's counter. The caller must pass the counter to CheckReplay,
// in the order it handles messages, and use the plaintext only if that
// reports it fresh. Calls for different messages may run concurrently.
func (kp *Keypair) AuthenticateTransport(msg []byte) ([]byte, uint64, error) {
	if len(msg) < TransportOverhead {
		return nil, 0, errOpenShort
	}
	if typ := binary.LittleEndian.Uint32(msg[0:4]); !IsTransportType(typ) {
		return nil, 0, errOpenType
	}
	if binary.LittleEndian.Uint32(msg[4:8]) != kp.LocalIndex {
		return nil, 0, errOpenIndex
	}
	counter := binary.LittleEndian.Uint64(msg[offsetTransportCounter:])
	if counter >= RejectAfterMessages {
		return nil, 0, errOpenExhausted
	}
	// The nonce is built in msg[4:16] as in SealTransport.
	binary.LittleEndian.PutUint32(msg[4:8], 0)
	typ := binary.LittleEndian.Uint32(msg[0:4])
	plain, err := kp.recv.Open(msg[TransportHeaderSize:TransportHeaderSize], msg[4:16], msg[TransportHeaderSize:], typeAD(msg, typ))
	binary.LittleEndian.PutUint32(msg[4:8], kp.LocalIndex)
	if err != nil {
		return nil, 0, errOpenAuth
	}
	return plain, counter, nil
}

// CheckReplay enters counter, of a message AuthenticateTransport accepted,
// into the replay window, and reports whether it was fresh (not seen and
// not too old).
func (kp *Keypair) CheckReplay(counter uint64) bool {
	kp.mu.Lock()
	fresh := kp.replay.Check(counter)
	kp.mu.Unlock()
	return fresh
}

// SendCount returns how many counters SealTransport has used: the number of
// messages sealed so far (RejectAfterMessages once exhausted).
func (kp *Keypair) SendCount() uint64 {
	if n := kp.sendCounter.Load(); n < RejectAfterMessages {
		return n
	}
	return RejectAfterMessages
}

// Expired reports whether the keypair is older than RejectAfterTime at now,
// after which it must be neither used to send nor accepted for receiving.
func (kp *Keypair) Expired(now time.Time) bool {
	return kp.Created.Add(RejectAfterTime).Before(now)
}

// PaddedLen returns the length a packet of n bytes is padded to in a
// transport message, as wireguard-go computes it: up to a multiple of
// PaddingMultiple, but not beyond mtu (for a packet longer than mtu, a GSO
// batch, its last mtu-sized unit is padded). mtu 0 means no limit.
func PaddedLen(n, mtu int) int {
	if n < 0 {
		return 0
	}
	last := n
	if mtu <= 0 {
		return roundUp(n)
	}
	if last > mtu {
		last %= mtu
	}
	padded := roundUp(last)
	if padded > mtu {
		padded = mtu
	}
	return n + padded - last
}

func roundUp(n int) int { return (n + PaddingMultiple - 1) &^ (PaddingMultiple - 1) }

// ParseTransportHeader returns the receiver index (which names our
// Keypair) and the counter of transport message msg. The counter is not
// authenticated until OpenTransport succeeds.
func ParseTransportHeader(msg []byte) (receiver uint32, counter uint64, err error) {
	if len(msg) < TransportOverhead {
		return 0, 0, errParseShort
	}
	if typ := binary.LittleEndian.Uint32(msg[0:4]); !IsTransportType(typ) {
		return 0, 0, errParseType
	}
	return binary.LittleEndian.Uint32(msg[4:8]), binary.LittleEndian.Uint64(msg[offsetTransportCounter:]), nil
}

// MessageType returns the type of msg, its first four bytes read as a
// little-endian uint32 (the type byte and three reserved zero bytes), and
// whether msg is a well-formed message of a known type: an initiation,
// response or cookie reply of exactly its size, or a transport message of
// at least TransportOverhead bytes. It returns false for anything else,
// which the engine drops.
func MessageType(msg []byte) (uint32, bool) {
	if len(msg) < 4 {
		return 0, false
	}
	typ := binary.LittleEndian.Uint32(msg[0:4])
	switch typ {
	case TypeInitiation:
		return typ, len(msg) == InitiationSize
	case TypeResponse:
		return typ, len(msg) == ResponseSize
	case TypeCookieReply:
		return typ, len(msg) == CookieReplySize
	case TypeTransport, TypeFrame, TypeFragment, TypeProbe:
		return typ, len(msg) >= TransportOverhead
	}
	return typ, false
}
