package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The fuzz targets check two things: no input panics, and no input that
// differs from a genuine message in an authenticated byte is accepted. The
// genuine messages come from fixed keys, deterministic ephemerals and a
// fixed time (fuzzFixture), so the checked-in seeds in testdata/fuzz stay
// valid; `go test -run TestWriteFuzzCorpus -update-corpus` rewrites them.

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora in testdata/fuzz and testdata/handshake-vector.txt")

// fuzzFix holds the genuine messages of a fixed exchange between alice
// (initiator) and bob (responder), with preshared key.
type fuzzFix struct {
	alice, bob *party
	initiation []byte // alice → bob, macs included
	response   []byte // bob → alice, macs included
	reply      []byte // bob's cookie reply to initiation
	transport  [][]byte
	recvKey    sum // the transport messages' key
	sendIdx    uint32
	// The first transport message each way with the handshake's keys.
	aliceToBob, bobToAlice []byte
}

const (
	fuzzIdxAlice = 0x0a0b0c0d
	fuzzIdxBob   = 0x01020304
)

func newFuzzFix(t testing.TB) *fuzzFix {
	psk := testPSK("fuzz")
	a, b := newParties(psk, psk, "fuzz")
	f := &fuzzFix{alice: a, bob: b, initiation: make([]byte, InitiationSize), response: make([]byte, ResponseSize), reply: make([]byte, CookieReplySize)}
	if _, err := a.hs.CreateInitiation(testEpoch, fuzzIdxAlice, f.initiation); err != nil {
		t.Fatal(err)
	}
	a.gen.AddMACs(f.initiation)
	in, err := b.local.ConsumeInitiation(f.initiation)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.hs.AcceptInitiation(in, testEpoch); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hs.CreateResponse(fuzzIdxBob, f.response); err != nil {
		t.Fatal(err)
	}
	b.gen.AddMACs(f.response)
	b.checker.rand = detRand("fuzz cookie")
	b.checker.now = func() time.Time { return testEpoch }
	if _, err := b.checker.CreateReply(f.initiation, fuzzIdxAlice, []byte{192, 0, 2, 1, 0x20, 0xca}, f.reply); err != nil {
		t.Fatal(err)
	}
	// Finish the handshake on copies of the parties, for the vector.
	a2, b2 := newParties(psk, psk, "fuzz")
	a2.hs.CreateInitiation(testEpoch, fuzzIdxAlice, make([]byte, InitiationSize))
	in2, _ := b2.local.ConsumeInitiation(f.initiation)
	b2.hs.AcceptInitiation(in2, testEpoch)
	b2.hs.CreateResponse(fuzzIdxBob, make([]byte, ResponseSize))
	if err := a2.hs.ConsumeResponse(f.response); err != nil {
		t.Fatal(err)
	}
	kpA, errA := a2.hs.DeriveKeypair(testEpoch)
	kpB, errB := b2.hs.DeriveKeypair(testEpoch)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	f.aliceToBob = goldenTransport(t, kpA, "tapwire: alice to bob\n")
	f.bobToAlice = goldenTransport(t, kpB, "tapwire: bob to alice\n")

	// Transport messages with fixed keys (not the handshake's, which
	// would need the handshake to be finished in every fuzz run).
	send, recv := sum(testKey("fuzz transport")), sum(testKey("fuzz transport back"))
	kp, err := newKeypair(&send, &recv)
	if err != nil {
		t.Fatal(err)
	}
	kp.RemoteIndex = fuzzIdxBob
	for _, n := range []int{0, 1, 16, 64, 200} {
		buf := make([]byte, TransportOverhead+PaddedLen(n, 0))
		for i := range n {
			buf[TransportHeaderSize+i] = byte(i + n)
		}
		m, err := kp.SealTransport(buf, n)
		if err != nil {
			t.Fatal(err)
		}
		f.transport = append(f.transport, buf[:m])
	}
	// And tapwire's frame, fragment and probe messages, with the same keys.
	for _, typ := range []uint32{TypeFrame, TypeFragment, TypeProbe} {
		for _, n := range []int{0, 16, 100} {
			buf := make([]byte, TransportOverhead+PaddedLen(n, 0))
			for i := range n {
				buf[TransportHeaderSize+i] = byte(3 * i)
			}
			m, err := kp.SealTransportType(buf, n, 0, typ)
			if err != nil {
				t.Fatal(err)
			}
			f.transport = append(f.transport, buf[:m])
		}
	}
	f.recvKey, f.sendIdx = send, fuzzIdxBob
	return f
}

func goldenTransport(t testing.TB, kp *Keypair, text string) []byte {
	buf := make([]byte, TransportOverhead+PaddedLen(len(text), 0))
	copy(buf[TransportHeaderSize:], text)
	m, err := kp.SealTransport(buf, len(text))
	if err != nil {
		t.Fatal(err)
	}
	return buf[:m]
}

