package protocol

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestCookieFlow: a responder under load answers an initiation without
// mac2 with a cookie reply; the initiator takes the cookie, and its next
// message carries a mac2 the responder accepts — from the same address
// only, and only while cookie and secret are fresh.
func TestCookieFlow(t *testing.T) {
	a, b := newParties(Key{}, Key{}, "")
	clk := &clock{t: testEpoch}
	b.checker.now, a.gen.now = clk.now, clk.now
	src := SourceBytes(netip.MustParseAddrPort("192.0.2.1:51820"))
	other := SourceBytes(netip.MustParseAddrPort("192.0.2.2:51820"))

	initiation := func() []byte {
		msg := make([]byte, InitiationSize)
		if _, err := a.hs.CreateInitiation(clk.t, 42, msg); err != nil {
			t.Fatal(err)
		}
		a.gen.AddMACs(msg)
		return msg
	}

	if err := a.gen.ConsumeReply(make([]byte, CookieReplySize)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("zero reply: %v", err)
	}
	reply0 := make([]byte, CookieReplySize)
	reply0[0] = TypeCookieReply
	if err := a.gen.ConsumeReply(reply0); !errors.Is(err, ErrCookie) {
		t.Fatalf("reply before any message: %v", err)
	}

	msg := initiation()
	if !b.checker.CheckMAC1(msg) {
		t.Fatal("mac1 refused")
	}
	if !isZero(msg[InitiationSize-MACSize:]) || b.checker.CheckMAC2(msg, src) {
		t.Fatal("mac2 without a cookie")
	}
	sender, err := ParseHandshakeSender(msg)
	if err != nil || sender != 42 {
		t.Fatalf("ParseHandshakeSender = %d, %v", sender, err)
	}
	reply := make([]byte, CookieReplySize)
	n, err := b.checker.CreateReply(msg, sender, src, reply)
	if err != nil || n != CookieReplySize {
		t.Fatalf("CreateReply = %d, %v", n, err)
	}
	if typ, ok := MessageType(reply); !ok || typ != TypeCookieReply {
		t.Fatal("reply type")
	}
	if r, err := ParseCookieReplyReceiver(reply); err != nil || r != 42 {
		t.Fatalf("ParseCookieReplyReceiver = %d, %v", r, err)
	}
	// Tampered replies are refused and leave no cookie behind.
	for i := 8; i < CookieReplySize; i++ {
		bad := append([]byte(nil), reply...)
		bad[i] ^= 0x10
		if err := a.gen.ConsumeReply(bad); !errors.Is(err, ErrCookie) || !errors.Is(err, ErrAuth) {
			t.Fatalf("reply with byte %d flipped: %v", i, err)
		}
	}
	if err := a.gen.ConsumeReply(reply); err != nil {
		t.Fatalf("ConsumeReply: %v", err)
	}

	clk.t = clk.t.Add(time.Second)
	msg2 := initiation()
	if !b.checker.CheckMAC1(msg2) || !b.checker.CheckMAC2(msg2, src) {
		t.Fatal("mac2 with the cookie refused")
	}
	if b.checker.CheckMAC2(msg2, other) {
		t.Fatal("mac2 accepted from another address")
	}
	tampered := append([]byte(nil), msg2...)
	tampered[5] ^= 1
	if b.checker.CheckMAC1(tampered) || b.checker.CheckMAC2(tampered, src) {
		t.Fatal("macs accepted on a changed message")
	}
	// The message is still a good handshake message.
	in, err := b.local.ConsumeInitiation(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.hs.AcceptInitiation(in, clk.t); err != nil {
		t.Fatal(err)
	}

	// A reply bound to an older message's mac1 is refused.
	if err := a.gen.ConsumeReply(reply); !errors.Is(err, ErrCookie) {
		t.Fatalf("stale reply: %v", err)
	}

	// The cookie lasts CookieRefreshTime on the initiator's side...
	clk.t = testEpoch.Add(CookieRefreshTime + 2*time.Second)
	msg3 := initiation()
	if !isZero(msg3[InitiationSize-MACSize:]) {
		t.Fatal("mac2 made with an expired cookie")
	}
	// ...and the responder's secret changes as often.
	clk.t = testEpoch.Add(time.Second)
	a.gen.ConsumeReply(replyFor(t, b.checker, initiation(), src))
	clk.t = testEpoch.Add(CookieRefreshTime + time.Second/2)
	msg4 := initiation()
	if isZero(msg4[InitiationSize-MACSize:]) {
		t.Fatal("no mac2 with a fresh cookie")
	}
	clk.t = testEpoch.Add(CookieRefreshTime + 2*time.Second)
	if b.checker.CheckMAC2(msg4, src) {
		t.Fatal("mac2 accepted after the secret expired")
	}
	// A new reply brings a new secret and cookie.
	a.gen.ConsumeReply(replyFor(t, b.checker, initiation(), src))
	if !b.checker.CheckMAC2(initiation(), src) {
		t.Fatal("mac2 refused with the new secret")
	}

	// Responses carry macs the same way, keyed by the initiator's key.
	resp := make([]byte, ResponseSize)
	b.hs.CreateResponse(7, resp)
	b.gen.AddMACs(resp)
	if !a.checker.CheckMAC1(resp) || b.checker.CheckMAC1(resp) {
		t.Fatal("response mac1 keyed wrong")
	}
}

func replyFor(t *testing.T, c *CookieChecker, msg, src []byte) []byte {
	t.Helper()
	reply := make([]byte, CookieReplySize)
	if _, err := c.CreateReply(msg, 1, src, reply); err != nil {
		t.Fatal(err)
	}
	return reply
}

func TestCookieErrors(t *testing.T) {
	c := NewCookieChecker(testKey("x").PublicKey())
	g := NewCookieGenerator(testKey("x").PublicKey())
	for _, n := range []int{0, 10, 31, 32, 100, CookieReplySize, InitiationSize + 1} {
		msg := make([]byte, n)
		g.AddMACs(msg) // ignored
		if !isZero(msg) {
			t.Fatalf("AddMACs wrote into a %d-byte message", n)
		}
		if c.CheckMAC1(msg) || c.CheckMAC2(msg, nil) {
			t.Fatalf("macs of a %d-byte message accepted", n)
		}
		if _, err := c.CreateReply(msg, 0, nil, make([]byte, 64)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("CreateReply for %d bytes: %v", n, err)
		}
	}
	if _, err := c.CreateReply(make([]byte, InitiationSize), 0, nil, make([]byte, 63)); !errors.Is(err, ErrShortBuffer) {
		t.Fatal("CreateReply short buffer")
	}
	if _, err := ParseCookieReplyReceiver(make([]byte, 64)); !errors.Is(err, ErrMalformed) {
		t.Fatal("ParseCookieReplyReceiver of a zero message")
	}
	// mac1 of a real message with a zero msg: verifies.
	msg := make([]byte, ResponseSize)
	g.AddMACs(msg)
	if !c.CheckMAC1(msg) {
		t.Fatal("mac1 of a response")
	}
}

func TestSourceBytes(t *testing.T) {
	b := SourceBytes(netip.MustParseAddrPort("192.0.2.1:258"))
	if string(b) != "\xc0\x00\x02\x01\x02\x01" {
		t.Fatalf("SourceBytes = % x", b)
	}
	if len(SourceBytes(netip.MustParseAddrPort("[2001:db8::1]:1"))) != 18 {
		t.Fatal("IPv6 SourceBytes")
	}
}
