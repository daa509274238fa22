//go:build darwin || freebsd

package tun_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/tun"
)

// These tests need a macOS or FreeBSD host; the ones that make devices need
// root and skip without it. They put addresses from 198.18.0.0/15
// (benchmarking) and a random ULA /64 on the devices they make, which go
// away with the devices.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create TUN/TAP devices")
	}
}

// run runs a command (ifconfig, route) and fails the test if it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// testAddrs are the addresses of a test device (local) and of the peer
// beyond it, which the test plays by reading and writing the device.
type testAddrs struct {
	local4, peer4, local6, peer6 netip.Addr
}

func newTestAddrs() testAddrs {
	n := byte(rand.IntN(250) + 1)
	var ula [16]byte
	ula[0] = 0xfd
	for i := 1; i < 8; i++ {
		ula[i] = byte(rand.Uint32())
	}
	l6, p6 := ula, ula
	l6[15], p6[15] = 1, 2
	return testAddrs{
		local4: netip.AddrFrom4([4]byte{198, 18, n, 1}),
		peer4:  netip.AddrFrom4([4]byte{198, 18, n, 2}),
		local6: netip.AddrFrom16(l6),
		peer6:  netip.AddrFrom16(p6),
	}
}

func TestNotSupportedOptions(t *testing.T) {
	t.Parallel()
	for _, cfg := range []tun.Config{
		{Queues: 2}, {MultiQueue: true}, {Persist: true}, {PacketInfo: true},
		{NetNS: "blue"}, {Owner: tun.ID(0)}, {CarrierOff: true}, {SendBuffer: 4096},
	} {
		dev, err := tun.Open(cfg)
		if err == nil {
			dev.Close()
		}
		var ne *tun.NotSupportedError
		if !errors.As(err, &ne) || ne.OS != runtime.GOOS || !errors.Is(err, tun.ErrNotSupported) {
			t.Errorf("Open(%+v) = %v, want a NotSupportedError for %s", cfg, err, runtime.GOOS)
		}
	}
}

// checksum is the Internet checksum of b, starting from sum.
func checksum(sum uint32, b []byte) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// echoRequest returns an ICMP (v4) or ICMPv6 echo request from src to dst.
func echoRequest(src, dst netip.Addr, id uint16) []byte {
	icmp := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 't', 'a', 'p', 'w', 'i', 'r', 'e', '!'}
	if src.Is4() {
		ip := make([]byte, 20, 20+len(icmp))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
		ip[8], ip[9] = 64, 1
		copy(ip[12:], src.AsSlice())
		copy(ip[16:], dst.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))
		binary.BigEndian.PutUint16(icmp[2:], checksum(0, icmp))
		return append(ip, icmp...)
	}
	icmp[0] = 128
	ip := make([]byte, 40, 40+len(icmp))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	ip[6], ip[7] = 58, 64
	copy(ip[8:], src.AsSlice())
	copy(ip[24:], dst.AsSlice())
	var sum uint32
	for i := 8; i < 40; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	sum += uint32(len(icmp)) + 58
	binary.BigEndian.PutUint16(icmp[2:], checksum(sum, icmp))
	return append(ip, icmp...)
}

// ipPacket is what the tests look at in a packet read from a TUN device.
type ipPacket struct {
	src, dst netip.Addr
	proto    byte
	payload  []byte
}

func parseIP(p []byte) (ipPacket, bool) {
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		ihl := int(p[0]&15) * 4
		if len(p) < ihl {
			return ipPacket{}, false
		}
		return ipPacket{netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), p[9], p[ihl:]}, true
	case len(p) >= 40 && p[0]>>4 == 6:
		return ipPacket{netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), p[6], p[40:]}, true
	}
	return ipPacket{}, false
}

// readUntil reads packets from dev until match accepts one, calling poke
// (which sends what should make the packet come) at once and whenever
// nothing matching came for half a second, for at most 15 seconds. It reads
// with ReadBatch and Headroom, or with Read when single is set.
func readUntil(t *testing.T, dev *tun.Device, single bool, poke func(), match func([]byte) bool) {
	t.Helper()
	bufs := make([][]byte, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, len(bufs))
	end := time.Now().Add(15 * time.Second)
	for time.Now().Before(end) {
		poke()
		if err := dev.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		for {
			var n int
			var err error
			if single {
				n, err = dev.Read(bufs[0][tun.Headroom:])
				sizes[0] = n
				n = min(n, 1)
			} else {
				n, err = dev.ReadBatch(bufs, sizes, tun.Headroom)
			}
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			for i := range n {
				if match(bufs[i][tun.Headroom : tun.Headroom+sizes[i]]) {
					dev.SetReadDeadline(time.Time{})
					return
				}
			}
		}
	}
	t.Fatal("the expected packet never came")
}

