package protocol

import (
	"crypto/hmac"
	"encoding/binary"
	"hash"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
)

func TestInitialConstants(t *testing.T) {
	ck := blake2s.Sum256([]byte(noiseConstruction))
	h := blake2s.Sum256(append(ck[:], wgIdentifier...))
	if string(ck[:]) != initialChainKey || string(h[:]) != initialHash {
		t.Fatal("precomputed initial chaining key or hash is wrong")
	}
}

func stdHMAC(key []byte, in ...[]byte) sum {
	mac := hmac.New(func() hash.Hash { h, _ := blake2s.New256(nil); return h }, key)
	for _, b := range in {
		mac.Write(b)
	}
	var out sum
	mac.Sum(out[:0])
	return out
}

// TestHMAC checks the stack-buffer HMAC against crypto/hmac, on the fast
// path and the fallback, and with aliasing outputs.
func TestHMAC(t *testing.T) {
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, kl := range []int{0, 1, 32, 64, 65, 100} {
		for _, l0 := range []int{0, 1, 32, 33, 64, 96, 97, 200} {
			for _, l1 := range []int{0, 1, 31} {
				key, in0, in1 := data[:kl], data[10:10+l0], data[50:50+l1]
				var got sum
				hmacBLAKE2s(&got, key, in0, in1)
				if got != stdHMAC(key, in0, in1) {
					t.Fatalf("HMAC key %d, inputs %d+%d differs from crypto/hmac", kl, l0, l1)
				}
			}
		}
	}
	// dst aliasing the key, as kdf2(&chainKey, &key, chainKey[:], ...) does.
	k := sum(blake2s.Sum256([]byte("k")))
	want := stdHMAC(k[:], []byte("x"))
	hmacBLAKE2s(&k, k[:], []byte("x"), nil)
	if k != want {
		t.Fatal("HMAC with aliased output")
	}
}

// TestKDF checks the KDFs against the whitepaper's definitions built on
// crypto/hmac, as wireguard-go writes them.
func TestKDF(t *testing.T) {
	key, input := []byte("chaining key, 32 bytes long.....")[:32], []byte("input key material")
	prk := stdHMAC(key, input)
	w1 := stdHMAC(prk[:], []byte{1})
	w2 := stdHMAC(prk[:], w1[:], []byte{2})
	w3 := stdHMAC(prk[:], w2[:], []byte{3})
	var t0, t1, t2 sum
	kdf1(&t0, key, input)
	if t0 != w1 {
		t.Fatal("kdf1")
	}
	kdf2(&t0, &t1, key, input)
	if t0 != w1 || t1 != w2 {
		t.Fatal("kdf2")
	}
	kdf3(&t0, &t1, &t2, key, input)
	if t0 != w1 || t1 != w2 || t2 != w3 {
		t.Fatal("kdf3")
	}
	// hash2 against one BLAKE2s over the concatenation, both paths.
	long := make([]byte, 200)
	for _, n := range []int{0, 16, 96, 97, 200} {
		var h sum
		hash2(&h, key, long[:n])
		if h != blake2s.Sum256(append(append([]byte(nil), key...), long[:n]...)) {
			t.Fatalf("hash2 with %d bytes", n)
		}
	}
}

func TestTAI64N(t *testing.T) {
	// 1970-01-01T00:00:00Z is TAI64 label 2^62 + 10.
	ts := TAI64N(time.Unix(0, 0))
	if binary.BigEndian.Uint64(ts[:8]) != 0x400000000000000a || binary.BigEndian.Uint32(ts[8:]) != 0 {
		t.Fatalf("epoch: %x", ts)
	}
	at := time.Date(2026, 5, 22, 21, 4, 24, 999_999_999, time.UTC)
	ts = TAI64N(at)
	if binary.BigEndian.Uint64(ts[:8]) != 0x400000000000000a+uint64(at.Unix()) {
		t.Fatalf("seconds: %x", ts)
	}
	if ns := binary.BigEndian.Uint32(ts[8:]); ns != 999_999_999&^(1<<24-1) {
		t.Fatalf("nanoseconds not whitened: %d", ns)
	}
	if got := ParseTAI64N(ts); at.Sub(got) < 0 || at.Sub(got) >= 1<<24 {
		t.Fatalf("ParseTAI64N = %v", got)
	}
	// Later times never give smaller timestamps; 2^24 ns apart always
	// gives a larger one.
	prev := TAI64N(at)
	for d := time.Duration(0); d < 3*time.Second; d += 3 * time.Millisecond {
		cur := TAI64N(at.Add(d))
		if timestampAfter(prev, cur) {
			t.Fatalf("timestamp went back at +%v", d)
		}
		if !timestampAfter(TAI64N(at.Add(d+1<<24)), cur) {
			t.Fatalf("no newer timestamp 2^24 ns after +%v", d)
		}
		prev = cur
	}
}
