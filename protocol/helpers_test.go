package protocol

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
)

// testKey returns a fixed private key named by name: BLAKE2s(name), clamped.
func testKey(name string) Key {
	k := Key(blake2s.Sum256([]byte(name)))
	k.clamp()
	return k
}

// testPSK returns a fixed preshared key named by name.
func testPSK(name string) Key { return Key(blake2s.Sum256([]byte("psk " + name))) }

// detRand returns a deterministic byte stream for ephemeral keys, cookie
// secrets and nonces, so that tests and fuzz seeds are reproducible.
func detRand(seed string) *rand.ChaCha8 { return rand.NewChaCha8(blake2s.Sum256([]byte(seed))) }

// testEpoch is the fixed "now" of the tests.
var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// party is one side of a test tunnel: its identity, its handshake with the
// other side, and its mac1/cookie state.
type party struct {
	local   *Local
	hs      *Handshake
	checker *CookieChecker   // for messages sent to us
	gen     *CookieGenerator // for messages we send
}

// newParties returns two parties, a and b, that know each other, with
// preshared keys pskA (a's setting for b) and pskB (b's setting for a).
// With seed != "" their ephemerals come from deterministic streams.
func newParties(pskA, pskB Key, seed string) (a, b *party) {
	la, lb := NewLocal(testKey("alice")), NewLocal(testKey("bob"))
	a = &party{local: la, hs: NewHandshake(la, lb.PublicKey(), pskA), checker: NewCookieChecker(la.PublicKey()), gen: NewCookieGenerator(lb.PublicKey())}
	b = &party{local: lb, hs: NewHandshake(lb, la.PublicKey(), pskB), checker: NewCookieChecker(lb.PublicKey()), gen: NewCookieGenerator(la.PublicKey())}
	if seed != "" {
		a.hs.rand = detRand(seed + " alice")
		b.hs.rand = detRand(seed + " bob")
	}
	return a, b
}

// handshake runs a whole handshake from initiator i to responder r at now,
// checking every step, and returns their keypairs.
func handshake(t testing.TB, i, r *party, now time.Time, idxI, idxR uint32) (kpI, kpR *Keypair) {
	t.Helper()
	var msg [InitiationSize]byte
	n, err := i.hs.CreateInitiation(now, idxI, msg[:])
	if err != nil || n != InitiationSize {
		t.Fatalf("CreateInitiation = %d, %v", n, err)
	}
	i.gen.AddMACs(msg[:])
	if !r.checker.CheckMAC1(msg[:]) {
		t.Fatal("responder rejects the initiation's mac1")
	}
	in, err := r.local.ConsumeInitiation(msg[:])
	if err != nil {
		t.Fatalf("ConsumeInitiation: %v", err)
	}
	if in.RemoteStatic != i.local.PublicKey() || in.SenderIndex != idxI {
		t.Fatalf("initiation from %v index %d, want %v index %d", in.RemoteStatic, in.SenderIndex, i.local.PublicKey(), idxI)
	}
	if err := r.hs.AcceptInitiation(in, now); err != nil {
		t.Fatalf("AcceptInitiation: %v", err)
	}
	if in.Timestamp != TAI64N(now) {
		t.Fatalf("timestamp %x, want %x", in.Timestamp, TAI64N(now))
	}
	var resp [ResponseSize]byte
	n, err = r.hs.CreateResponse(idxR, resp[:])
	if err != nil || n != ResponseSize {
		t.Fatalf("CreateResponse = %d, %v", n, err)
	}
	r.gen.AddMACs(resp[:])
	if !i.checker.CheckMAC1(resp[:]) {
		t.Fatal("initiator rejects the response's mac1")
	}
	sender, receiver, err := ParseResponseIndices(resp[:])
	if err != nil || sender != idxR || receiver != idxI {
		t.Fatalf("ParseResponseIndices = %d, %d, %v; want %d, %d", sender, receiver, err, idxR, idxI)
	}
	if err := i.hs.ConsumeResponse(resp[:]); err != nil {
		t.Fatalf("ConsumeResponse: %v", err)
	}
	// Both sides must now hold the same transcript and chaining key.
	if i.hs.chainKey != r.hs.chainKey || i.hs.hash != r.hs.hash {
		t.Fatal("chaining keys or transcript hashes differ after the handshake")
	}
	kpI, err = i.hs.DeriveKeypair(now)
	if err != nil {
		t.Fatalf("initiator DeriveKeypair: %v", err)
	}
	kpR, err = r.hs.DeriveKeypair(now)
	if err != nil {
		t.Fatalf("responder DeriveKeypair: %v", err)
	}
	if !kpI.Initiator || kpR.Initiator {
		t.Fatal("Initiator flags wrong")
	}
	if kpI.LocalIndex != idxI || kpI.RemoteIndex != idxR || kpR.LocalIndex != idxR || kpR.RemoteIndex != idxI {
		t.Fatalf("indices: initiator %d→%d, responder %d→%d", kpI.LocalIndex, kpI.RemoteIndex, kpR.LocalIndex, kpR.RemoteIndex)
	}
	if !kpI.Created.Equal(now) || !kpR.Created.Equal(now) {
		t.Fatal("Created is not now")
	}
	return kpI, kpR
}

// roundTrip seals an n-byte packet with from and opens it with to.
func roundTrip(t testing.TB, from, to *Keypair, n int, fill byte) {
	t.Helper()
	pkt := bytes.Repeat([]byte{fill}, n)
	for i := range pkt {
		pkt[i] += byte(i)
	}
	buf := make([]byte, TransportOverhead+PaddedLen(n, 0))
	copy(buf[TransportHeaderSize:], pkt)
	m, err := from.SealTransport(buf, n)
	if err != nil {
		t.Fatalf("seal %d bytes: %v", n, err)
	}
	if m != len(buf) || m%PaddingMultiple != 0 {
		t.Fatalf("seal %d bytes: message of %d bytes, want %d", n, m, len(buf))
	}
	plain, err := to.OpenTransport(buf[:m])
	if err != nil {
		t.Fatalf("open %d bytes: %v", n, err)
	}
	if len(plain) != PaddedLen(n, 0) || !bytes.Equal(plain[:n], pkt) || !isZero(plain[n:]) {
		t.Fatalf("open %d bytes: wrong plaintext (len %d)", n, len(plain))
	}
}
