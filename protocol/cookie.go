package protocol

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Handshake messages end with two MACs (whitepaper section 5.4.4):
//
//	mac1 = MAC(HASH("mac1----" || S_r^pub), msg up to mac1)
//	mac2 = MAC(cookie, msg up to mac2), or zeros without a cookie
//
// mac1 proves the sender knows the receiver's public key; mac2 proves it
// can receive at its address. A responder under load answers a handshake
// message without a valid mac2 with a cookie reply (section 5.4.7), whose
// cookie, MAC(secret, source address), is encrypted with XChaCha20-Poly1305
// under HASH("cookie--" || S_r^pub) and bound to the message's mac1.

// macOffsets returns where mac1 and mac2 start in handshake message msg
// (an initiation or a response), and false for any other length.
func macOffsets(msg []byte) (mac1, mac2 int, ok bool) {
	if len(msg) != InitiationSize && len(msg) != ResponseSize {
		return 0, 0, false
	}
	return len(msg) - 2*MACSize, len(msg) - MACSize, true
}

// CookieChecker is the responder side of mac1 and mac2 for one Local: it
// verifies both MACs of received handshake messages and makes cookie
// replies. It is safe for concurrent use.
type CookieChecker struct {
	mac1Key sum         // HASH("mac1----" || our public key)
	aead    cipher.AEAD // XChaCha20-Poly1305 under HASH("cookie--" || our public key)

	rand io.Reader        // nil: crypto/rand (tests set it)
	now  func() time.Time // nil: time.Now (tests set it)

	mu        sync.RWMutex
	secret    sum       // cookie secret, random, changed every CookieRefreshTime
	secretSet time.Time // zero: no secret yet
}

// NewCookieChecker returns the checker for the Local whose public key is
// localPublic, with the MAC and cookie keys precomputed.
func NewCookieChecker(localPublic Key) *CookieChecker {
	c := &CookieChecker{mac1Key: labelHash(labelMAC1, localPublic)}
	key := labelHash(labelCookie, localPublic)
	c.aead = newXAEAD(&key)
	return c
}

func newXAEAD(key *sum) cipher.AEAD {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil { // FIPS 140-only mode, where WireGuard cannot run
		panic("protocol: " + err.Error())
	}
	return aead
}

func (c *CookieChecker) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// CheckMAC1 reports whether handshake message msg (an initiation or a
// response, macs included) carries a valid mac1 for us. The engine checks it
// before spending any Curve25519 operation on the message.
func (c *CookieChecker) CheckMAC1(msg []byte) bool {
	o1, o2, ok := macOffsets(msg)
	if !ok {
		return false
	}
	var mac [MACSize]byte
	mac128(&mac, c.mac1Key[:], msg[:o1])
	return subtle.ConstantTimeCompare(mac[:], msg[o1:o2]) == 1
}

// CheckMAC2 reports whether handshake message msg carries a valid mac2: one
// made with the cookie we give to src, the sender's address. src is any
// byte encoding of the source address and port, used the same way by
// CheckMAC2 and CreateReply (wireguard-go uses netip.AddrPort's
// MarshalBinary: the IP bytes then the port in little-endian; see
// SourceBytes). Cookies expire with the secret, every CookieRefreshTime.
func (c *CookieChecker) CheckMAC2(msg []byte, src []byte) bool {
	_, o2, ok := macOffsets(msg)
	if !ok {
		return false
	}
	now := c.clock()
	c.mu.RLock()
	if c.secretSet.IsZero() || now.Sub(c.secretSet) > CookieRefreshTime {
		c.mu.RUnlock()
		return false
	}
	var cookie [MACSize]byte
	mac128(&cookie, c.secret[:], src)
	c.mu.RUnlock()
	var mac [MACSize]byte
	mac128(&mac, cookie[:], msg[:o2])
	return subtle.ConstantTimeCompare(mac[:], msg[o2:]) == 1
}

// CreateReply writes into out[:CookieReplySize] the cookie reply to
// handshake message msg (whose mac1 it is bound to) from src, and returns
// CookieReplySize. receiverIndex is msg's sender index (see
// ParseHandshakeSender). The engine sends it instead of processing msg when
// under load and CheckMAC2 fails; msg's mac1 must have been checked.
func (c *CookieChecker) CreateReply(msg []byte, receiverIndex uint32, src []byte, out []byte) (int, error) {
	o1, o2, ok := macOffsets(msg)
	if !ok {
		return 0, fmt.Errorf("create cookie reply: %w: not an initiation or a response", ErrMalformed)
	}
	if len(out) < CookieReplySize {
		return 0, fmt.Errorf("create cookie reply: %w: have %d bytes, need %d", ErrShortBuffer, len(out), CookieReplySize)
	}
	r := c.rand
	if r == nil {
		r = rand.Reader
	}
	now := c.clock()
	c.mu.Lock()
	if c.secretSet.IsZero() || now.Sub(c.secretSet) > CookieRefreshTime {
		if _, err := io.ReadFull(r, c.secret[:]); err != nil {
			c.mu.Unlock()
			return 0, fmt.Errorf("create cookie reply: secret: %w", err)
		}
		c.secretSet = now
	}
	var cookie [MACSize]byte
	mac128(&cookie, c.secret[:], src)
	c.mu.Unlock()

	reply := out[:CookieReplySize]
	binary.LittleEndian.PutUint32(reply[0:4], TypeCookieReply)
	binary.LittleEndian.PutUint32(reply[4:8], receiverIndex)
	nonce := reply[offsetCookieNonce:offsetCookieBody]
	if _, err := io.ReadFull(r, nonce); err != nil {
		return 0, fmt.Errorf("create cookie reply: nonce: %w", err)
	}
	c.aead.Seal(reply[offsetCookieBody:offsetCookieBody], nonce, cookie[:], msg[o1:o2])
	clear(cookie[:])
	return CookieReplySize, nil
}

