package protocol

import (
	"errors"
	"testing"
	"time"
)

func TestHandshakeTable(t *testing.T) {
	psk := testPSK("shared")
	for _, tc := range []struct {
		name         string
		psk          Key
		bobInitiates bool
		seed         string
	}{
		{"no psk, alice initiates", Key{}, false, ""},
		{"no psk, bob initiates", Key{}, true, ""},
		{"psk, alice initiates", psk, false, ""},
		{"psk, bob initiates", psk, true, ""},
		{"psk, deterministic ephemerals", psk, false, "table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newParties(tc.psk, tc.psk, tc.seed)
			i, r := a, b
			if tc.bobInitiates {
				i, r = b, a
			}
			kpI, kpR := handshake(t, i, r, testEpoch, 0x11111111, 0x22222222)
			for _, n := range []int{0, 1, 15, 16, 1400, 65535} {
				roundTrip(t, kpI, kpR, n, 0xa0)
				roundTrip(t, kpR, kpI, n, 0x05)
			}
			if kpI.SendCount() != 6 || kpR.SendCount() != 6 {
				t.Errorf("SendCount = %d, %d; want 6", kpI.SendCount(), kpR.SendCount())
			}
			// The handshake is spent: a second keypair cannot come of it.
			if _, err := i.hs.DeriveKeypair(testEpoch); !errors.Is(err, ErrState) {
				t.Errorf("second DeriveKeypair: %v, want ErrState", err)
			}
			// And a new one works again, with fresh keys.
			kpI2, kpR2 := handshake(t, i, r, testEpoch.Add(time.Second), 3, 4)
			roundTrip(t, kpI2, kpR2, 100, 1)
			buf := make([]byte, 64)
			m, _ := kpI2.SealTransport(buf, 16)
			kpR.LocalIndex = kpR2.LocalIndex // so that only the keys differ
			if _, err := kpR.OpenTransport(buf[:m]); !errors.Is(err, ErrAuth) {
				t.Errorf("old keypair opened a new keypair's message: %v", err)
			}
		})
	}
}

// TestDeterministicHandshake pins the bytes of a handshake made with fixed
// keys, ephemerals and time, so that any change of the wire format shows.
// (protocol/interop proves those bytes against wireguard-go.)
func TestDeterministicHandshake(t *testing.T) {
	run := func() ([]byte, []byte) {
		a, b := newParties(testPSK("d"), testPSK("d"), "deterministic")
		init := make([]byte, InitiationSize)
		a.hs.CreateInitiation(testEpoch, 7, init)
		a.gen.AddMACs(init)
		in, err := b.local.ConsumeInitiation(init)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.hs.AcceptInitiation(in, testEpoch); err != nil {
			t.Fatal(err)
		}
		resp := make([]byte, ResponseSize)
		b.hs.CreateResponse(9, resp)
		b.gen.AddMACs(resp)
		if err := a.hs.ConsumeResponse(resp); err != nil {
			t.Fatal(err)
		}
		return init, resp
	}
	i1, r1 := run()
	i2, r2 := run()
	if string(i1) != string(i2) || string(r1) != string(r2) {
		t.Fatal("handshake with fixed inputs is not deterministic")
	}
	// mac1 recomputed independently from the whitepaper's definition.
	lb := NewLocal(testKey("bob"))
	key := labelHash("mac1----", lb.PublicKey())
	var mac [16]byte
	mac128(&mac, key[:], i1[:116])
	if string(mac[:]) != string(i1[116:132]) || !isZero(i1[132:]) {
		t.Fatal("initiation mac1/mac2 wrong")
	}
}

