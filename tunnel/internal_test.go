//go:build linux

package tunnel

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// setEndpoint runs for every received data packet: it must not allocate
// when the endpoint is unchanged.
func TestSetEndpointNoAlloc(t *testing.T) {
	p := &Peer{dev: &Device{}}
	ep := netip.MustParseAddrPort("192.0.2.1:51820")
	p.setEndpoint(ep)
	if n := testing.AllocsPerRun(1000, func() { p.setEndpoint(ep) }); n != 0 {
		t.Errorf("setEndpoint with an unchanged endpoint: %v allocations", n)
	}
}

// An IPv6 endpoint on an IPv4-only socket is refused, not a crash.
func TestIPv6EndpointOnIPv4Socket(t *testing.T) {
	b := &udpBatch{v4: true}
	if b.add([]byte{4}, netip.MustParseAddrPort("[2001:db8::1]:51820")) {
		t.Error("an IPv6 destination was queued on an IPv4 socket")
	}
	if !b.add([]byte{4}, netip.MustParseAddrPort("192.0.2.1:51820")) {
		t.Error("an IPv4 destination was refused")
	}
}

// Messages built in a batch's scratch space leave intact and in order even
// when the batch fills up between them: the scratch space is never handed
// out again before the messages in it were sent.
func TestScratchSurvivesFullBatch(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	kc, err := newKernelConn(send)
	if err != nil {
		t.Fatal(err)
	}
	sb := newUDPBatch(kc, 2, 0)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	const want = "abcdefg"
	for i := range len(want) {
		buf := sb.scratch(100)
		if buf == nil {
			sb.flush()
			if buf = sb.scratch(100); buf == nil {
				t.Fatal("no scratch space after a flush")
			}
		}
		buf[0] = want[i]
		sb.add(buf[:1], to)
	}
	sb.flush()
	got := make([]byte, 0, len(want))
	b := make([]byte, 16)
	recv.SetReadDeadline(time.Now().Add(2 * time.Second))
	for len(got) < len(want) {
		n, _, err := recv.ReadFromUDPAddrPort(b)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, b[:n]...)
	}
	if string(got) != want {
		t.Errorf("received %q, sent %q", got, want)
	}
}

// testDevice starts a Device on a new TUN or TAP device in ns, with a new
// private key and a socket on a random port, closed when the test ends.
func testDevice(t *testing.T, ns *nstest.NS, name string, mode tun.Mode, mtu int) (*Device, protocol.Key) {
	t.Helper()
	dev, err := tun.Open(tun.Config{Name: name, Mode: mode, NetNS: ns.Name, MTU: mtu})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(dev, Options{NetNS: ns.Name})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(devconf.DeviceConfig{PrivateKey: &k}); err != nil {
		t.Fatal(err)
	}
	return d, k
}

// A single datagram (a keepalive, a handshake message, a probe) goes out
// on the kernel's socket without allocating.
func TestWriteToNoAlloc(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("no loopback UDP: %v", err)
	}
	defer recv.Close()
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := newKernelConn(send)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	msg := make([]byte, 32)
	writeTo(kc, msg, to)
	if n := testing.AllocsPerRun(100, func() { writeTo(kc, msg, to) }); n != 0 && !raceOn {
		t.Errorf("%v allocations per datagram sent", n)
	}
}
