//go:build linux

package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/tapwire/tapwire/protocol"
)

// Kind is what a flood sends.
type Kind string

// The kinds of flood. Each says what a WireGuard responder makes of it.
const (
	// Initiation: handshake initiations from a stranger's key with a valid
	// mac1 for the responder's public key (anyone who knows the public key
	// can make them). Not under load, each costs the responder a Curve25519
	// computation before it finds no peer has the key; under load, a cookie
	// reply.
	Initiation Kind = "initiation"
	// Garbage: random bytes of random lengths (1 to 1400). Every other
	// message has a valid header of a handshake type at its exact size, or
	// of the transport type: it gets past the type check to the mac1 check
	// or the receiver index lookup.
	Garbage Kind = "garbage"
	// Truncated: valid-mac1 initiations, responses, cookie replies and
	// transport headers cut short.
	Truncated Kind = "truncated"
	// Transport: synthesized transport data: random receiver indices,
	// counters and ciphertext (an unknown index to the responder).
	Transport Kind = "transport"
	// Replay: transport data captured on the wire (-capture) and sent
	// again: authentic, but its counters were seen.
	Replay Kind = "replay"
)

// kinds lists every kind.
func kinds() []Kind { return []Kind{Initiation, Garbage, Truncated, Transport, Replay} }

// parseKind returns the kind named s.
func parseKind(s string) (Kind, error) {
	for _, k := range kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q (want one of %v)", s, kinds())
}

// pool makes n distinct messages of the kind (not Replay, whose messages
// are captured), for the responder whose public key is pub (needed by
// Initiation and Truncated only).
func pool(kind Kind, pub protocol.Key, n int) ([][]byte, error) {
	if n < 1 {
		return nil, fmt.Errorf("a pool of %d messages", n)
	}
	out := make([][]byte, 0, n)
	switch kind {
	case Initiation:
		inits, err := initiations(pub, n)
		if err != nil {
			return nil, err
		}
		out = inits
	case Garbage:
		for i := range n {
			out = append(out, garbage(i%2 == 1))
		}
	case Truncated:
		inits, err := initiations(pub, min(n, 64))
		if err != nil {
			return nil, err
		}
		for i := range n {
			out = append(out, truncated(inits[i%len(inits)], i))
		}
	case Transport:
		for range n {
			out = append(out, transport())
		}
	default:
		return nil, fmt.Errorf("no pool of kind %q", kind)
	}
	return out, nil
}

// initiations makes n distinct initiations, each with a fresh ephemeral key
// and sender index, from one stranger's static key to pub, mac1 valid.
func initiations(pub protocol.Key, n int) ([][]byte, error) {
	stranger, err := protocol.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("initiations: %w", err)
	}
	hs := protocol.NewHandshake(protocol.NewLocal(stranger), pub, protocol.Key{})
	gen := protocol.NewCookieGenerator(pub)
	out := make([][]byte, n)
	now := time.Now()
	for i := range out {
		msg := make([]byte, protocol.InitiationSize)
		m, err := hs.CreateInitiation(now.Add(time.Duration(i)), uint32(i+1), msg)
		if err != nil {
			return nil, fmt.Errorf("initiation %d: %w", i, err)
		}
		gen.AddMACs(msg[:m])
		out[i] = msg[:m]
	}
	return out, nil
}

// handshakeSize is the size of the messages of a handshake type.
func handshakeSize(typ uint32) int {
	switch typ {
	case protocol.TypeInitiation:
		return protocol.InitiationSize
	case protocol.TypeResponse:
		return protocol.ResponseSize
	default:
		return protocol.CookieReplySize
	}
}

// garbage returns random bytes; typed, a message with a valid header of a
// random handshake or transport type and a random body of a size that
// type allows.
func garbage(typed bool) []byte {
	if !typed {
		msg := make([]byte, 1+mrand.IntN(1400))
		rand.Read(msg)
		return msg
	}
	typ := uint32(1 + mrand.IntN(4))
	size := handshakeSize(typ)
	if typ == protocol.TypeTransport {
		size = protocol.TransportOverhead + 16*mrand.IntN(80)
	}
	msg := make([]byte, size)
	rand.Read(msg)
	binary.LittleEndian.PutUint32(msg, typ) // type, then three reserved zero bytes
	return msg
}

// truncated returns the i-th truncated message: a prefix of init (or of a
// response, cookie reply or transport header of random bytes) one byte or
// more shorter than its type's size.
func truncated(init []byte, i int) []byte {
	var whole []byte
	switch i % 4 {
	case 0:
		whole = init
	case 1, 2:
		typ := uint32(i%4 + 1) // response, cookie reply
		whole = make([]byte, handshakeSize(typ))
		rand.Read(whole)
		binary.LittleEndian.PutUint32(whole, typ)
	default:
		whole = make([]byte, protocol.TransportOverhead)
		rand.Read(whole)
		binary.LittleEndian.PutUint32(whole, protocol.TypeTransport)
	}
	n := 1 + mrand.IntN(len(whole)-1)
	return append([]byte(nil), whole[:n]...)
}

// transport returns a transport message with a random receiver index and
// counter and a random ciphertext (16 to 1420 bytes, with its tag).
func transport() []byte {
	msg := make([]byte, protocol.TransportOverhead+16*mrand.IntN(88))
	rand.Read(msg)
	binary.LittleEndian.PutUint32(msg, protocol.TypeTransport)
	return msg
}
