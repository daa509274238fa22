package protocol

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the length of WireGuard keys: Curve25519 private and public keys
// and preshared keys.
const KeyLen = 32

// Key is a Curve25519 private or public key, or a preshared key.
type Key [KeyLen]byte

// GeneratePrivateKey returns a new random private key, clamped as
// Curve25519 wants it (as `wg genkey` does).
func GeneratePrivateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generate private key: %w", err)
	}
	k.clamp()
	return k, nil
}

// GeneratePresharedKey returns a new random preshared key (`wg genpsk`).
func GeneratePresharedKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generate preshared key: %w", err)
	}
	return k, nil
}

func (k *Key) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// PublicKey returns the public key of private key k (`wg pubkey`).
func (k Key) PublicKey() Key {
	var pub Key
	priv := k
	priv.clamp()
	curve25519.ScalarBaseMult((*[32]byte)(&pub), (*[32]byte)(&priv))
	return pub
}

// IsZero reports whether k is all zeros (no key), in constant time.
func (k Key) IsZero() bool {
	var zero Key
	return subtle.ConstantTimeCompare(k[:], zero[:]) == 1
}

// Equal compares two keys in constant time.
func (k Key) Equal(o Key) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// String returns the key in base64, as wg prints keys.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the key in hex, as the cross-platform UAPI carries keys.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// ParseKey parses a base64 key as wg and wg-quick files write them. Its
// error does not hold s: a mistyped private key is still a secret.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return Key{}, fmt.Errorf("invalid key (%d characters): want %d bytes in base64, as `wg genkey` prints", len(s), KeyLen)
	}
	copy(k[:], b)
	return k, nil
}

// ParseHexKey parses a hex key as the UAPI carries them. Its error does
// not hold s: a mistyped private key is still a secret.
func ParseHexKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return Key{}, fmt.Errorf("invalid hex key (%d characters): want %d bytes in hex", len(s), KeyLen)
	}
	copy(k[:], b)
	return k, nil
}

// keyRun is the length from which HideKeys takes a run of base64
// characters for a key, or most of one: a key is 43 of them and a '=' in
// base64, 64 in hex, and names and values quoted in errors (interface
// names, addresses, ports, DNS labels, UAPI keys) rarely hold 32 in a row.
const keyRun = 32

// HideKeys returns s with each run of 32 or more base64 characters
// (letters, digits, '+' and '/'; hex digits among them), with the '='
// after it, replaced by "[N characters hidden]". Errors and logs that
// quote text a user or a client wrote pass it through HideKeys: a private
// or preshared key written where something else was wanted (a mistyped
// line, the wrong key) is still a secret.
func HideKeys(s string) string {
	isB64 := func(c byte) bool {
		return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isB64(s[j]) {
			j++
		}
		if j-i < keyRun {
			if j == i {
				j++
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		for j < len(s) && s[j] == '=' {
			j++
		}
		fmt.Fprintf(&b, "[%d characters hidden]", j-i)
		i = j
	}
	return b.String()
}
