package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/tapwire/tapwire/protocol"
)

// Addresses inside the tunnel: wireguard-go's side is 10.0.0.1, ours
// 10.0.0.2 (its allowed IP for our peer).
var (
	wgAddr  = netip.MustParseAddr("10.0.0.1")
	ourAddr = netip.MustParseAddr("10.0.0.2")
)

// The wireguard-go device sends to its endpoint for us, 127.0.0.1:1, which
// bindtest maps to our end of the channel bind; we send to its end with
// bindtest endpoint 2.
const (
	wgEndpoint  = "127.0.0.1:1"
	toWireGuard = bindtest.ChannelEndpoint(2)
	tunMTU      = tuntest.DefaultMTU
)

func key(name string) protocol.Key {
	k := protocol.Key(sha256.Sum256([]byte(name)))
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k
}

// wg is a running wireguard-go device with one peer (us), a channel TUN
// and a channel bind whose other end we hold.
type wg struct {
	t    *testing.T
	dev  *device.Device
	tun  *tuntest.ChannelTUN
	bind conn.Bind    // our end
	recv chan []byte  // datagrams the device sent us
	peer *device.Peer // us, as the device knows us
	pub  protocol.Key // the device's public key
}

func newWG(t *testing.T, wgPriv, ourPub, psk protocol.Key) *wg {
	t.Helper()
	level := device.LogLevelSilent
	if os.Getenv("WG_INTEROP_VERBOSE") != "" {
		level = device.LogLevelVerbose
	}
	tun := tuntest.NewChannelTUN()
	binds := bindtest.NewChannelBinds()
	dev := device.NewDevice(tun.TUN(), binds[0], device.NewLogger(level, t.Name()+" "))
	cfg := fmt.Sprintf("private_key=%s\npublic_key=%s\npreshared_key=%s\nendpoint=%s\nallowed_ip=%s/32\n",
		wgPriv.Hex(), ourPub.Hex(), psk.Hex(), wgEndpoint, ourAddr)
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatalf("IpcSet: %v", err)
	}
	if err := dev.Up(); err != nil {
		t.Fatalf("Up: %v", err)
	}
	w := &wg{t: t, dev: dev, tun: tun, bind: binds[1], recv: make(chan []byte, 1024), pub: wgPriv.PublicKey()}
	w.peer = dev.LookupPeer(device.NoisePublicKey(ourPub))
	if w.peer == nil {
		t.Fatal("wireguard-go does not know our peer")
	}
	fns, _, err := w.bind.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		go func() {
			bufs, sizes, eps := [][]byte{make([]byte, 1<<16)}, []int{0}, []conn.Endpoint{nil}
			for {
				n, err := fn(bufs, sizes, eps)
				if err != nil {
					return
				}
				if n == 1 {
					w.recv <- append([]byte(nil), bufs[0][:sizes[0]]...)
				}
			}
		}()
	}
	t.Cleanup(func() {
		dev.Close()
		w.bind.Close()
	})
	return w
}

// send delivers a datagram to the device.
func (w *wg) send(msg []byte) {
	w.t.Helper()
	if err := w.bind.Send([][]byte{msg}, toWireGuard); err != nil {
		w.t.Fatalf("send to wireguard-go: %v", err)
	}
}

// receive returns the next datagram the device sent, of type typ
// (skipping others, such as keepalives when typ is not TypeTransport).
func (w *wg) receive(typ uint32) []byte {
	w.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-w.recv:
			if got, ok := protocol.MessageType(m); ok && got == typ {
				return m
			}
			w.t.Logf("skipping a %d-byte message from wireguard-go", len(m))
		case <-deadline:
			w.t.Fatalf("no message of type %d from wireguard-go", typ)
		}
	}
}

// toTUN writes an IP packet to the device's TUN, to be sent to us.
func (w *wg) toTUN(pkt []byte) {
	w.t.Helper()
	select {
	case w.tun.Outbound <- pkt:
	case <-time.After(5 * time.Second):
		w.t.Fatal("wireguard-go does not read its TUN")
	}
}

