//go:build darwin || freebsd || windows

package tunnel_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/packet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/tunnel"
)

// TestSystemTunnel runs the engine on this system's own TUN device and UDP
// sockets (macOS utun, FreeBSD tun, Windows Wintun), as root or
// Administrator: a datagram the host sends to the far end's tunnel address
// goes into the device, is encrypted by the engine, crosses loopback UDP to
// a second engine (on an in-memory device the test reads), and a datagram
// that engine sends back is delivered by the host's stack to a socket of
// the test. The handshake runs for real, on the system's sockets.
func TestSystemTunnel(t *testing.T) {
	name := map[string]string{"darwin": "utun", "freebsd": "", "windows": "tapwiretest%d"}[runtime.GOOS]
	dev, err := tun.Open(tun.Config{Name: name, MTU: 1420})
	if err != nil {
		t.Skipf("no TUN device here (needs root or Administrator, and on Windows wintun.dll): %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	local, far := netip.MustParseAddr("10.213.79.1"), netip.MustParseAddr("10.213.79.2")
	nc, err := netconf.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.AddAddr(dev.Name(), netip.PrefixFrom(local, 24)); err != nil {
		t.Fatal(err)
	}
	if err := nc.SetUp(dev.Name()); err != nil && !errors.Is(err, netconf.ErrNotSupported) {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := tunnel.New(dev, tunnel.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	mem := memnet.NewDevice("mem0", tun.ModeTUN, 1420)
	b, err := tunnel.New(mem, tunnel.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ka, kb := sysKey(t), sysKey(t)
	loop := netip.MustParseAddr("127.0.0.1")
	epA := netip.AddrPortFrom(loop, a.Status().ListenPort)
	epB := netip.AddrPortFrom(loop, b.Status().ListenPort)
	sysApply(t, a, ka, devconf.PeerConfig{PublicKey: kb.PublicKey(), Endpoint: &epB, AllowedIPs: []netip.Prefix{netip.PrefixFrom(far, 32)}})
	sysApply(t, b, kb, devconf.PeerConfig{PublicKey: ka.PublicKey(), Endpoint: &epA, AllowedIPs: []netip.Prefix{netip.PrefixFrom(local, 32)}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Out: the host's datagram to the far address, until it arrives.
	out, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(far, 9)))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	got := make(chan []byte, 1)
	go func() {
		for {
			pkt, err := mem.Recv(ctx)
			if err != nil {
				return
			}
			if len(pkt) >= 28 && pkt[9] == 17 && bytes.HasSuffix(pkt, []byte("out through the tunnel")) {
				got <- pkt
				return
			}
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		out.Write([]byte("out through the tunnel"))
		select {
		case pkt := <-got:
			if src := netip.AddrFrom4([4]byte(pkt[12:16])); src != local {
				t.Errorf("the datagram arrived from %v, want %v", src, local)
			}
			break wait
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the host's datagram never came out of the far engine; status: %+v", a.Status())
		}
	}

	// Back: the far engine's datagram, to a socket of the host's.
	in, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	port := uint16(in.LocalAddr().(*net.UDPAddr).Port)
	pkt := udp4(far, local, 9, port, []byte("back through the tunnel"))
	if err := mem.Send(ctx, pkt); err != nil {
		t.Fatal(err)
	}
	in.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := in.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("the far engine's datagram never reached the host's socket: %v", err)
	}
	if string(buf[:n]) != "back through the tunnel" || from.Addr().Unmap() != far {
		t.Errorf("received %q from %v", buf[:n], from)
	}
}

func sysKey(t *testing.T) protocol.Key {
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sysApply(t *testing.T, d *tunnel.Device, key protocol.Key, peer devconf.PeerConfig) {
	t.Helper()
	if err := d.Apply(devconf.DeviceConfig{PrivateKey: &key, Peers: []devconf.PeerConfig{peer}}); err != nil {
		t.Fatal(err)
	}
}

// udp4 builds an IPv4 UDP packet with its checksums.
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], packet.Checksum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	sum := packet.Checksum(p[20:], packet.PseudoHeaderSum(17, s[:], d[:], 8+len(payload)))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(p[26:], sum)
	return p
}