func TestWrongPresharedKey(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pskA, pskB Key
	}{
		{"different", testPSK("a"), testPSK("b")},
		{"initiator only", testPSK("a"), Key{}},
		{"responder only", Key{}, testPSK("b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newParties(tc.pskA, tc.pskB, "")
			msg := make([]byte, InitiationSize)
			a.hs.CreateInitiation(testEpoch, 1, msg)
			in, err := b.local.ConsumeInitiation(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.hs.AcceptInitiation(in, testEpoch); err != nil {
				t.Fatal(err) // the psk only enters with the response
			}
			resp := make([]byte, ResponseSize)
			if _, err := b.hs.CreateResponse(2, resp); err != nil {
				t.Fatal(err)
			}
			if err := a.hs.ConsumeResponse(resp); !errors.Is(err, ErrAuth) {
				t.Fatalf("ConsumeResponse with another psk: %v, want ErrAuth", err)
			}
			if _, err := a.hs.DeriveKeypair(testEpoch); !errors.Is(err, ErrState) {
				t.Fatalf("DeriveKeypair after a failed response: %v, want ErrState", err)
			}
			// SetPresharedKey repairs it for the next handshake.
			a.hs.SetPresharedKey(tc.pskB)
			kpA, kpB := handshake(t, a, b, testEpoch.Add(time.Second), 5, 6)
			roundTrip(t, kpA, kpB, 20, 0)
		})
	}
}

func TestInitiationReplayAndFlood(t *testing.T) {
	a, b := newParties(Key{}, Key{}, "")
	mk := func(at time.Time) []byte {
		msg := make([]byte, InitiationSize)
		if _, err := a.hs.CreateInitiation(at, 1, msg); err != nil {
			t.Fatal(err)
		}
		return msg
	}
	accept := func(msg []byte, at time.Time) error {
		in, err := b.local.ConsumeInitiation(msg)
		if err != nil {
			t.Fatal(err)
		}
		return b.hs.AcceptInitiation(in, at)
	}
	t0 := testEpoch
	first := mk(t0)
	if err := accept(first, t0); err != nil {
		t.Fatal(err)
	}
	// The same message again, even much later: replay.
	if err := accept(first, t0.Add(time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("replayed initiation: %v, want ErrTimestamp", err)
	}
	// An older timestamp: replay too.
	if err := accept(mk(t0.Add(-time.Second)), t0.Add(time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("older initiation: %v, want ErrTimestamp", err)
	}
	// Within the same whitened 2^24 ns: the same timestamp, a replay.
	if err := accept(mk(t0.Add(time.Millisecond)), t0.Add(time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("initiation in the same timestamp slot: %v, want ErrTimestamp", err)
	}
	// A newer one 20 ms after the last accepted: flood.
	second := mk(t0.Add(100 * time.Millisecond))
	if err := accept(second, t0.Add(HandshakeInitiationRate)); !errors.Is(err, ErrFlood) {
		t.Fatalf("flooded initiation: %v, want ErrFlood", err)
	}
	// A rejected one changes nothing: the same message is fine later.
	if err := accept(second, t0.Add(HandshakeInitiationRate+time.Millisecond)); err != nil {
		t.Fatalf("initiation after the rate: %v", err)
	}
	// The flood state follows the last accepted one.
	third := mk(t0.Add(200 * time.Millisecond))
	if err := accept(third, t0.Add(30*time.Millisecond)); !errors.Is(err, ErrFlood) {
		t.Fatalf("second flood: %v, want ErrFlood", err)
	}
	// The state after the accepted "second" still completes.
	resp := make([]byte, ResponseSize)
	if _, err := b.hs.CreateResponse(2, resp); err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeErrors(t *testing.T) {
	a, b := newParties(Key{}, Key{}, "")
	msg := make([]byte, InitiationSize)
	if _, err := a.hs.CreateInitiation(testEpoch, 1, msg[:InitiationSize-1]); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short initiation buffer: %v", err)
	}
	if _, err := b.hs.CreateResponse(1, make([]byte, ResponseSize)); !errors.Is(err, ErrState) {
		t.Errorf("CreateResponse without initiation: %v", err)
	}
	if err := a.hs.ConsumeResponse(make([]byte, ResponseSize)); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero response: %v", err)
	}
	if _, err := b.local.ConsumeInitiation(msg[:100]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short initiation: %v", err)
	}
	if err := b.hs.AcceptInitiation(nil, testEpoch); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil initiation: %v", err)
	}
	a.hs.CreateInitiation(testEpoch, 1, msg)

	// Sent to someone else: the static key does not decrypt.
	carol := NewLocal(testKey("carol"))
	if _, err := carol.ConsumeInitiation(msg); !errors.Is(err, ErrAuth) {
		t.Errorf("initiation to another key: %v, want ErrAuth", err)
	}
	// Accepted on the handshake of another peer.
	in, err := b.local.ConsumeInitiation(msg)
	if err != nil {
		t.Fatal(err)
	}
	other := NewHandshake(b.local, carol.PublicKey(), Key{})
	if err := other.AcceptInitiation(in, testEpoch); !errors.Is(err, ErrPeerMismatch) {
		t.Errorf("initiation on another peer's handshake: %v", err)
	}
	// A forged claim: carol encrypts alice's public key to bob, but cannot
	// make the timestamp, which needs DH(alice, bob).
	forger := NewHandshake(carol, b.local.PublicKey(), Key{})
	forger.local = &Local{private: carol.private, public: a.local.PublicKey()}
	forger.staticStatic = testKey("guess")
	forged := make([]byte, InitiationSize)
	if _, err := forger.CreateInitiation(testEpoch, 1, forged); err != nil {
		t.Fatal(err)
	}
	fin, err := b.local.ConsumeInitiation(forged)
	if err != nil || fin.RemoteStatic != a.local.PublicKey() {
		t.Fatalf("forged claim: %v", err)
	}
	if err := b.hs.AcceptInitiation(fin, testEpoch); !errors.Is(err, ErrAuth) {
		t.Errorf("forged initiation accepted: %v", err)
	}

	// A tampered byte anywhere in the encrypted part fails.
	for i := 8; i < 116; i++ {
		m := append([]byte(nil), msg...)
		m[i] ^= 0x40
		in, err := b.local.ConsumeInitiation(m)
		if err == nil {
			err = NewHandshake(b.local, a.local.PublicKey(), Key{}).AcceptInitiation(in, testEpoch)
		}
		if err == nil {
			t.Errorf("initiation with byte %d flipped accepted", i)
		}
	}

	// Responses: wrong receiver index, tampering, no initiation in flight.
	in, _ = b.local.ConsumeInitiation(msg)
	if err := b.hs.AcceptInitiation(in, testEpoch); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, ResponseSize)
	if _, err := b.hs.CreateResponse(2, resp); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hs.CreateResponse(2, resp); !errors.Is(err, ErrState) {
		t.Errorf("second CreateResponse: %v", err)
	}
	wrong := append([]byte(nil), resp...)
	wrong[8]++
	if err := a.hs.ConsumeResponse(wrong); !errors.Is(err, ErrMalformed) {
		t.Errorf("response to another index: %v", err)
	}
	for i := 12; i < 60; i++ {
		m := append([]byte(nil), resp...)
		m[i] ^= 1
		if err := a.hs.ConsumeResponse(m); err == nil {
			t.Fatalf("response with byte %d flipped accepted", i)
		}
	}
	if err := a.hs.ConsumeResponse(resp); err != nil {
		t.Fatalf("genuine response after forged ones: %v", err)
	}
	if err := a.hs.ConsumeResponse(resp); !errors.Is(err, ErrState) {
		t.Errorf("second ConsumeResponse: %v", err)
	}
}