// fromTUN returns the next packet the device wrote to its TUN.
func (w *wg) fromTUN() []byte {
	w.t.Helper()
	select {
	case p := <-w.tun.Inbound:
		return p
	case <-time.After(5 * time.Second):
		w.t.Fatal("wireguard-go wrote nothing to its TUN")
		return nil
	}
}

// rxBytes reads the device's rx_bytes counter for our peer.
func (w *wg) rxBytes() uint64 {
	w.t.Helper()
	s, err := w.dev.IpcGet()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "rx_bytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	w.t.Fatal("no rx_bytes")
	return 0
}

// ipv4 returns an IPv4 packet of size bytes (at least 20) from src to dst.
func ipv4(src, dst netip.Addr, size int, fill byte) []byte {
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[8] = 64
	p[9] = 17
	copy(p[12:16], src.AsSlice())
	copy(p[16:20], dst.AsSlice())
	for i := 20; i < size; i++ {
		p[i] = fill + byte(i)
	}
	return p
}

// ours is our side: the protocol package.
type ours struct {
	local   *protocol.Local
	hs      *protocol.Handshake
	checker *protocol.CookieChecker
	gen     *protocol.CookieGenerator
}

func newOurs(priv, wgPub, psk protocol.Key) *ours {
	l := protocol.NewLocal(priv)
	return &ours{local: l, hs: protocol.NewHandshake(l, wgPub, psk), checker: protocol.NewCookieChecker(l.PublicKey()), gen: protocol.NewCookieGenerator(wgPub)}
}

// wire conversions between our bytes and wireguard-go's message structs
// (whose fields are exported; their own marshal methods are not).
func marshal(t *testing.T, msg any, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, msg); err != nil {
		t.Fatal(err)
	}
	if b.Len() != size {
		t.Fatalf("%T marshals to %d bytes, want %d", msg, b.Len(), size)
	}
	return b.Bytes()
}

func unmarshal(t *testing.T, b []byte, msg any) {
	t.Helper()
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, msg); err != nil {
		t.Fatal(err)
	}
}

