package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// testKeypairs returns two matching keypairs made from fixed keys, without
// a handshake: a sends with k1 and receives with k2, b the reverse.
func testKeypairs(t testing.TB) (a, b *Keypair) {
	k1, k2 := sum(testKey("k1")), sum(testKey("k2"))
	a, err := newKeypair(&k1, &k2)
	if err != nil {
		t.Fatal(err)
	}
	b, err = newKeypair(&k2, &k1)
	if err != nil {
		t.Fatal(err)
	}
	a.LocalIndex, a.RemoteIndex = 100, 200
	b.LocalIndex, b.RemoteIndex = 200, 100
	a.Created, b.Created = testEpoch, testEpoch
	a.Initiator = true
	return a, b
}

func seal(t testing.TB, kp *Keypair, pkt []byte) []byte {
	t.Helper()
	buf := make([]byte, TransportOverhead+PaddedLen(len(pkt), 0))
	copy(buf[TransportHeaderSize:], pkt)
	m, err := kp.SealTransport(buf, len(pkt))
	if err != nil {
		t.Fatal(err)
	}
	return buf[:m]
}

func TestTransportFormat(t *testing.T) {
	a, b := testKeypairs(t)
	msg := seal(t, a, []byte("hello"))
	typ, ok := MessageType(msg)
	if !ok || typ != TypeTransport || len(msg) != TransportOverhead+16 {
		t.Fatalf("MessageType = %d, %v; len %d", typ, ok, len(msg))
	}
	recv, counter, err := ParseTransportHeader(msg)
	if err != nil || recv != 200 || counter != 0 {
		t.Fatalf("ParseTransportHeader = %d, %d, %v", recv, counter, err)
	}
	if _, counter, _ = ParseTransportHeader(seal(t, a, nil)); counter != 1 {
		t.Fatalf("second counter %d", counter)
	}
	plain, err := b.OpenTransport(msg)
	if err != nil || string(plain[:5]) != "hello" || !isZero(plain[5:]) || len(plain) != 16 {
		t.Fatalf("OpenTransport = %q, %v", plain, err)
	}
	// The header is intact after opening (the nonce trick restores it).
	if binary.LittleEndian.Uint32(msg[4:8]) != 200 || binary.LittleEndian.Uint32(msg[0:4]) != TypeTransport {
		t.Fatal("header changed by OpenTransport")
	}
}

func TestTransportTampering(t *testing.T) {
	a, b := testKeypairs(t)
	orig := seal(t, a, bytes.Repeat([]byte{0x5a}, 1400))
	for i := range orig {
		for _, bit := range []byte{0x01, 0x80} {
			m := append([]byte(nil), orig...)
			m[i] ^= bit
			if _, err := b.OpenTransport(m); err == nil {
				t.Fatalf("message with byte %d ^%#x accepted", i, bit)
			} else if i >= 16 && !errors.Is(err, ErrAuth) {
				t.Fatalf("byte %d: %v, want ErrAuth", i, err)
			}
		}
	}
	// Truncated and extended messages fail too.
	for _, m := range [][]byte{orig[:len(orig)-1], orig[:TransportOverhead], append(append([]byte(nil), orig...), 0)} {
		if _, err := b.OpenTransport(append([]byte(nil), m...)); err == nil {
			t.Fatalf("message of %d bytes accepted", len(m))
		}
	}
	// The genuine message still opens: failures did not touch the window.
	if _, err := b.OpenTransport(orig); err != nil {
		t.Fatalf("genuine message after forgeries: %v", err)
	}
	// Wrong direction: a's own message, if it were addressed to a.
	mine := seal(t, a, []byte("x"))
	binary.LittleEndian.PutUint32(mine[4:8], a.LocalIndex)
	if _, err := a.OpenTransport(mine); !errors.Is(err, ErrAuth) {
		t.Fatalf("own message opened: %v", err)
	}
}