func TestLowOrderKeys(t *testing.T) {
	local := NewLocal(testKey("alice"))
	var zero Key
	h := NewHandshake(local, zero, Key{})
	if _, err := h.CreateInitiation(testEpoch, 1, make([]byte, InitiationSize)); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("initiation to a low-order key: %v", err)
	}
	// An initiation with a low-order ephemeral.
	msg := make([]byte, InitiationSize)
	msg[0] = TypeInitiation
	if _, err := local.ConsumeInitiation(msg); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("low-order ephemeral: %v", err)
	}
}

// Both sides initiate at once: each accepts the other's initiation, which
// replaces its own; whichever response arrives completes a handshake.
func TestSimultaneousInitiation(t *testing.T) {
	a, b := newParties(Key{}, Key{}, "")
	ia, ib := make([]byte, InitiationSize), make([]byte, InitiationSize)
	a.hs.CreateInitiation(testEpoch, 10, ia)
	b.hs.CreateInitiation(testEpoch, 20, ib)
	// b answers a's initiation (abandoning its own).
	in, _ := b.local.ConsumeInitiation(ia)
	if err := b.hs.AcceptInitiation(in, testEpoch); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, ResponseSize)
	b.hs.CreateResponse(21, resp)
	if err := a.hs.ConsumeResponse(resp); err != nil {
		t.Fatal(err)
	}
	kpA, _ := a.hs.DeriveKeypair(testEpoch)
	kpB, _ := b.hs.DeriveKeypair(testEpoch)
	roundTrip(t, kpA, kpB, 64, 3)
	roundTrip(t, kpB, kpA, 64, 4)
	// a now gets b's stale initiation: accepted (newer than any from b),
	// and a's response to it cannot be consumed by b, whose initiation
	// was abandoned.
	in, _ = a.local.ConsumeInitiation(ib)
	if err := a.hs.AcceptInitiation(in, testEpoch); err != nil {
		t.Fatal(err)
	}
	a.hs.CreateResponse(11, resp)
	if err := b.hs.ConsumeResponse(resp); !errors.Is(err, ErrState) {
		t.Fatalf("response to an abandoned initiation: %v", err)
	}
}

