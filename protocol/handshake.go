package protocol

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"
)

// Local is this side's static identity: its Curve25519 key pair and what
// is precomputed from it. It is immutable, and so safe for concurrent use;
// to change the private key, make a new Local (and new Handshakes and a new
// CookieChecker).
type Local struct {
	private *ecdh.PrivateKey
	public  Key
	// hash0 is HASH(initialHash || public): the responder's transcript
	// hash before it reads an initiation.
	hash0 sum
}

// NewLocal returns the identity of private key private (clamped as
// Curve25519 wants, as wg does). It panics only if the platform refuses
// X25519 (FIPS 140-only mode), where WireGuard cannot run at all.
func NewLocal(private Key) *Local {
	priv, err := newPrivate(private)
	if err != nil {
		panic("protocol: NewLocal: " + err.Error())
	}
	l := &Local{private: priv, public: Key(priv.PublicKey().Bytes())}
	hash2(&l.hash0, []byte(initialHash), l.public[:])
	return l
}

// PublicKey returns the public key of the identity.
func (l *Local) PublicKey() Key { return l.public }

// handshakeState is where a Handshake is in the protocol.
type handshakeState uint8

const (
	stateZeroed             handshakeState = iota // nothing in flight
	stateInitiationCreated                        // initiator: sent message 1
	stateInitiationConsumed                       // responder: accepted message 1
	stateResponseCreated                          // responder: sent message 2
	stateResponseConsumed                         // initiator: accepted message 2
)