var fuzzFixOnce struct {
	sync.Once
	f *fuzzFix
}

func getFuzzFix(t testing.TB) *fuzzFix {
	fuzzFixOnce.Do(func() { fuzzFixOnce.f = newFuzzFix(t) })
	if fuzzFixOnce.f == nil {
		t.Fatal("no fuzz fixture")
	}
	return fuzzFixOnce.f
}

// initiatorAwaitingResponse returns alice's handshake in the state the
// fixed response answers: a fresh copy each call.
func (f *fuzzFix) initiatorAwaitingResponse(t testing.TB) *Handshake {
	a, _ := newParties(testPSK("fuzz"), testPSK("fuzz"), "fuzz")
	if _, err := a.hs.CreateInitiation(testEpoch, fuzzIdxAlice, make([]byte, InitiationSize)); err != nil {
		t.Fatal(err)
	}
	return a.hs
}

// addMalformed adds seeds every target gets: empty, short, each type with
// wrong sizes, and all-zero messages.
func addMalformed(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4})
	f.Add(make([]byte, 31))
	for typ := byte(0); typ <= 5; typ++ {
		for _, n := range []int{4, 32, 33, CookieReplySize, ResponseSize, InitiationSize, 200} {
			m := make([]byte, n)
			m[0] = typ
			f.Add(m)
		}
	}
}

func FuzzConsumeInitiation(f *testing.F) {
	fx := getFuzzFix(f)
	f.Add(fx.initiation)
	addMalformed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		genuine := fx.initiation
		if fx.bob.checker.CheckMAC1(data) && !bytes.Equal(data[:116], genuine[:116]) {
			t.Fatal("forged mac1 accepted")
		}
		in, err := fx.bob.local.ConsumeInitiation(data)
		if err != nil {
			return
		}
		// The static key is authenticated by the ephemeral and the
		// encrypted static key; nothing else is read yet.
		if !bytes.Equal(data[8:88], genuine[8:88]) {
			t.Fatalf("forged initiation decrypted: % x", data)
		}
		hs := NewHandshake(fx.bob.local, fx.alice.local.PublicKey(), testPSK("fuzz"))
		if err := hs.AcceptInitiation(in, testEpoch); err == nil && !bytes.Equal(data[8:116], genuine[8:116]) {
			t.Fatalf("forged initiation accepted: % x", data)
		}
	})
}

func FuzzConsumeResponse(f *testing.F) {
	fx := getFuzzFix(f)
	f.Add(fx.response)
	addMalformed(f)
	var mu sync.Mutex
	hs := fx.initiatorAwaitingResponse(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		if fx.alice.checker.CheckMAC1(data) && !bytes.Equal(data[:60], fx.response[:60]) {
			t.Fatal("forged mac1 accepted")
		}
		if err := hs.ConsumeResponse(data); err != nil {
			return
		}
		// Receiver index, ephemeral and the empty AEAD are authenticated
		// (the sender index only by mac1).
		if !bytes.Equal(data[8:60], fx.response[8:60]) {
			t.Fatalf("forged response accepted: % x", data)
		}
		if _, err := hs.DeriveKeypair(testEpoch); err != nil {
			t.Fatal(err)
		}
		hs = fx.initiatorAwaitingResponse(t)
	})
}

func FuzzCookieReply(f *testing.F) {
	fx := getFuzzFix(f)
	f.Add(fx.reply)
	addMalformed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		g := NewCookieGenerator(fx.bob.local.PublicKey())
		msg := append([]byte(nil), fx.initiation...)
		g.AddMACs(msg)
		err := g.ConsumeReply(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCookie) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Nonce and encrypted cookie are authenticated; type and
		// receiver are not (the engine routes by the receiver).
		if !bytes.Equal(data[8:], fx.reply[8:]) {
			t.Fatalf("forged cookie reply accepted: % x", data)
		}
		g.AddMACs(msg)
		if !fx.bob.checker.CheckMAC2(msg, []byte{192, 0, 2, 1, 0x20, 0xca}) {
			t.Fatal("cookie from a genuine reply does not make a valid mac2")
		}
	})
}

