package protocol

import (
	"golang.org/x/crypto/curve25519"

	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// Protocol names and labels (whitepaper section 5.4).
const (
	noiseConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	wgIdentifier      = "WireGuard v1 zx2c4 Jason@zx2c4.com"
	labelMAC1         = "mac1----"
	labelCookie       = "cookie--"
)

// The first chaining key and hash of every handshake, precomputed (as
// wireguard-go does at init) and kept as constants:
// initialChainKey = HASH(construction), initialHash = HASH(initialChainKey ||
// identifier). TestInitialConstants recomputes them.
const (
	initialChainKey = "\x60\xe2\x6d\xae\xf3\x27\xef\xc0\x2e\xc3\x35\xe2\xa0\x25\xd2\xd0\x16\xeb\x42\x06\xf8\x72\x77\xf5\x2d\x38\xd1\x98\x8b\x78\xcd\x36"
	initialHash     = "\x22\x11\xb3\x61\x08\x1a\xc5\x66\x69\x12\x43\xdb\x45\x8a\xd5\x32\x2d\x9c\x6c\x66\x22\x93\xe8\xb7\x0e\xe1\x9c\x65\xba\x07\x9e\xf3"
)

// sum is a BLAKE2s-256 output: hashes, chaining keys and KDF outputs.
type sum = [blake2s.Size]byte

// hash2 sets dst to BLAKE2s-256(a || b). dst may alias a or b.
func hash2(dst *sum, a, b []byte) {
	var buf [128]byte
	if len(a)+len(b) <= len(buf) {
		n := copy(buf[:], a)
		n += copy(buf[n:], b)
		*dst = blake2s.Sum256(buf[:n])
		clear(buf[:n])
		return
	}
	h, _ := blake2s.New256(nil)
	h.Write(a)
	h.Write(b)
	h.Sum(dst[:0])
}

// mixHash sets h = HASH(h || data).
func mixHash(h *sum, data []byte) { hash2(h, h[:], data) }

// hmacBLAKE2s sets dst to HMAC-BLAKE2s(key, in0 || in1). Keys are at most
// one block (all of WireGuard's are 32 bytes); the common short inputs are
// hashed from stack buffers, which keeps the handshake free of hash
// allocations. dst may alias key, in0 or in1.
func hmacBLAKE2s(dst *sum, key, in0, in1 []byte) {
	const block = blake2s.BlockSize
	if len(key) > block || len(in0)+len(in1) > 96 {
		mac := hmac.New(func() hash.Hash { h, _ := blake2s.New256(nil); return h }, key)
		mac.Write(in0)
		mac.Write(in1)
		var out sum
		mac.Sum(out[:0])
		*dst = out
		return
	}
	var buf [block + 96]byte
	for i := range block {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		buf[i] = k ^ 0x36
	}
	n := block + copy(buf[block:], in0)
	n += copy(buf[n:], in1)
	inner := blake2s.Sum256(buf[:n])
	for i := range block {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		buf[i] = k ^ 0x5c
	}
	copy(buf[block:], inner[:])
	*dst = blake2s.Sum256(buf[:block+len(inner)])
	clear(buf[:])
	clear(inner[:])
}

// kdf1, kdf2 and kdf3 are the HKDF of the whitepaper (section 5.4.1) with
// HMAC-BLAKE2s, returning one, two or three 32-byte outputs. Outputs may
// alias the key.
func kdf1(t0 *sum, key, input []byte) {
	var prk sum
	hmacBLAKE2s(&prk, key, input, nil)
	hmacBLAKE2s(t0, prk[:], []byte{1}, nil)
	clear(prk[:])
}

func kdf2(t0, t1 *sum, key, input []byte) {
	var prk sum
	hmacBLAKE2s(&prk, key, input, nil)
	hmacBLAKE2s(t0, prk[:], []byte{1}, nil)
	hmacBLAKE2s(t1, prk[:], t0[:], []byte{2})
	clear(prk[:])
}

func kdf3(t0, t1, t2 *sum, key, input []byte) {
	var prk sum
	hmacBLAKE2s(&prk, key, input, nil)
	hmacBLAKE2s(t0, prk[:], []byte{1}, nil)
	hmacBLAKE2s(t1, prk[:], t0[:], []byte{2})
	hmacBLAKE2s(t2, prk[:], t1[:], []byte{3})
	clear(prk[:])
}

// mac128 sets dst to the keyed BLAKE2s-128 of data (the MAC of mac1, mac2
// and cookies).
func mac128(dst *[MACSize]byte, key, data []byte) {
	m, err := blake2s.New128(key)
	if err != nil { // only for keys longer than 32 bytes, which never happen
		panic("protocol: mac128: " + err.Error())
	}
	m.Write(data)
	m.Sum(dst[:0])
}

// labelHash returns HASH(label || key): the mac1 and cookie keys.
func labelHash(label string, key Key) sum {
	var out sum
	hash2(&out, []byte(label), key[:])
	return out
}

// dh returns X25519(private, public), and ErrInvalidKey for the all-zero
// result of a low-order public key (whitepaper section 5.4: DH). Private
// keys are kept as *ecdh.PrivateKey so that each DH costs one scalar
// multiplication (building one from bytes computes its public key too).
func dh(private *ecdh.PrivateKey, public *Key) (Key, error) {
	pub, err := ecdh.X25519().NewPublicKey(public[:])
	if err != nil {
		return Key{}, ErrInvalidKey
	}
	out, err := private.ECDH(pub)
	if err != nil {
		return Key{}, ErrInvalidKey
	}
	return Key(out), nil
}

// newPrivate returns the X25519 private key for k, clamped.
func newPrivate(k Key) (*ecdh.PrivateKey, error) {
	k.clamp()
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	clear(k[:])
	return priv, err
}

// newEphemeral returns a fresh Curve25519 key pair read from r (crypto/rand
// when nil). The private key stays in the caller's memory, as bytes, so
// that it can be wiped (crypto/ecdh keeps a copy of its own nobody can
// wipe): the caller clears it when done.
func newEphemeral(r io.Reader) (priv, pub Key, err error) {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, priv[:]); err != nil {
		return Key{}, Key{}, fmt.Errorf("ephemeral key: %w", err)
	}
	priv.clamp()
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		clear(priv[:])
		return Key{}, Key{}, fmt.Errorf("ephemeral key: %w", err)
	}
	return priv, Key(p), nil
}

// dhEphemeral is dh with a private key held as bytes (an ephemeral one).
func dhEphemeral(private, public *Key) (Key, error) {
	out, err := curve25519.X25519(private[:], public[:])
	if err != nil { // a low-order public key: the all-zero result
		return Key{}, ErrInvalidKey
	}
	k := Key(out)
	clear(out)
	return k, nil
}

// aeadSeal appends ChaCha20-Poly1305(key, nonce 0, plaintext, ad) to dst.
// Handshake messages use each key once, so the nonce is always zero.
func aeadSeal(key *sum, dst, plaintext, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	return aead.Seal(dst, nonce[:], plaintext, ad), nil
}

// aeadOpen is the inverse of aeadSeal; any failure is ErrAuth.
func aeadOpen(key *sum, dst, ciphertext, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	out, err := aead.Open(dst, nonce[:], ciphertext, ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// isZero reports, in constant time, whether b is all zeros.
func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}