func TestTransportErrors(t *testing.T) {
	a, b := testKeypairs(t)
	msg := seal(t, a, []byte("once"))
	dup := append([]byte(nil), msg...)
	if _, err := b.OpenTransport(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenTransport(dup); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v, want ErrReplay", err)
	}
	for name, m := range map[string][]byte{
		"short":      make([]byte, TransportOverhead-1),
		"empty":      nil,
		"wrong type": append([]byte{TypeResponse, 0, 0, 0}, dup[4:]...),
		"reserved":   append([]byte{TypeTransport, 9, 0, 0}, dup[4:]...),
		"index":      append([]byte{TypeTransport, 0, 0, 0, 99, 0, 0, 0}, dup[8:]...),
	} {
		if _, err := b.OpenTransport(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if name != "index" {
			if _, _, err := ParseTransportHeader(m); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseTransportHeader %s: %v", name, err)
			}
		}
	}
	// A counter at the limit is refused before any decryption.
	over := append([]byte(nil), dup...)
	binary.LittleEndian.PutUint64(over[8:16], RejectAfterMessages)
	if _, err := b.OpenTransport(over); !errors.Is(err, ErrKeypairExhausted) {
		t.Fatalf("counter at the limit: %v", err)
	}
	// Sealing: buffer too small, negative length, exhausted counter.
	if _, err := a.SealTransport(make([]byte, TransportOverhead+15), 1); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: %v", err)
	}
	if _, err := a.SealTransport(make([]byte, 64), -1); !errors.Is(err, ErrMalformed) {
		t.Errorf("negative length: %v", err)
	}
	before := a.SendCount()
	a.SealTransport(make([]byte, 10), 0) // fails: no counter used
	if a.SendCount() != before {
		t.Error("a failed seal used a counter")
	}
	a.sendCounter.Store(RejectAfterMessages - 1)
	last := seal(t, a, []byte("last"))
	if _, c, _ := ParseTransportHeader(last); c != RejectAfterMessages-1 {
		t.Fatalf("last counter %d", c)
	}
	if _, err := b.OpenTransport(last); err != nil {
		t.Fatalf("last counter refused: %v", err)
	}
	for range 3 {
		if _, err := a.SealTransport(make([]byte, 64), 0); !errors.Is(err, ErrKeypairExhausted) {
			t.Fatalf("seal past the limit: %v", err)
		}
	}
	if a.SendCount() != RejectAfterMessages {
		t.Fatalf("SendCount = %d", a.SendCount())
	}
}

func TestKeypairExpired(t *testing.T) {
	a, _ := testKeypairs(t)
	if a.Expired(testEpoch.Add(RejectAfterTime)) || !a.Expired(testEpoch.Add(RejectAfterTime+time.Nanosecond)) {
		t.Error("Expired boundary")
	}
}

func TestSealTransportMTU(t *testing.T) {
	a, b := testKeypairs(t)
	for _, tc := range []struct{ n, mtu, want int }{
		{1419, 1420, 1420}, {1420, 1420, 1420}, {1405, 1420, 1408}, {0, 1420, 0}, {1, 0, 16},
	} {
		buf := make([]byte, TransportOverhead+tc.want)
		m, err := a.SealTransportMTU(buf, tc.n, tc.mtu)
		if err != nil || m != TransportOverhead+tc.want {
			t.Fatalf("SealTransportMTU(%d, %d) = %d, %v; want %d", tc.n, tc.mtu, m, err, TransportOverhead+tc.want)
		}
		plain, err := b.OpenTransport(buf[:m])
		if err != nil || len(plain) != tc.want {
			t.Fatalf("open: %d bytes, %v", len(plain), err)
		}
	}
}

// TestPaddedLen compares PaddedLen with wireguard-go's calculatePaddingSize
// (re-stated here) over a range of sizes and MTUs, plus fixed cases.
func TestPaddedLen(t *testing.T) {
	wg := func(packetSize, mtu int) int {
		lastUnit := packetSize
		if mtu == 0 {
			return ((lastUnit + 15) &^ 15) - lastUnit
		}
		if lastUnit > mtu {
			lastUnit %= mtu
		}
		paddedSize := (lastUnit + 15) &^ 15
		if paddedSize > mtu {
			paddedSize = mtu
		}
		return paddedSize - lastUnit
	}
	for _, mtu := range []int{0, 1280, 1420, 1421, 1500, 9000} {
		for n := 0; n <= 3*max(mtu, 1500)+20; n++ {
			if got, want := PaddedLen(n, mtu), n+wg(n, mtu); got != want {
				t.Fatalf("PaddedLen(%d, %d) = %d, want %d", n, mtu, got, want)
			}
		}
	}
	for _, tc := range []struct{ n, mtu, want int }{
		{0, 0, 0}, {1, 0, 16}, {15, 0, 16}, {16, 0, 16}, {17, 0, 32}, {1400, 0, 1408},
		{65535, 0, 65536}, {1419, 1420, 1420}, {1421, 1420, 1421 + 15}, {-1, 0, 0},
	} {
		if got := PaddedLen(tc.n, tc.mtu); got != tc.want {
			t.Errorf("PaddedLen(%d, %d) = %d, want %d", tc.n, tc.mtu, got, tc.want)
		}
	}
}