func FuzzOpenTransport(f *testing.F) {
	fx := getFuzzFix(f)
	for _, m := range fx.transport {
		f.Add(m)
	}
	addMalformed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		other := sum(testKey("unused"))
		kp, err := newKeypair(&other, &fx.recvKey)
		if err != nil {
			t.Fatal(err)
		}
		kp.LocalIndex = fx.sendIdx
		// Replay-window state that a genuine message must get past too.
		kp.replay.Check(2)
		msg := append([]byte(nil), data...)
		plain, err := kp.OpenTransport(msg)
		if err != nil {
			return
		}
		genuine := false
		for _, m := range fx.transport {
			genuine = genuine || bytes.Equal(data, m)
		}
		if !genuine {
			t.Fatalf("forged transport message accepted: % x", data)
		}
		if len(plain) != len(data)-TransportOverhead {
			t.Fatalf("plaintext of %d bytes from a %d-byte message", len(plain), len(data))
		}
		// The same message again is a replay.
		if _, err := kp.OpenTransport(append([]byte(nil), data...)); !errors.Is(err, ErrReplay) {
			t.Fatalf("replayed message: %v", err)
		}
	})
}

func FuzzParseTransportHeader(f *testing.F) {
	fx := getFuzzFix(f)
	for _, m := range append(fx.transport, fx.initiation, fx.response, fx.reply) {
		f.Add(m)
	}
	addMalformed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, ok := MessageType(data)
		recv, counter, err := ParseTransportHeader(data)
		if (err == nil) != (ok && IsTransportType(typ)) {
			t.Fatalf("ParseTransportHeader error %v but MessageType %d, %v", err, typ, ok)
		}
		if err == nil {
			if recv != binary.LittleEndian.Uint32(data[4:]) || counter != binary.LittleEndian.Uint64(data[8:]) {
				t.Fatal("wrong fields")
			}
		}
		if _, _, err := ParseResponseIndices(data); (err == nil) != (ok && typ == TypeResponse) {
			t.Fatal("ParseResponseIndices disagrees with MessageType")
		}
		if _, err := ParseHandshakeSender(data); (err == nil) != (ok && (typ == TypeInitiation || typ == TypeResponse)) {
			t.Fatal("ParseHandshakeSender disagrees with MessageType")
		}
		if _, err := ParseCookieReplyReceiver(data); (err == nil) != (ok && typ == TypeCookieReply) {
			t.Fatal("ParseCookieReplyReceiver disagrees with MessageType")
		}
		// PaddedLen on sizes and MTUs taken from the input.
		if len(data) >= 4 {
			n, mtu := int(binary.LittleEndian.Uint16(data)), int(binary.LittleEndian.Uint16(data[2:]))
			p := PaddedLen(n, mtu)
			if p < n || p-n >= PaddingMultiple {
				t.Fatalf("PaddedLen(%d, %d) = %d", n, mtu, p)
			}
		}
	})
}

// TestWriteFuzzCorpus rewrites the checked-in seed corpora (with
// -update-corpus) and otherwise checks that they still hold the genuine
// messages of the fixture.
func TestWriteFuzzCorpus(t *testing.T) {
	fx := getFuzzFix(t)
	corpora := map[string][][]byte{
		"FuzzConsumeInitiation":    {fx.initiation, fx.initiation[:InitiationSize-1], append(append([]byte(nil), fx.initiation...), 0)},
		"FuzzConsumeResponse":      {fx.response, fx.response[:60]},
		"FuzzCookieReply":          {fx.reply, fx.reply[:40]},
		"FuzzOpenTransport":        append(append([][]byte(nil), fx.transport...), fx.transport[1][:TransportOverhead-1]),
		"FuzzParseTransportHeader": {fx.transport[0], fx.initiation, fx.response, fx.reply, {4, 0, 0, 0}, make([]byte, 40)},
	}
	for target, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", target)
		for i, seed := range seeds {
			name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("%v (rewrite with -update-corpus)", err)
			}
			if string(got) != content {
				t.Fatalf("%s is not the fixture's message any more (rewrite with -update-corpus)", name)
			}
		}
	}
}

// TestFuzzFixtureGenuine makes sure the genuine messages pass each fuzz
// target's success path, so that the targets test acceptance, not only
// rejection.
func TestFuzzFixtureGenuine(t *testing.T) {
	fx := getFuzzFix(t)
	in, err := fx.bob.local.ConsumeInitiation(fx.initiation)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewHandshake(fx.bob.local, fx.alice.local.PublicKey(), testPSK("fuzz")).AcceptInitiation(in, testEpoch); err != nil {
		t.Fatal(err)
	}
	if err := fx.initiatorAwaitingResponse(t).ConsumeResponse(fx.response); err != nil {
		t.Fatal(err)
	}
	g := NewCookieGenerator(fx.bob.local.PublicKey())
	g.AddMACs(append([]byte(nil), fx.initiation...))
	if err := g.ConsumeReply(fx.reply); err != nil {
		t.Fatal(err)
	}
	other := sum(testKey("unused"))
	kp, _ := newKeypair(&other, &fx.recvKey)
	kp.LocalIndex = fx.sendIdx
	for _, m := range fx.transport {
		if _, err := kp.OpenTransport(append([]byte(nil), m...)); err != nil {
			t.Fatal(err)
		}
	}
}