// exchange checks transport data both ways between our keypair and the
// device, for many sizes: our messages decrypt in wireguard-go (the packet
// comes out of its TUN, unchanged), and its messages, of exactly the length
// wireguard-go's padding gives, decrypt with ours to the packet it read
// from its TUN. We send first (as a responder must).
func exchange(t *testing.T, w *wg, kp *protocol.Keypair) {
	t.Helper()
	sizes := []int{20, 21, 35, 36, 100, 1000, 1400, 1407, 1408, 1419, 1420}
	for i, n := range sizes {
		pkt := ipv4(ourAddr, wgAddr, n, byte(i))
		buf := make([]byte, protocol.TransportOverhead+protocol.PaddedLen(n, 0))
		copy(buf[protocol.TransportHeaderSize:], pkt)
		m, err := kp.SealTransportMTU(buf, n, tunMTU)
		if err != nil {
			t.Fatal(err)
		}
		w.send(buf[:m])
		if got := w.fromTUN(); !bytes.Equal(got, pkt) {
			t.Fatalf("ours→wireguard-go, %d bytes: TUN got %d bytes, differing", n, len(got))
		}
	}
	for i, n := range sizes {
		pkt := ipv4(wgAddr, ourAddr, n, byte(100+i))
		w.toTUN(pkt)
		msg := w.receive(protocol.TypeTransport)
		for len(msg) == protocol.KeepaliveSize { // a keepalive of its timers
			if p, err := kp.OpenTransport(msg); err != nil || len(p) != 0 {
				t.Fatalf("wireguard-go keepalive: %d bytes, %v", len(p), err)
			}
			msg = w.receive(protocol.TypeTransport)
		}
		if want := protocol.TransportOverhead + protocol.PaddedLen(n, tunMTU); len(msg) != want {
			t.Fatalf("wireguard-go sent %d bytes for a %d-byte packet; PaddedLen says %d", len(msg), n, want)
		}
		recv, _, err := protocol.ParseTransportHeader(msg)
		if err != nil || recv != kp.LocalIndex {
			t.Fatalf("wireguard-go's message to index %d (%v), ours is %d", recv, err, kp.LocalIndex)
		}
		plain, err := kp.OpenTransport(msg)
		if err != nil {
			t.Fatalf("wireguard-go→ours, %d bytes: %v", n, err)
		}
		if !bytes.Equal(plain[:n], pkt) || len(plain) != protocol.PaddedLen(n, tunMTU) {
			t.Fatalf("wireguard-go→ours, %d bytes: wrong plaintext", n)
		}
		for _, b := range plain[n:] {
			if b != 0 {
				t.Fatal("non-zero padding")
			}
		}
	}

	// Counters out of order, within wireguard-go's window, all arrive.
	var batch [][]byte
	for i := range 40 {
		pkt := ipv4(ourAddr, wgAddr, 60, byte(i))
		buf := make([]byte, protocol.TransportOverhead+64)
		copy(buf[protocol.TransportHeaderSize:], pkt)
		m, _ := kp.SealTransport(buf, 60)
		batch = append(batch, buf[:m])
	}
	for i := len(batch) - 1; i >= 0; i-- {
		w.send(batch[i])
		if got := w.fromTUN(); got[20] != byte(20+i) {
			t.Fatalf("reordered message %d not delivered", i)
		}
	}
	// A replay is dropped by wireguard-go: nothing reaches the TUN, and
	// the next fresh message is what arrives.
	w.send(batch[7])
	fresh := ipv4(ourAddr, wgAddr, 50, 0xee)
	buf := make([]byte, protocol.TransportOverhead+64)
	copy(buf[protocol.TransportHeaderSize:], fresh)
	m, _ := kp.SealTransport(buf, 50)
	w.send(buf[:m])
	if got := w.fromTUN(); !bytes.Equal(got, fresh) {
		t.Fatal("replayed message delivered by wireguard-go")
	}

	// Our keepalive is authenticated and counted by wireguard-go.
	before := w.rxBytes()
	ka := make([]byte, protocol.KeepaliveSize)
	if m, err := kp.SealTransport(ka, 0); err != nil || m != protocol.KeepaliveSize {
		t.Fatalf("keepalive: %d, %v", m, err)
	}
	w.send(ka)
	deadline := time.Now().Add(5 * time.Second)
	for w.rxBytes() < before+protocol.KeepaliveSize {
		if time.Now().After(deadline) {
			t.Fatal("wireguard-go did not count our keepalive")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var pskCases = []struct {
	name string
	psk  protocol.Key
}{
	{"no psk", protocol.Key{}},
	{"psk", key("preshared")},
}

// TestDirectHandshake drives wireguard-go's exported handshake functions
// (CreateMessageInitiation, ConsumeMessageInitiation, CreateMessageResponse,
// ConsumeMessageResponse, BeginSymmetricSession) with our messages, in both
// roles: their structs are parsed from our bytes and ours from theirs.
// Then transport data goes both ways through the running device.
func TestDirectHandshake(t *testing.T) {
	for _, pc := range pskCases {
		t.Run("wireguard-go initiates, "+pc.name, func(t *testing.T) {
			w := newWG(t, key("wg"), key("ours").PublicKey(), pc.psk)
			o := newOurs(key("ours"), w.pub, pc.psk)

			init, err := w.dev.CreateMessageInitiation(w.peer)
			if err != nil {
				t.Fatal(err)
			}
			in, err := o.local.ConsumeInitiation(marshal(t, init, protocol.InitiationSize))
			if err != nil {
				t.Fatalf("ConsumeInitiation of wireguard-go's initiation: %v", err)
			}
			if in.RemoteStatic != w.pub || in.SenderIndex != init.Sender {
				t.Fatal("initiation decrypted to the wrong peer or index")
			}
			now := time.Now()
			if err := o.hs.AcceptInitiation(in, now); err != nil {
				t.Fatalf("AcceptInitiation: %v", err)
			}
			if d := now.Sub(protocol.ParseTAI64N(in.Timestamp)); d < 0 || d > 5*time.Second {
				t.Fatalf("wireguard-go's timestamp is %v off", d)
			}
			resp := make([]byte, protocol.ResponseSize)
			if _, err := o.hs.CreateResponse(0xabcdef01, resp); err != nil {
				t.Fatal(err)
			}
			var r device.MessageResponse
			unmarshal(t, resp, &r)
			if p := w.dev.ConsumeMessageResponse(&r); p != w.peer {
				t.Fatal("wireguard-go rejects our response")
			}
			if err := w.peer.BeginSymmetricSession(); err != nil {
				t.Fatal(err)
			}
			kp, err := o.hs.DeriveKeypair(now)
			if err != nil {
				t.Fatal(err)
			}
			if kp.RemoteIndex != init.Sender || kp.Initiator {
				t.Fatal("keypair indices")
			}
			exchange(t, w, kp)
		})
		t.Run("ours initiates, "+pc.name, func(t *testing.T) {
			w := newWG(t, key("wg"), key("ours").PublicKey(), pc.psk)
			o := newOurs(key("ours"), w.pub, pc.psk)

			msg := make([]byte, protocol.InitiationSize)
			if _, err := o.hs.CreateInitiation(time.Now(), 0x12345678, msg); err != nil {
				t.Fatal(err)
			}
			var init device.MessageInitiation
			unmarshal(t, msg, &init)
			if p := w.dev.ConsumeMessageInitiation(&init); p != w.peer {
				t.Fatal("wireguard-go rejects our initiation")
			}
			resp, err := w.dev.CreateMessageResponse(w.peer)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Receiver != 0x12345678 {
				t.Fatalf("wireguard-go answers index %#x", resp.Receiver)
			}
			if err := o.hs.ConsumeResponse(marshal(t, resp, protocol.ResponseSize)); err != nil {
				t.Fatalf("ConsumeResponse of wireguard-go's response: %v", err)
			}
			if err := w.peer.BeginSymmetricSession(); err != nil {
				t.Fatal(err)
			}
			kp, err := o.hs.DeriveKeypair(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if kp.RemoteIndex != resp.Sender || !kp.Initiator {
				t.Fatal("keypair indices")
			}
			// Replaying our initiation: wireguard-go refuses it (our
			// timestamp is the one it has seen).
			if p := w.dev.ConsumeMessageInitiation(&init); p != nil {
				t.Fatal("wireguard-go accepted a replayed initiation")
			}
			exchange(t, w, kp)
		})
	}
}

// TestWireHandshake lets the running wireguard-go device do everything
// itself over its bind, with its timers and mac1 checks: it initiates when a
// packet for us appears on its TUN, or answers our initiation. It drops any
// handshake message whose mac1 is wrong, so a completed handshake proves our
// mac1; ours checks its mac1 with CheckMAC1.
func TestWireHandshake(t *testing.T) {
	for _, pc := range pskCases {
		t.Run("wireguard-go initiates, "+pc.name, func(t *testing.T) {
			w := newWG(t, key("wg2"), key("ours2").PublicKey(), pc.psk)
			o := newOurs(key("ours2"), w.pub, pc.psk)

			first := ipv4(wgAddr, ourAddr, 84, 0x33)
			w.toTUN(first) // staged; makes wireguard-go initiate
			msg := w.receive(protocol.TypeInitiation)
			if !o.checker.CheckMAC1(msg) {
				t.Fatal("wireguard-go's mac1 refused")
			}
			in, err := o.local.ConsumeInitiation(msg)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if err := o.hs.AcceptInitiation(in, now); err != nil {
				t.Fatal(err)
			}
			resp := make([]byte, protocol.ResponseSize)
			if _, err := o.hs.CreateResponse(77, resp); err != nil {
				t.Fatal(err)
			}
			o.gen.AddMACs(resp)
			kp, err := o.hs.DeriveKeypair(now)
			if err != nil {
				t.Fatal(err)
			}
			w.send(resp)
			// wireguard-go now sends the staged packet (or a keepalive
			// first) with its new keypair.
			data := w.receive(protocol.TypeTransport)
			plain, err := kp.OpenTransport(data)
			if err != nil {
				t.Fatalf("first message from wireguard-go: %v", err)
			}
			if len(plain) == 0 {
				data = w.receive(protocol.TypeTransport)
				if plain, err = kp.OpenTransport(data); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(plain[:len(first)], first) {
				t.Fatal("staged packet garbled")
			}
			exchange(t, w, kp)
		})
		t.Run("ours initiates, "+pc.name, func(t *testing.T) {
			w := newWG(t, key("wg3"), key("ours3").PublicKey(), pc.psk)
			o := newOurs(key("ours3"), w.pub, pc.psk)

			msg := make([]byte, protocol.InitiationSize)
			if _, err := o.hs.CreateInitiation(time.Now(), 5, msg); err != nil {
				t.Fatal(err)
			}
			o.gen.AddMACs(msg)
			w.send(msg)
			resp := w.receive(protocol.TypeResponse)
			if !o.checker.CheckMAC1(resp) {
				t.Fatal("wireguard-go's response mac1 refused")
			}
			if _, recv, err := protocol.ParseResponseIndices(resp); err != nil || recv != 5 {
				t.Fatalf("response to index %d, %v", recv, err)
			}
			if err := o.hs.ConsumeResponse(resp); err != nil {
				t.Fatal(err)
			}
			kp, err := o.hs.DeriveKeypair(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			exchange(t, w, kp)
		})
	}
}

// TestWireBadMAC1: wireguard-go ignores an initiation whose mac1 is not
// made with its public key (here: no macs at all), and answers the same
// initiation with macs.
func TestWireBadMAC1(t *testing.T) {
	w := newWG(t, key("wg4"), key("ours4").PublicKey(), protocol.Key{})
	o := newOurs(key("ours4"), w.pub, protocol.Key{})
	msg := make([]byte, protocol.InitiationSize)
	if _, err := o.hs.CreateInitiation(time.Now(), 9, msg); err != nil {
		t.Fatal(err)
	}
	w.send(msg)
	select {
	case m := <-w.recv:
		t.Fatalf("wireguard-go answered an initiation without mac1 (%d bytes)", len(m))
	case <-time.After(300 * time.Millisecond):
	}
	o.gen.AddMACs(msg)
	w.send(msg)
	w.receive(protocol.TypeResponse)
}

// TestWrongPSK: with different preshared keys, each side refuses the
// other's response.
func TestWrongPSK(t *testing.T) {
	w := newWG(t, key("wg5"), key("ours5").PublicKey(), key("psk a"))
	o := newOurs(key("ours5"), w.pub, key("psk b"))
	msg := make([]byte, protocol.InitiationSize)
	o.hs.CreateInitiation(time.Now(), 1, msg)
	var init device.MessageInitiation
	unmarshal(t, msg, &init)
	if w.dev.ConsumeMessageInitiation(&init) != w.peer {
		t.Fatal("initiation refused (the psk is not in it)")
	}
	resp, err := w.dev.CreateMessageResponse(w.peer)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.hs.ConsumeResponse(marshal(t, resp, protocol.ResponseSize)); !errors.Is(err, protocol.ErrAuth) {
		t.Fatalf("response with another psk: %v", err)
	}

	init2, err := w.dev.CreateMessageInitiation(w.peer)
	if err != nil {
		t.Fatal(err)
	}
	in, err := o.local.ConsumeInitiation(marshal(t, init2, protocol.InitiationSize))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.hs.AcceptInitiation(in, time.Now()); err != nil {
		t.Fatal(err)
	}
	ours := make([]byte, protocol.ResponseSize)
	o.hs.CreateResponse(2, ours)
	var r device.MessageResponse
	unmarshal(t, ours, &r)
	if w.dev.ConsumeMessageResponse(&r) != nil {
		t.Fatal("wireguard-go accepted a response made with another psk")
	}
}

// TestCookies checks mac1, mac2 and cookie replies against wireguard-go's
// exported CookieChecker and CookieGenerator, both ways.
func TestCookies(t *testing.T) {
	responder := key("cookie responder").PublicKey()
	src := []byte{192, 0, 2, 7, 0x20, 0xca}
	handshakeMsg := func(size int, seed byte) []byte {
		m := make([]byte, size)
		for i := range m[:size-32] {
			m[i] = seed + byte(i)
		}
		m[0], m[1], m[2], m[3] = byte(protocol.TypeInitiation), 0, 0, 0
		if size == protocol.ResponseSize {
			m[0] = protocol.TypeResponse
		}
		return m
	}

	for _, size := range []int{protocol.InitiationSize, protocol.ResponseSize} {
		t.Run(fmt.Sprintf("ours generates, wireguard-go checks, %d", size), func(t *testing.T) {
			var theirs device.CookieChecker
			theirs.Init(device.NoisePublicKey(responder))
			gen := protocol.NewCookieGenerator(responder)

			msg := handshakeMsg(size, 1)
			gen.AddMACs(msg)
			if !theirs.CheckMAC1(msg) {
				t.Fatal("wireguard-go refuses our mac1")
			}
			if theirs.CheckMAC2(msg, src) {
				t.Fatal("mac2 without cookie accepted")
			}
			reply, err := theirs.CreateReply(msg, 0x55, src)
			if err != nil {
				t.Fatal(err)
			}
			rb := marshal(t, reply, protocol.CookieReplySize)
			if r, err := protocol.ParseCookieReplyReceiver(rb); err != nil || r != 0x55 {
				t.Fatalf("reply receiver %d, %v", r, err)
			}
			if err := gen.ConsumeReply(rb); err != nil {
				t.Fatalf("ConsumeReply of wireguard-go's reply: %v", err)
			}
			msg2 := handshakeMsg(size, 2)
			gen.AddMACs(msg2)
			if !theirs.CheckMAC1(msg2) || !theirs.CheckMAC2(msg2, src) {
				t.Fatal("wireguard-go refuses our mac2")
			}
			if theirs.CheckMAC2(msg2, []byte{192, 0, 2, 8, 0x20, 0xca}) {
				t.Fatal("mac2 accepted from another source")
			}
		})
		t.Run(fmt.Sprintf("wireguard-go generates, ours checks, %d", size), func(t *testing.T) {
			var theirs device.CookieGenerator
			theirs.Init(device.NoisePublicKey(responder))
			checker := protocol.NewCookieChecker(responder)

			msg := handshakeMsg(size, 3)
			theirs.AddMacs(msg)
			if !checker.CheckMAC1(msg) {
				t.Fatal("our checker refuses wireguard-go's mac1")
			}
			if checker.CheckMAC2(msg, src) {
				t.Fatal("mac2 without cookie accepted")
			}
			rb := make([]byte, protocol.CookieReplySize)
			if _, err := checker.CreateReply(msg, 0x66, src, rb); err != nil {
				t.Fatal(err)
			}
			var reply device.MessageCookieReply
			unmarshal(t, rb, &reply)
			if reply.Receiver != 0x66 || reply.Type != protocol.TypeCookieReply {
				t.Fatal("reply header")
			}
			if !theirs.ConsumeReply(&reply) {
				t.Fatal("wireguard-go refuses our cookie reply")
			}
			msg2 := handshakeMsg(size, 4)
			theirs.AddMacs(msg2)
			if !checker.CheckMAC1(msg2) || !checker.CheckMAC2(msg2, src) {
				t.Fatal("our checker refuses wireguard-go's mac2")
			}
		})
	}

	// The keys of a real device: its initiations carry mac1 for our key
	// (TestWireHandshake), and our CookieChecker's keys are those of the
	// Local's public key, as wireguard-go's are of its device key.
	ourPub := protocol.NewLocal(key("cookie responder")).PublicKey()
	if ourPub != responder {
		t.Fatal("Local public key differs from Key.PublicKey")
	}
}