func (s handshakeState) String() string {
	switch s {
	case stateZeroed:
		return "zeroed"
	case stateInitiationCreated:
		return "initiation created"
	case stateInitiationConsumed:
		return "initiation consumed"
	case stateResponseCreated:
		return "response created"
	case stateResponseConsumed:
		return "response consumed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Handshake is the Noise_IKpsk2 handshake state with one peer, in both
// roles (whitepaper section 5.4). It also keeps the newest initiation
// timestamp and the time of the last accepted initiation from that peer,
// which protect the responder against replayed and flooded initiations.
//
// A Handshake is safe for concurrent use: every method takes an internal
// mutex. Each step checks that the one before it happened:
//
//	initiator: CreateInitiation → ConsumeResponse → DeriveKeypair
//	responder: Local.ConsumeInitiation → AcceptInitiation → CreateResponse → DeriveKeypair
//
// CreateInitiation and AcceptInitiation start over from any state (a new
// initiation replaces one in flight, and an accepted initiation from the
// peer replaces our own, as in wireguard-go).
type Handshake struct {
	local  *Local
	remote Key
	// remoteHash0 is HASH(initialHash || remote): the initiator's
	// transcript hash before it writes an initiation.
	remoteHash0 sum
	// staticStatic is DH(local static, remote static), precomputed; all
	// zeros when remote is a low-order key, which fails every handshake.
	staticStatic Key
	rand         io.Reader // ephemeral keys; nil is crypto/rand (tests set it)

	mu              sync.Mutex
	state           handshakeState
	psk             Key
	hash            sum
	chainKey        sum
	localEphemeral  Key // the initiator's ephemeral private key, wiped once used
	remoteEphemeral Key
	localIndex      uint32
	remoteIndex     uint32
	lastTimestamp   [TimestampSize]byte
	lastInitiation  time.Time // when the last initiation was accepted
}

// NewHandshake returns the handshake state of local with the peer whose
// static public key is remote, using preshared key psk (the zero Key when
// the peer has none). It precomputes DH(local static, remote static) and the
// first transcript hash, as wireguard-go does. A low-order remote key is not
// an error here; every handshake with it fails with ErrInvalidKey.
func NewHandshake(local *Local, remote Key, psk Key) *Handshake {
	h := &Handshake{local: local, remote: remote, psk: psk}
	hash2(&h.remoteHash0, []byte(initialHash), remote[:])
	if ss, err := dh(local.private, &remote); err == nil {
		h.staticStatic = ss
	}
	return h
}

// NewHandshakePair returns two handshake states of local with remote, as two
// calls of NewHandshake would, computing the Curve25519 of the static keys
// once: one for the handshakes this side initiates and one for those it
// answers, so that a crossing initiation disturbs neither.
func NewHandshakePair(local *Local, remote Key, psk Key) (initiator, responder *Handshake) {
	initiator = NewHandshake(local, remote, psk)
	responder = &Handshake{local: local, remote: remote, psk: psk,
		remoteHash0: initiator.remoteHash0, staticStatic: initiator.staticStatic}
	return initiator, responder
}

// Remote returns the peer's static public key.
func (h *Handshake) Remote() Key { return h.remote }

// SetPresharedKey replaces the preshared key (the zero Key for none). A
// handshake in flight uses the new key from its next step.
func (h *Handshake) SetPresharedKey(psk Key) {
	h.mu.Lock()
	h.psk = psk
	h.mu.Unlock()
}

// LocalIndex returns the sender index of the handshake message in flight
// (given to CreateInitiation or CreateResponse), or 0 when none is.
func (h *Handshake) LocalIndex() uint32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == stateZeroed {
		return 0
	}
	return h.localIndex
}

// Clear forgets the handshake in flight, if any, with its ephemeral secrets.
// It keeps the replay and flood state (last timestamp, last initiation time),
// as wireguard-go's Clear does.
func (h *Handshake) Clear() {
	h.mu.Lock()
	h.clearLocked()
	h.mu.Unlock()
}

func (h *Handshake) clearLocked() {
	clear(h.hash[:])
	clear(h.chainKey[:])
	clear(h.remoteEphemeral[:])
	clear(h.localEphemeral[:])
	h.localIndex, h.remoteIndex = 0, 0
	h.state = stateZeroed
}

// CreateInitiation starts a handshake as initiator: it writes message 1 into
// out[:InitiationSize] and returns InitiationSize. senderIndex is the local
// index the engine chose for this handshake (the peer echoes it as the
// receiver index of its response). The timestamp is TAI64N(now). mac1 and
// mac2 are left zero: CookieGenerator.AddMACs fills them in, and must be
// called before sending.
func (h *Handshake) CreateInitiation(now time.Time, senderIndex uint32, out []byte) (int, error) {
	if len(out) < InitiationSize {
		return 0, fmt.Errorf("create initiation: %w: have %d bytes, need %d", ErrShortBuffer, len(out), InitiationSize)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if isZero(h.staticStatic[:]) {
		return 0, fmt.Errorf("create initiation: remote static key: %w", ErrInvalidKey)
	}
	ephemeral, ephemeralPublic, err := newEphemeral(h.rand)
	if err != nil {
		return 0, fmt.Errorf("create initiation: %w", err)
	}
	defer clear(ephemeral[:]) // h keeps its own copy until the response

	msg := out[:InitiationSize]
	clear(msg)
	binary.LittleEndian.PutUint32(msg[0:4], TypeInitiation)
	binary.LittleEndian.PutUint32(msg[4:8], senderIndex)
	copy(msg[8:40], ephemeralPublic[:])

	hash := h.remoteHash0
	var chainKey, key sum
	kdf1(&chainKey, []byte(initialChainKey), ephemeralPublic[:])
	mixHash(&hash, ephemeralPublic[:])

	// static: AEAD(k, 0, S_i^pub, h) with (C, k) = KDF2(C, DH(E_i, S_r))
	ss, err := dhEphemeral(&ephemeral, &h.remote)
	if err != nil {
		return 0, fmt.Errorf("create initiation: %w", err)
	}
	kdf2(&chainKey, &key, chainKey[:], ss[:])
	clear(ss[:])
	if _, err := aeadSeal(&key, msg[40:40], h.local.public[:], hash[:]); err != nil {
		return 0, fmt.Errorf("create initiation: %w", err)
	}
	mixHash(&hash, msg[40:88])

	// timestamp: AEAD(k, 0, TAI64N, h) with (C, k) = KDF2(C, DH(S_i, S_r))
	kdf2(&chainKey, &key, chainKey[:], h.staticStatic[:])
	ts := TAI64N(now)
	if _, err := aeadSeal(&key, msg[88:88], ts[:], hash[:]); err != nil {
		return 0, fmt.Errorf("create initiation: %w", err)
	}
	mixHash(&hash, msg[88:116])
	clear(key[:])

	h.hash, h.chainKey = hash, chainKey
	h.localEphemeral = ephemeral
	clear(h.remoteEphemeral[:])
	h.localIndex = senderIndex
	h.remoteIndex = 0
	h.state = stateInitiationCreated
	return InitiationSize, nil
}

// Initiation is a handshake initiation that Local.ConsumeInitiation
// decrypted: who claims to have sent it, and the Noise state to go on with.
// The claim is proven only by Handshake.AcceptInitiation, which decrypts the
// timestamp with DH(static, static): anyone can encrypt any static public
// key to us.
type Initiation struct {
	RemoteStatic Key    // the initiator's static public key (as claimed)
	SenderIndex  uint32 // the initiator's index: our receiver index for it
	// Timestamp is the initiator's TAI64N timestamp. It is authenticated
	// with the peer's precomputed DH(static, static), so it is set by a
	// successful AcceptInitiation (zero before).
	Timestamp [TimestampSize]byte

	ephemeral          Key
	encryptedTimestamp [TimestampSize + TagSize]byte
	hash               sum
	chainKey           sum
}

// ConsumeInitiation decrypts, as responder, the static key of initiation
// msg (InitiationSize bytes). It touches no peer state and does not check
// mac1: the engine checks mac1 (CookieChecker.CheckMAC1) first, then finds
// the peer by RemoteStatic and calls AcceptInitiation on its Handshake.
// Errors: ErrMalformed (size or type), ErrInvalidKey (a low-order
// ephemeral), ErrAuth (not encrypted to us).
func (l *Local) ConsumeInitiation(msg []byte) (*Initiation, error) {
	if len(msg) != InitiationSize || binary.LittleEndian.Uint32(msg[0:4]) != TypeInitiation {
		return nil, fmt.Errorf("consume initiation: %w: want %d bytes of type %d", ErrMalformed, InitiationSize, TypeInitiation)
	}
	in := &Initiation{SenderIndex: binary.LittleEndian.Uint32(msg[4:8])}
	copy(in.ephemeral[:], msg[8:40])
	copy(in.encryptedTimestamp[:], msg[88:116])

	hash2(&in.hash, l.hash0[:], in.ephemeral[:])
	kdf1(&in.chainKey, []byte(initialChainKey), in.ephemeral[:])
	ss, err := dh(l.private, &in.ephemeral)
	if err != nil {
		return nil, fmt.Errorf("consume initiation: ephemeral: %w", err)
	}
	var key sum
	kdf2(&in.chainKey, &key, in.chainKey[:], ss[:])
	clear(ss[:])
	_, err = aeadOpen(&key, in.RemoteStatic[:0], msg[40:88], in.hash[:])
	clear(key[:])
	if err != nil {
		return nil, fmt.Errorf("consume initiation: static key: %w", err)
	}
	mixHash(&in.hash, msg[40:88])
	return in, nil
}

// AcceptInitiation takes, as responder, an initiation from this
// handshake's peer: it authenticates the timestamp with the precomputed
// DH(static, static), rejects it if the timestamp is not newer than the
// last accepted one (ErrTimestamp: a replay) or if it comes less than
// HandshakeInitiationRate after the last accepted one (ErrFlood), as
// wireguard-go does, and then replaces any handshake in flight with it.
// now is the time of arrival. CreateResponse comes next. Other errors:
// ErrPeerMismatch, ErrAuth, ErrInvalidKey, ErrMalformed (nil in).
func (h *Handshake) AcceptInitiation(in *Initiation, now time.Time) error {
	if in == nil {
		return fmt.Errorf("accept initiation: %w: nil initiation", ErrMalformed)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !in.RemoteStatic.Equal(h.remote) {
		return fmt.Errorf("accept initiation: %w", ErrPeerMismatch)
	}
	if isZero(h.staticStatic[:]) {
		return fmt.Errorf("accept initiation: remote static key: %w", ErrInvalidKey)
	}
	hash, chainKey := in.hash, in.chainKey
	var key sum
	kdf2(&chainKey, &key, chainKey[:], h.staticStatic[:])
	var ts [TimestampSize]byte
	_, err := aeadOpen(&key, ts[:0], in.encryptedTimestamp[:], hash[:])
	clear(key[:])
	if err != nil {
		return fmt.Errorf("accept initiation: timestamp: %w", err)
	}
	mixHash(&hash, in.encryptedTimestamp[:])

	if !timestampAfter(ts, h.lastTimestamp) {
		return fmt.Errorf("accept initiation: %w", ErrTimestamp)
	}
	if !h.lastInitiation.IsZero() && now.Sub(h.lastInitiation) <= HandshakeInitiationRate {
		return fmt.Errorf("accept initiation: %w", ErrFlood)
	}

	h.clearLocked()
	h.hash, h.chainKey = hash, chainKey
	h.remoteIndex = in.SenderIndex
	h.remoteEphemeral = in.ephemeral
	h.lastTimestamp = ts
	if now.After(h.lastInitiation) {
		h.lastInitiation = now
	}
	h.state = stateInitiationConsumed
	in.Timestamp = ts
	clear(in.hash[:])
	clear(in.chainKey[:])
	return nil
}

// CreateResponse answers, as responder, the initiation accepted by
// AcceptInitiation: it writes message 2 into out[:ResponseSize] and returns
// ResponseSize. senderIndex is the local index the engine chose for the
// session (the initiator's transport messages carry it). mac1 and mac2 are
// left zero for CookieGenerator.AddMACs. DeriveKeypair comes next.
func (h *Handshake) CreateResponse(senderIndex uint32, out []byte) (int, error) {
	if len(out) < ResponseSize {
		return 0, fmt.Errorf("create response: %w: have %d bytes, need %d", ErrShortBuffer, len(out), ResponseSize)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateInitiationConsumed {
		return 0, fmt.Errorf("create response: %w (%v)", ErrState, h.state)
	}
	ephemeral, ephemeralPublic, err := newEphemeral(h.rand)
	if err != nil {
		return 0, fmt.Errorf("create response: %w", err)
	}

	hash, chainKey := h.hash, h.chainKey
	mixHash(&hash, ephemeralPublic[:])
	kdf1(&chainKey, chainKey[:], ephemeralPublic[:])
	defer clear(ephemeral[:])
	ss, err := dhEphemeral(&ephemeral, &h.remoteEphemeral)
	if err != nil {
		return 0, fmt.Errorf("create response: remote ephemeral: %w", err)
	}
	kdf1(&chainKey, chainKey[:], ss[:])
	ss, err = dhEphemeral(&ephemeral, &h.remote)
	if err != nil {
		return 0, fmt.Errorf("create response: remote static: %w", err)
	}
	kdf1(&chainKey, chainKey[:], ss[:])
	clear(ss[:])

	var tau, key sum
	kdf3(&chainKey, &tau, &key, chainKey[:], h.psk[:])
	mixHash(&hash, tau[:])
	clear(tau[:])

	msg := out[:ResponseSize]
	clear(msg)
	binary.LittleEndian.PutUint32(msg[0:4], TypeResponse)
	binary.LittleEndian.PutUint32(msg[4:8], senderIndex)
	binary.LittleEndian.PutUint32(msg[8:12], h.remoteIndex)
	copy(msg[12:44], ephemeralPublic[:])
	_, err = aeadSeal(&key, msg[44:44], nil, hash[:])
	clear(key[:])
	if err != nil {
		return 0, fmt.Errorf("create response: %w", err)
	}
	mixHash(&hash, msg[44:60])

	h.hash, h.chainKey = hash, chainKey
	clear(ephemeral[:]) // the responder's ephemeral is done with
	h.localIndex = senderIndex
	h.state = stateResponseCreated
	return ResponseSize, nil
}

// ParseResponseIndices returns the sender index (the responder's) and the
// receiver index (ours, given to CreateInitiation) of response msg, which
// the engine uses to find the Handshake. It checks only size and type.
func ParseResponseIndices(msg []byte) (sender, receiver uint32, err error) {
	if len(msg) != ResponseSize || binary.LittleEndian.Uint32(msg[0:4]) != TypeResponse {
		return 0, 0, fmt.Errorf("parse response: %w: want %d bytes of type %d", ErrMalformed, ResponseSize, TypeResponse)
	}
	return binary.LittleEndian.Uint32(msg[offsetSender:]), binary.LittleEndian.Uint32(msg[offsetResponseReceiver:]), nil
}

// ParseHandshakeSender returns the sender index of an initiation or a
// response (what CookieChecker.CreateReply wants as its receiver index).
func ParseHandshakeSender(msg []byte) (uint32, error) {
	typ, ok := MessageType(msg)
	if !ok || (typ != TypeInitiation && typ != TypeResponse) {
		return 0, fmt.Errorf("parse handshake sender: %w: not an initiation or a response", ErrMalformed)
	}
	return binary.LittleEndian.Uint32(msg[offsetSender:]), nil
}

// ConsumeResponse takes, as initiator, response msg to the initiation made
// by CreateInitiation (whose sender index msg must name as receiver). It
// does not check mac1: the engine checks it first. On success the handshake
// is complete and DeriveKeypair comes next; on failure the initiation stays
// in flight. Errors: ErrMalformed, ErrState (no initiation in flight),
// ErrInvalidKey, ErrAuth (forged, or a preshared key that differs).
func (h *Handshake) ConsumeResponse(msg []byte) error {
	sender, receiver, err := ParseResponseIndices(msg)
	if err != nil {
		return fmt.Errorf("consume response: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateInitiationCreated {
		return fmt.Errorf("consume response: %w (%v)", ErrState, h.state)
	}
	if receiver != h.localIndex {
		return fmt.Errorf("consume response: %w: receiver index %d is not the initiation's %d", ErrMalformed, receiver, h.localIndex)
	}
	var remoteEphemeral Key
	copy(remoteEphemeral[:], msg[12:44])

	hash, chainKey := h.hash, h.chainKey
	mixHash(&hash, remoteEphemeral[:])
	kdf1(&chainKey, chainKey[:], remoteEphemeral[:])
	ss, err := dhEphemeral(&h.localEphemeral, &remoteEphemeral)
	if err != nil {
		return fmt.Errorf("consume response: ephemeral: %w", err)
	}
	kdf1(&chainKey, chainKey[:], ss[:])
	ss, err = dh(h.local.private, &remoteEphemeral)
	if err != nil {
		return fmt.Errorf("consume response: ephemeral: %w", err)
	}
	kdf1(&chainKey, chainKey[:], ss[:])
	clear(ss[:])

	var tau, key sum
	kdf3(&chainKey, &tau, &key, chainKey[:], h.psk[:])
	mixHash(&hash, tau[:])
	clear(tau[:])
	_, err = aeadOpen(&key, nil, msg[44:60], hash[:])
	clear(key[:])
	if err != nil {
		return fmt.Errorf("consume response: %w", err)
	}
	mixHash(&hash, msg[44:60])

	h.hash, h.chainKey = hash, chainKey
	h.remoteEphemeral = remoteEphemeral
	h.remoteIndex = sender
	clear(h.localEphemeral[:]) // used up: the keys come from chainKey now
	h.state = stateResponseConsumed
	return nil
}

// DeriveKeypair ends a completed handshake (after CreateResponse as
// responder, after ConsumeResponse as initiator): it derives the transport
// keys, (T_send, T_recv) = KDF2(C, ε) for the initiator and the reverse for
// the responder, clears the handshake's ephemeral secrets and returns the
// Keypair, created at now. Its LocalIndex is the index given to
// CreateInitiation or CreateResponse, its RemoteIndex the peer's.
//
// The responder should not send with its new keypair before the initiator
// has used it (the first transport message received on it confirms the
// handshake), as the whitepaper and wireguard-go do.
func (h *Handshake) DeriveKeypair(now time.Time) (*Keypair, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var send, recv sum
	var initiator bool
	switch h.state {
	case stateResponseConsumed:
		kdf2(&send, &recv, h.chainKey[:], nil)
		initiator = true
	case stateResponseCreated:
		kdf2(&recv, &send, h.chainKey[:], nil)
	default:
		return nil, fmt.Errorf("derive keypair: %w (%v)", ErrState, h.state)
	}
	kp, err := newKeypair(&send, &recv)
	clear(send[:])
	clear(recv[:])
	if err != nil {
		return nil, fmt.Errorf("derive keypair: %w", err)
	}
	kp.LocalIndex, kp.RemoteIndex = h.localIndex, h.remoteIndex
	kp.Created = now
	kp.Initiator = initiator
	h.clearLocked()
	return kp, nil
}

// timestampAfter reports whether TAI64N timestamp a is later than b (both
// are big-endian, so byte order is time order).
func timestampAfter(a, b [TimestampSize]byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

// ReplayState is what a responder remembers of a peer's initiations to
// refuse replays and floods: the latest timestamp and when the last was
// accepted. It outlives a Handshake when the local key changes.
type ReplayState struct {
	timestamp [TimestampSize]byte
	accepted  time.Time
}

// ReplayState returns h's replay protection.
func (h *Handshake) ReplayState() ReplayState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return ReplayState{timestamp: h.lastTimestamp, accepted: h.lastInitiation}
}

// SetReplayState makes h refuse what s refused (initiations with a
// timestamp not after s's), keeping whichever protection is further along.
func (h *Handshake) SetReplayState(s ReplayState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if timestampAfter(s.timestamp, h.lastTimestamp) {
		h.lastTimestamp = s.timestamp
	}
	if s.accepted.After(h.lastInitiation) {
		h.lastInitiation = s.accepted
	}
}
