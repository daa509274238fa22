//go:build linux

package tunnel_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

// udpFrom opens a UDP socket in ns for sending crafted datagrams.
func udpFrom(t *testing.T, ns *nstest.NS) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() (err error) { c, err = net.ListenUDP("udp", nil); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectSilence fails if anything arrives on c within d.
func expectSilence(t *testing.T, c *net.UDPConn, d time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 2048)
	if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("%s: got a %d-byte answer from %v; garbage must never be answered", what, n, from)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: read: %v", what, err)
	}
}

type counters struct {
	Malformed, BadMAC, UnknownPeer, BadHandshake, UnknownIndex, BadPacket, Replayed uint64
}

// captureData captures on a's veth, and returns, one data message of type
// typ (protocol.TypeTransport or TypeFrame, not a keepalive) that b sends
// while it moves a little TCP to a.
func captureData(t *testing.T, a, b *host, typ uint32) []byte {
	t.Helper()
	fd := packetSocket(t, a.ns, "twva")
	go func() {
		time.Sleep(100 * time.Millisecond)
		transfer(t, b, a, false, 1024)
	}()
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if payload, ok := udpPayload(buf[:n], a.port); ok && len(payload) > protocol.TransportOverhead {
			if got, _ := protocol.MessageType(payload); got == typ {
				time.Sleep(200 * time.Millisecond) // the transfer ends
				return append([]byte(nil), payload...)
			}
		}
	}
	t.Fatalf("captured no data message of type %#x", typ)
	return nil
}

// packetSocket opens a cooked AF_PACKET socket (IP packets) on link in ns.
func packetSocket(t *testing.T, ns *nstest.NS, link string) int {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd
}

// udpPayload returns the payload of an IPv4 UDP packet to port.
func udpPayload(p []byte, port uint16) ([]byte, bool) {
	if len(p) < 28 || p[0]>>4 != 4 || p[9] != 17 {
		return nil, false
	}
	ihl := int(p[0]&15) * 4
	if len(p) < ihl+8 || binary.BigEndian.Uint16(p[ihl+2:]) != port {
		return nil, false
	}
	return p[ihl+8:], true
}

// TestRoamingBehindNAT puts b behind a masquerading middle namespace that a
// cannot reach, and changes b's NAT mapping mid-transfer (b moves to another
// port, so the NAT picks a new one): a follows b's authenticated packets to
// the new endpoint and the transfer completes intact.
func TestRoamingBehindNAT(t *testing.T) {
	if _, err := execLookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables; the README's test command installs it)")
	}
	na, nm, nb := nstest.New(t), nstest.New(t), nstest.New(t)
	na.Link(nm, "twva", "twvm", []string{"192.0.2.1/24"}, []string{"192.0.2.254/24"})
	nm.Link(nb, "twvn", "twvb", []string{"10.99.0.1/24"}, []string{"10.99.0.2/24"})
	nm.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	nm.Run("nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname twvm masquerade random")
	nb.Run("ip", "route", "add", "default", "via", "10.99.0.1")

	a := startTapwire(t, na, "twa0", netip.MustParseAddr("192.0.2.1"), 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", netip.MustParseAddr("10.99.0.2"), 51002, tunnel.Timers{}, inB4)
	peer(t, a, b, protocol.Key{}, 0, true) // a cannot know b's address
	peer(t, b, a, protocol.Key{}, 1, false)
	transfer(t, b, a, false, 64<<10)
	ep1 := a.dev.Status().Peers[0].Endpoint
	if ep1.Addr() != netip.MustParseAddr("192.0.2.254") {
		t.Fatalf("a sees b at %v, want the NAT's address", ep1)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		port := uint16(51003)
		if err := b.dev.Apply(devconf.DeviceConfig{ListenPort: &port}); err != nil {
			t.Error(err)
		}
	}()
	transfer(t, a, b, false, 32<<20) // a sends to b during the move
	<-done
	transfer(t, a, b, false, 1<<20)
	ep2 := a.dev.Status().Peers[0].Endpoint
	if ep2 == ep1 {
		t.Errorf("a still sends to %v after b moved", ep1)
	}
	t.Logf("b's endpoint as a sees it: %v, then %v", ep1, ep2)
}

func execLookPath(name string) (string, error) {
	for _, dir := range strings.Split(os.Getenv("PATH")+":/usr/sbin:/sbin", ":") {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(name + " not found")
}

// TestPeersAddedAndRemovedUnderTraffic adds a second peer and removes it
// with wg set while data flows to the first.
func TestPeersAddedAndRemovedUnderTraffic(t *testing.T) {
	requireWG(t)
	na, nb := wire(t)
	nc := nstest.New(t)
	na.Link(nc, "twvc", "twvd", []string{"203.0.113.1/24"}, []string{"203.0.113.2/24"})
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	c := startTapwire(t, nc, "twc0", netip.MustParseAddr("203.0.113.2"), 51003, tunnel.Timers{}, netip.MustParsePrefix("198.51.100.3/24"))
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 0, false)
	aForC := *a
	aForC.under = netip.MustParseAddr("203.0.113.1")
	peer(t, c, &aForC, protocol.Key{}, 0, false)

	flowing := make(chan struct{})
	go func() {
		defer close(flowing)
		transfer(t, a, b, false, 24<<20)
	}()
	time.Sleep(100 * time.Millisecond)
	na.Run("wg", "set", "twa0", "peer", c.pub().String(), "allowed-ips", "198.51.100.3/32", "endpoint", "203.0.113.2:51003")
	transfer(t, a, c, false, 256<<10)
	na.Run("wg", "set", "twa0", "peer", c.pub().String(), "remove")
	<-flowing
	if peers := a.dev.Status().Peers; len(peers) != 1 || !peers[0].PublicKey.Equal(b.pub()) {
		t.Errorf("after removing c: %d peers", len(peers))
	}
	if _, err := na.Output("ping", "-c", "1", "-W", "1", "198.51.100.3"); err == nil {
		t.Error("c still reachable after its removal")
	}
	_ = strconv.Itoa
}