func TestMessageType(t *testing.T) {
	mk := func(typ byte, n int) []byte {
		b := make([]byte, n)
		if n > 0 {
			b[0] = typ
		}
		return b
	}
	for _, tc := range []struct {
		msg  []byte
		typ  uint32
		want bool
	}{
		{mk(1, InitiationSize), 1, true},
		{mk(1, InitiationSize+1), 1, false},
		{mk(2, ResponseSize), 2, true},
		{mk(2, InitiationSize), 2, false},
		{mk(3, CookieReplySize), 3, true},
		{mk(3, CookieReplySize-1), 3, false},
		{mk(4, TransportOverhead), 4, true},
		{mk(4, 2000), 4, true},
		{mk(4, TransportOverhead-1), 4, false},
		{mk(5, 100), 5, false},
		{mk(0, 100), 0, false},
		{[]byte{1, 0, 0}, 0, false},
		{append([]byte{1, 0, 1, 0}, make([]byte, InitiationSize-4)...), 0x10001, false},
	} {
		typ, ok := MessageType(tc.msg)
		if typ != tc.typ || ok != tc.want {
			t.Errorf("MessageType(% x.. len %d) = %d, %v; want %d, %v", tc.msg[:min(4, len(tc.msg))], len(tc.msg), typ, ok, tc.typ, tc.want)
		}
	}
	if _, err := ParseHandshakeSender(mk(3, CookieReplySize)); !errors.Is(err, ErrMalformed) {
		t.Error("ParseHandshakeSender of a cookie reply")
	}
	m := mk(2, ResponseSize)
	m[4] = 9
	if s, err := ParseHandshakeSender(m); err != nil || s != 9 {
		t.Errorf("ParseHandshakeSender = %d, %v", s, err)
	}
	if _, _, err := ParseResponseIndices(mk(2, ResponseSize-1)); !errors.Is(err, ErrMalformed) {
		t.Error("ParseResponseIndices of a short response")
	}
}

// TestTransportZeroAlloc: the data path allocates nothing.
func TestTransportZeroAlloc(t *testing.T) {
	a, b := testKeypairs(t)
	buf := make([]byte, TransportOverhead+1408)
	var m int
	if n := testing.AllocsPerRun(200, func() {
		m, _ = a.SealTransport(buf, 1400)
	}); n != 0 {
		t.Errorf("SealTransport: %v allocations", n)
	}
	msgs := make([][]byte, 201)
	for i := range msgs {
		msgs[i] = seal(t, a, make([]byte, 1400))
	}
	i := 0
	if n := testing.AllocsPerRun(200, func() {
		if _, err := b.OpenTransport(msgs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); n != 0 {
		t.Errorf("OpenTransport: %v allocations", n)
	}
	// Failures must not allocate either (they are what an attacker sends).
	replayed := seal(t, a, make([]byte, 1400))
	orig := append([]byte(nil), replayed...)
	if _, err := b.OpenTransport(replayed); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), orig...)
	bad[20] ^= 1
	if n := testing.AllocsPerRun(100, func() {
		copy(replayed, orig)
		if _, err := b.OpenTransport(replayed); !errors.Is(err, ErrReplay) {
			t.Fatal(err)
		}
		if _, err := b.OpenTransport(bad); !errors.Is(err, ErrAuth) {
			t.Fatal(err)
		}
		if _, err := b.OpenTransport(bad[:10]); !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("OpenTransport failures: %v allocations", n)
	}
	_ = m
}

// TestTransportConcurrent seals from several goroutines and opens from
// several others, with the race detector in mind: every counter is used once
// and every message opens once.
func TestTransportConcurrent(t *testing.T) {
	a, b := testKeypairs(t)
	const workers, per = 4, 500
	msgs := make(chan []byte, workers*per)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				buf := make([]byte, TransportOverhead+PaddedLen(100, 0))
				buf[TransportHeaderSize] = byte(w)
				buf[TransportHeaderSize+1] = byte(i)
				m, err := a.SealTransport(buf, 100)
				if err != nil {
					t.Error(err)
					return
				}
				msgs <- buf[:m]
			}
		}()
	}
	wg.Wait()
	close(msgs)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				_, c, _ := ParseTransportHeader(m)
				if _, err := b.OpenTransport(m); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[c] {
					t.Errorf("counter %d twice", c)
				}
				seen[c] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != workers*per || a.SendCount() != workers*per {
		t.Fatalf("%d counters opened, SendCount %d", len(seen), a.SendCount())
	}
}