func TestHandshakeAccessors(t *testing.T) {
	a, b := newParties(Key{}, Key{}, "")
	if a.hs.Remote() != b.local.PublicKey() {
		t.Error("Remote")
	}
	if a.hs.LocalIndex() != 0 {
		t.Error("LocalIndex before a handshake")
	}
	a.hs.CreateInitiation(testEpoch, 77, make([]byte, InitiationSize))
	if a.hs.LocalIndex() != 77 {
		t.Error("LocalIndex in flight")
	}
	a.hs.Clear()
	if a.hs.LocalIndex() != 0 || a.hs.localEphemeral != (Key{}) || a.hs.state != stateZeroed {
		t.Error("Clear")
	}
	for s := stateZeroed; s <= stateResponseConsumed+1; s++ {
		if s.String() == "" {
			t.Error("state String")
		}
	}
	if NewLocal(testKey("alice")).PublicKey() != testKey("alice").PublicKey() {
		t.Error("Local.PublicKey differs from Key.PublicKey")
	}
}

// Ephemeral private keys are wiped as soon as they are used up: the
// responder's once its response is made, the initiator's once the response
// is consumed.
func TestEphemeralWiped(t *testing.T) {
	ka, _ := GeneratePrivateKey()
	kb, _ := GeneratePrivateKey()
	la, lb := NewLocal(ka), NewLocal(kb)
	a := NewHandshake(la, lb.PublicKey(), Key{})
	b := NewHandshake(lb, la.PublicKey(), Key{})
	init := make([]byte, InitiationSize)
	if _, err := a.CreateInitiation(time.Now(), 1, init); err != nil {
		t.Fatal(err)
	}
	if a.localEphemeral == (Key{}) {
		t.Fatal("the initiator kept no ephemeral key for the response")
	}
	in, err := lb.ConsumeInitiation(init)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AcceptInitiation(in, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, ResponseSize)
	if _, err := b.CreateResponse(2, resp); err != nil {
		t.Fatal(err)
	}
	if b.localEphemeral != (Key{}) {
		t.Error("the responder's ephemeral key is still there after its response")
	}
	if err := a.ConsumeResponse(resp); err != nil {
		t.Fatal(err)
	}
	if a.localEphemeral != (Key{}) {
		t.Error("the initiator's ephemeral key is still there after the response")
	}
}

// TestHandshakePair checks that the two states of NewHandshakePair are the
// two NewHandshake would make: each completes a handshake, as initiator and
// as responder, with the other side, and neither disturbs the other.
func TestHandshakePair(t *testing.T) {
	t.Parallel()
	psk := testKey("psk")
	a, b := newParties(psk, psk, "")
	ai, ar := NewHandshakePair(a.local, b.local.PublicKey(), psk)
	bi, br := NewHandshakePair(b.local, a.local.PublicKey(), psk)
	for _, h := range []*Handshake{ai, ar, bi, br} {
		if h.staticStatic != a.hs.staticStatic || h.remoteHash0 == (sum{}) {
			t.Fatal("a pair's state differs from NewHandshake's")
		}
	}
	a.hs, b.hs = ai, br
	kpI, kpR := handshake(t, a, b, testEpoch, 1, 2)
	roundTrip(t, kpI, kpR, 64, 1)
	a.hs, b.hs = ar, bi
	kpI, kpR = handshake(t, b, a, testEpoch.Add(time.Second), 3, 4)
	roundTrip(t, kpI, kpR, 64, 2)
}