// TestTUN opens a TUN device, checks its attributes, and moves IPv4 and IPv6
// packets through it both ways: UDP datagrams the host sends to the peer are
// read from the device, and echo requests written to it as from the peer are
// answered by the host.
func TestTUN(t *testing.T) {
	requireRoot(t)
	dev, err := tun.Open(tun.Config{MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	name := dev.Name()
	if !strings.HasPrefix(name, tunPrefix) || dev.Mode() != tun.ModeTUN || dev.PacketInfo() || dev.MultiQueue() {
		t.Fatalf("device %q, mode %v, packet info %v, multi-queue %v", name, dev.Mode(), dev.PacketInfo(), dev.MultiQueue())
	}
	if mtu, err := dev.MTU(); err != nil || mtu != 1400 {
		t.Errorf("MTU = %d, %v; want 1400", mtu, err)
	}
	if err := dev.SetMTU(1380); err != nil {
		t.Fatal(err)
	}
	if mtu, err := dev.MTU(); err != nil || mtu != 1380 {
		t.Errorf("MTU after SetMTU(1380) = %d, %v", mtu, err)
	}
	if idx, err := dev.Index(); err != nil || idx <= 0 {
		t.Errorf("Index = %d, %v", idx, err)
	}
	if _, err := dev.HardwareAddr(); err == nil {
		t.Error("a TUN device has a hardware address")
	}
	a := newTestAddrs()
	configureTUN(t, name, a)

	for _, fam := range []struct {
		local, peer netip.Addr
		single      bool
	}{{a.local4, a.peer4, false}, {a.local6, a.peer6, true}} {
		t.Run(fmt.Sprintf("read IPv%d", 4+2*btoi(fam.peer.Is6())), func(t *testing.T) {
			c, err := net.ListenUDP("udp", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			peer := net.UDPAddrFromAddrPort(netip.AddrPortFrom(fam.peer, 9999))
			readUntil(t, dev, fam.single, func() { c.WriteToUDP([]byte("hello"), peer) }, func(p []byte) bool {
				ip, ok := parseIP(p)
				return ok && ip.proto == 17 && ip.dst == fam.peer && len(ip.payload) >= 8 &&
					binary.BigEndian.Uint16(ip.payload[2:]) == 9999 && string(ip.payload[8:]) == "hello"
			})
		})
		t.Run(fmt.Sprintf("write IPv%d", 4+2*btoi(fam.peer.Is6())), func(t *testing.T) {
			id := uint16(rand.Uint32())
			req := echoRequest(fam.peer, fam.local, id)
			poke := func() {
				if fam.single {
					if n, err := dev.Write(req); err != nil || n != len(req) {
						t.Fatalf("Write = %d, %v", n, err)
					}
					return
				}
				buf := append(make([]byte, tun.Headroom), req...)
				if n, err := dev.WriteBatch([][]byte{buf}, tun.Headroom); err != nil || n != 1 {
					t.Fatalf("WriteBatch = %d, %v", n, err)
				}
			}
			readUntil(t, dev, !fam.single, poke, func(p []byte) bool {
				ip, ok := parseIP(p)
				reply := byte(0)
				if fam.peer.Is6() {
					reply = 129
				}
				return ok && ip.src == fam.local && ip.dst == fam.peer && len(ip.payload) >= 8 &&
					ip.payload[0] == reply && binary.BigEndian.Uint16(ip.payload[4:]) == id
			})
		})
	}
	// A packet that is not IP is refused alone.
	out := [][]byte{append(make([]byte, tun.Headroom), 0x10, 0, 0, 0), append(make([]byte, tun.Headroom), echoRequest(a.peer4, a.local4, 1)...)}
	n, err := dev.WriteBatch(out, tun.Headroom)
	var pe *tun.PacketError
	if n != 1 || !errors.As(err, &pe) || pe.Index != 0 || pe.Dropped != 1 {
		t.Errorf("WriteBatch with a non-IP packet = %d, %v; want 1 and a PacketError for index 0", n, err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestCloseUnblocksRead closes a device under a blocked ReadBatch.
func TestCloseUnblocksRead(t *testing.T) {
	requireRoot(t)
	dev, err := tun.Open(tun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	name := dev.Name()
	closeUnblocks(t, dev)
	if _, err := dev.Write(echoRequest(netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1"), 1)); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("Write of a whole packet after Close = %v, want ErrClosed", err)
	}
	// The interface goes with the device.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := net.InterfaceByName(name); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after Close", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