// TestFrameMessages checks TypeFrame messages: they round-trip, their type
// is authenticated (a message turned from one type into the other fails
// authentication instead of being delivered as the other kind), and they
// cannot be sealed with another type.
func TestFrameMessages(t *testing.T) {
	a, b := testKeypairs(t)
	frame := []byte("\x00\x0eframe of 14 b")
	buf := make([]byte, TransportOverhead+PaddedLen(len(frame), 0))
	copy(buf[TransportHeaderSize:], frame)
	m, err := a.SealTransportType(buf, len(frame), 0, TypeFrame)
	if err != nil {
		t.Fatal(err)
	}
	msg := buf[:m]
	if typ, ok := MessageType(msg); !ok || typ != TypeFrame {
		t.Fatalf("MessageType = %#x, %v; want TypeFrame", typ, ok)
	}
	if msg[0] != TypeTransport || msg[1] != 1 {
		t.Fatalf("header starts % x, want 04 01", msg[:4])
	}
	if r, c, err := ParseTransportHeader(msg); err != nil || r != 200 || c != 0 {
		t.Fatalf("ParseTransportHeader = %d, %d, %v", r, c, err)
	}
	flipped := append([]byte(nil), msg...)
	flipped[1] = 0 // now it claims to be a WireGuard transport message
	if _, err := b.OpenTransport(flipped); !errors.Is(err, ErrAuth) {
		t.Fatalf("frame message retyped as transport: %v, want ErrAuth", err)
	}
	plain, err := b.OpenTransport(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(plain, frame) {
		t.Fatalf("plaintext %q, want prefix %q", plain, frame)
	}
	ip := seal(t, a, []byte("ip packet"))
	ip[1] = 1 // a transport message retyped as a frame
	if _, err := b.OpenTransport(ip); !errors.Is(err, ErrAuth) {
		t.Fatalf("transport message retyped as frame: %v, want ErrAuth", err)
	}
	if _, err := a.SealTransportType(buf, 1, 0, TypeInitiation); !errors.Is(err, ErrMalformed) {
		t.Fatalf("seal with type 1: %v, want ErrMalformed", err)
	}
}

// TestTapwireTypesAuthenticated checks that tapwire's fragment and probe
// messages round-trip and that none of the four transport types can be
// turned into another on the path: the type is the additional data of every
// tapwire type, so a retyped message fails authentication.
func TestTapwireTypesAuthenticated(t *testing.T) {
	a, b := testKeypairs(t)
	types := []uint32{TypeTransport, TypeFrame, TypeFragment, TypeProbe}
	for _, typ := range types {
		for _, other := range types {
			payload := []byte("\x45some payload of a kind")
			buf := make([]byte, TransportOverhead+PaddedLen(len(payload), 0))
			copy(buf[TransportHeaderSize:], payload)
			m, err := a.SealTransportType(buf, len(payload), 0, typ)
			if err != nil {
				t.Fatal(err)
			}
			msg := buf[:m]
			if got, ok := MessageType(msg); !ok || got != typ || !IsTransportType(got) {
				t.Fatalf("MessageType = %#x, %v; want %#x", got, ok, typ)
			}
			binary.LittleEndian.PutUint32(msg[0:4], other)
			plain, err := b.OpenTransport(msg)
			if other == typ {
				if err != nil || !bytes.HasPrefix(plain, payload) {
					t.Fatalf("type %#x: %v, plaintext %q", typ, err, plain)
				}
			} else if !errors.Is(err, ErrAuth) {
				t.Fatalf("type %#x retyped as %#x: %v, want ErrAuth", typ, other, err)
			}
		}
	}
	if IsTransportType(TypeInitiation) || IsTransportType(TypeProbe+1<<8) {
		t.Error("IsTransportType accepts a handshake or unknown type")
	}
}
