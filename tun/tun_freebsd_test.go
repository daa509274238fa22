package tun_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/tun"
)

const tunPrefix = "tun"

// configureTUN gives a tun device (in broadcast mode) subnet addresses.
func configureTUN(t *testing.T, name string, a testAddrs) {
	t.Helper()
	run(t, "ifconfig", name, "inet", a.local4.String()+"/24", "up")
	run(t, "ifconfig", name, "inet6", "-ifdisabled")
	run(t, "ifconfig", name, "inet6", a.local6.String()+"/64", "alias")
}

func TestFreeBSDFeatures(t *testing.T) {
	t.Parallel()
	f, err := tun.ProbeFeatures()
	if err != nil {
		t.Skipf("no tun/tap driver: %v", err)
	}
	if !f.NoPI || f.MultiQueue || f.VnetHdr || f.NoCarrier {
		t.Errorf("ProbeFeatures = %+v", f)
	}
}

// TestFreeBSDNames opens devices with a fixed name and a pattern, and checks
// that a taken name is refused with Exclusive.
func TestFreeBSDNames(t *testing.T) {
	requireRoot(t)
	dev, err := tun.Open(tun.Config{Name: "twtest%d"})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if !strings.HasPrefix(dev.Name(), "twtest") {
		t.Errorf("Open(twtest%%d) made %s", dev.Name())
	}
	if _, err := net.InterfaceByName(dev.Name()); err != nil {
		t.Errorf("no interface %s: %v", dev.Name(), err)
	}
	if _, err := tun.Open(tun.Config{Name: dev.Name(), Exclusive: true}); !errors.Is(err, unix.EEXIST) {
		t.Errorf("Open(%s, Exclusive) = %v, want EEXIST", dev.Name(), err)
	}
}

// TestTAP opens a TAP device, sets its MAC address, reads the ARP request
// the host sends for the peer, answers it, and reads the UDP datagram the
// host then sends to the peer's MAC address.
func TestTAP(t *testing.T) {
	requireRoot(t)
	dev, err := tun.Open(tun.Config{Mode: tun.ModeTAP, MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if !strings.HasPrefix(dev.Name(), "tap") || dev.Mode() != tun.ModeTAP {
		t.Fatalf("device %s, mode %v", dev.Name(), dev.Mode())
	}
	if mtu, err := dev.MTU(); err != nil || mtu != 1400 {
		t.Errorf("MTU = %d, %v", mtu, err)
	}
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	if err := dev.SetHardwareAddr(mac); err != nil {
		t.Fatal(err)
	}
	if got, err := dev.HardwareAddr(); err != nil || !bytes.Equal(got, mac) {
		t.Errorf("HardwareAddr = %v, %v; want %v", got, err, mac)
	}
	a := newTestAddrs()
	run(t, "ifconfig", dev.Name(), "inet", a.local4.String()+"/24", "up")

	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.peer4, 9999))
	send := func() { c.WriteToUDP([]byte("hello"), peer) }
	peerMAC := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}
	readUntil(t, dev, false, send, func(f []byte) bool {
		// An ARP request (EtherType 0x0806, op 1) for the peer.
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 &&
			binary.BigEndian.Uint16(f[20:]) == 1 && netip.AddrFrom4([4]byte(f[38:42])) == a.peer4
	})
	reply := make([]byte, 0, 42)
	reply = append(reply, mac...)
	reply = append(reply, peerMAC...)
	reply = append(reply, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2)
	reply = append(reply, peerMAC...)
	reply = append(reply, a.peer4.AsSlice()...)
	reply = append(reply, mac...)
	reply = append(reply, a.local4.AsSlice()...)
	if n, err := dev.Write(reply); err != nil || n != len(reply) {
		t.Fatalf("Write(ARP reply) = %d, %v", n, err)
	}
	readUntil(t, dev, true, send, func(f []byte) bool {
		if len(f) < 14 || !bytes.Equal(f[:6], peerMAC) || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
			return false
		}
		ip, ok := parseIP(f[14:])
		return ok && ip.proto == 17 && ip.dst == a.peer4 && len(ip.payload) > 8 && string(ip.payload[8:]) == "hello"
	})
}

// TestAttachUpTUN attaches to a tun interface that is up, made with
// ifconfig: the kernel refuses TUNSIFMODE on it (EBUSY), so Attach must
// leave the mode alone, and still strip and add the address-family header.
func TestAttachUpTUN(t *testing.T) {
	requireRoot(t)
	out, err := exec.Command("ifconfig", "tun", "create").Output()
	if err != nil {
		t.Skipf("ifconfig tun create: %v", err)
	}
	name := strings.TrimSpace(string(out))
	defer exec.Command("ifconfig", name, "destroy").Run()
	run(t, "ifconfig", name, "up")
	dev, err := tun.Attach(tun.Config{Name: name})
	if err != nil {
		t.Fatalf("Attach(%s) of an interface that is up: %v", name, err)
	}
	defer dev.Close()
	if dev.Name() != name || dev.Mode() != tun.ModeTUN {
		t.Errorf("attached %s, mode %v", dev.Name(), dev.Mode())
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if ifi.Flags&net.FlagPointToPoint == 0 {
		t.Errorf("flags %v: Attach changed the point-to-point mode", ifi.Flags)
	}
}