// CookieGenerator is the initiator side of mac1 and mac2 for one peer: it
// adds both MACs to the handshake messages we send to the peer and takes
// the cookie replies the peer sends back. It is safe for concurrent use.
type CookieGenerator struct {
	mac1Key sum         // HASH("mac1----" || the peer's public key)
	aead    cipher.AEAD // XChaCha20-Poly1305 under HASH("cookie--" || the peer's public key)

	now func() time.Time // nil: time.Now (tests set it)

	mu          sync.Mutex
	cookie      [MACSize]byte
	cookieSet   time.Time // zero: no cookie
	hasLastMAC1 bool
	lastMAC1    [MACSize]byte // mac1 of the last message sent: a reply's AD
}

// NewCookieGenerator returns the generator for the peer whose static
// public key is remotePublic, with the MAC and cookie keys precomputed.
func NewCookieGenerator(remotePublic Key) *CookieGenerator {
	g := &CookieGenerator{mac1Key: labelHash(labelMAC1, remotePublic)}
	key := labelHash(labelCookie, remotePublic)
	g.aead = newXAEAD(&key)
	return g
}

func (g *CookieGenerator) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// AddMACs fills in the macs of handshake message msg (an initiation or a
// response, as CreateInitiation and CreateResponse wrote it) just before it
// is sent: mac1 always, mac2 when we hold a cookie from the peer younger
// than CookieRefreshTime (zeros otherwise). It remembers mac1 to accept the
// cookie reply to this message. Messages of other lengths are left alone.
func (g *CookieGenerator) AddMACs(msg []byte) {
	o1, o2, ok := macOffsets(msg)
	if !ok {
		return
	}
	var mac1 [MACSize]byte
	mac128(&mac1, g.mac1Key[:], msg[:o1])
	copy(msg[o1:o2], mac1[:])
	now := g.clock()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastMAC1, g.hasLastMAC1 = mac1, true
	if g.cookieSet.IsZero() || now.Sub(g.cookieSet) > CookieRefreshTime {
		clear(msg[o2:])
		return
	}
	var mac2 [MACSize]byte
	mac128(&mac2, g.cookie[:], msg[:o2])
	copy(msg[o2:], mac2[:])
}

// ConsumeReply takes cookie reply msg from the peer (the engine found this
// generator by the reply's receiver index, see ParseCookieReplyReceiver):
// it decrypts the cookie, which must be bound to the mac1 of the last
// message AddMACs prepared, and keeps it for the mac2 of the next messages.
// Errors: ErrMalformed, ErrCookie (no message sent yet, or the reply does
// not decrypt, then also ErrAuth).
func (g *CookieGenerator) ConsumeReply(msg []byte) error {
	if len(msg) != CookieReplySize || binary.LittleEndian.Uint32(msg[0:4]) != TypeCookieReply {
		return fmt.Errorf("consume cookie reply: %w: want %d bytes of type %d", ErrMalformed, CookieReplySize, TypeCookieReply)
	}
	now := g.clock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.hasLastMAC1 {
		return fmt.Errorf("consume cookie reply: %w: no handshake message was sent", ErrCookie)
	}
	var cookie [MACSize]byte
	if _, err := g.aead.Open(cookie[:0], msg[offsetCookieNonce:offsetCookieBody], msg[offsetCookieBody:], g.lastMAC1[:]); err != nil {
		return fmt.Errorf("consume cookie reply: %w: %w", ErrCookie, ErrAuth)
	}
	g.cookie, g.cookieSet = cookie, now
	return nil
}

// ParseCookieReplyReceiver returns the receiver index of cookie reply msg:
// the sender index of our handshake message it answers.
func ParseCookieReplyReceiver(msg []byte) (uint32, error) {
	if len(msg) != CookieReplySize || binary.LittleEndian.Uint32(msg[0:4]) != TypeCookieReply {
		return 0, fmt.Errorf("parse cookie reply: %w: want %d bytes of type %d", ErrMalformed, CookieReplySize, TypeCookieReply)
	}
	return binary.LittleEndian.Uint32(msg[offsetCookieReceiver:]), nil
}

// SourceBytes returns src as wireguard-go binds cookies to it
// (netip.AddrPort.MarshalBinary: the 4 or 16 address bytes, the zone if
// any, then the port in little-endian). Any encoding works as long as an
// engine uses the same one for CheckMAC2 and CreateReply, since only the
// responder itself checks the cookies it makes.
func SourceBytes(src netip.AddrPort) []byte {
	b, _ := src.MarshalBinary()
	return b
}
