package tun_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/tapwire/tapwire/tun"
)

// needAdmin skips the test unless the process runs elevated.
func needAdmin(t *testing.T) {
	t.Helper()
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("needs Administrator")
	}
}

// openWintun opens a Wintun device, skipping the test when wintun.dll is
// missing.
func openWintun(t *testing.T, cfg tun.Config) *tun.Device {
	t.Helper()
	needAdmin(t)
	dev, err := tun.Open(cfg)
	if errors.Is(err, windows.ERROR_MOD_NOT_FOUND) {
		t.Skipf("no wintun.dll: %v", err)
	}
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func TestWindowsNotSupported(t *testing.T) {
	t.Parallel()
	for _, cfg := range []tun.Config{
		{Queues: 2},
		{Persist: true},
		{PacketInfo: true},
		{NetNS: "x"},
		{Mode: tun.ModeTAP, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}},
	} {
		dev, err := tun.Open(cfg)
		if err == nil {
			dev.Close()
		}
		var nse *tun.NotSupportedError
		if !errors.As(err, &nse) || nse.OS != "windows" || !errors.Is(err, tun.ErrNotSupported) {
			t.Errorf("Open(%+v) = %v, want a NotSupportedError for windows", cfg, err)
		}
	}
}

func TestWindowsProbeFeatures(t *testing.T) {
	t.Parallel()
	f, err := tun.ProbeFeatures()
	if err != nil {
		t.Fatal(err)
	}
	if !f.NoPI || f.MultiQueue || f.VnetHdr || f.NoCarrier {
		t.Errorf("ProbeFeatures = %+v", f)
	}
	t.Logf("features: %+v", f)
}

func TestWindowsWintunBasics(t *testing.T) {
	dev := openWintun(t, tun.Config{Name: "tapwiretest%d", MTU: 1400})
	if !strings.HasPrefix(dev.Name(), "tapwiretest") || dev.Mode() != tun.ModeTUN {
		t.Errorf("Name %q Mode %v", dev.Name(), dev.Mode())
	}
	if mtu, err := dev.MTU(); err != nil || mtu != 1400 {
		t.Errorf("MTU() = %d, %v; want 1400", mtu, err)
	}
	if err := dev.SetMTU(1380); err != nil {
		t.Errorf("SetMTU(1380): %v", err)
	} else if mtu, _ := dev.MTU(); mtu != 1380 {
		t.Errorf("MTU() after SetMTU(1380) = %d", mtu)
	}
	idx, err := dev.Index()
	if err != nil || idx <= 0 {
		t.Fatalf("Index() = %d, %v", idx, err)
	}
	if ifi, err := net.InterfaceByIndex(idx); err != nil || ifi.Name != dev.Name() {
		t.Errorf("interface %d = %v, %v; want %s", idx, ifi, err, dev.Name())
	}
	if _, err := dev.HardwareAddr(); err == nil {
		t.Error("HardwareAddr on TUN: no error")
	}
	for name, err := range map[string]error{
		"SetPersist": dev.SetPersist(true),
		"SetCarrier": dev.SetCarrier(false),
	} {
		if !errors.Is(err, tun.ErrNotSupported) {
			t.Errorf("%s = %v, want ErrNotSupported", name, err)
		}
	}
	if dev.PacketInfo() || dev.MultiQueue() || dev.BatchSize() < 1 {
		t.Error("PacketInfo, MultiQueue or BatchSize wrong")
	}
	// A second Open of the same name without Exclusive uses the adapter
	// only if no session runs on it: here one does.
	if d2, err := tun.Open(tun.Config{Name: dev.Name(), Exclusive: true}); err == nil {
		d2.Close()
		t.Error("Exclusive Open of an existing name succeeded")
	}
}

// TestWindowsWintunPacketPath sends UDP to a peer in the device's subnet and
// reads it from the device, then writes a UDP packet to a local socket.
func TestWindowsWintunPacketPath(t *testing.T) {
	dev := openWintun(t, tun.Config{Name: "tapwiretest%d"})
	const local, peer = "10.233.71.1", "10.233.71.2"
	out, err := exec.Command("netsh", "interface", "ipv4", "set", "address", "name="+dev.Name(),
		"static", local, "255.255.255.0").CombinedOutput()
	if err != nil {
		t.Fatalf("netsh: %v: %s", err, out)
	}
	// Wait for the address to be usable (Windows checks for duplicates).
	var conn *net.UDPConn
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		conn, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(local)}, &net.UDPAddr{IP: net.ParseIP(peer), Port: 40000})
		if err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("dial from %s: %v", local, err)
		}
	}
	defer conn.Close()

	bufs := make([][]byte, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, len(bufs))
	payload := []byte("hello from tapwire's windows test")
	found := false
	for try := 0; try < 20 && !found; try++ {
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
		dev.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for !found {
			n, err := dev.ReadBatch(bufs, sizes, tun.Headroom)
			if err != nil {
				if !errors.Is(err, tun.ErrClosed) && isTimeout(err) {
					break
				}
				t.Fatalf("ReadBatch: %v", err)
			}
			for i := range n {
				p := bufs[i][tun.Headroom : tun.Headroom+sizes[i]]
				if len(p) >= 28 && p[0]>>4 == 4 && p[9] == 17 && net.IP(p[16:20]).Equal(net.ParseIP(peer)) &&
					bytes.Contains(p[28:], payload) {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatal("the UDP datagram sent to the peer never came out of the device")
	}

	// The other way: a datagram from the peer to a local socket.
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(local)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pkt := udp4(net.ParseIP(peer), net.ParseIP(local), 40000, uint16(ln.LocalAddr().(*net.UDPAddr).Port), payload)
	buf := append(make([]byte, tun.Headroom), pkt...)
	if n, err := dev.WriteBatch([][]byte{buf}, tun.Headroom); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	ln.SetReadDeadline(time.Now().Add(3 * time.Second))
	got := make([]byte, 1500)
	n, _, err := ln.ReadFromUDP(got)
	if err != nil {
		t.Skipf("the written datagram did not reach the socket (Windows Firewall may drop it on a public network): %v", err)
	}
	if !bytes.Equal(got[:n], payload) {
		t.Errorf("socket read %q, want %q", got[:n], payload)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// udp4 builds an IPv4 UDP packet (UDP checksum 0: none, which IPv4 allows).
func udp4(src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], src.To4())
	copy(p[16:20], dst.To4())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

func TestWindowsWintunCloseUnblocks(t *testing.T) {
	closeUnblocks(t, openWintun(t, tun.Config{Name: "tapwiretest%d"}))
}

func TestWindowsWintunReadDeadline(t *testing.T) {
	dev := openWintun(t, tun.Config{Name: "tapwiretest%d"})
	buf := make([]byte, 65535)
	dev.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	for {
		_, err := dev.Read(buf)
		if err == nil {
			continue // Windows sends its own packets on a new interface
		}
		if !isTimeout(err) {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		break
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the deadline took %v", d)
	}
}

func TestWindowsTAP(t *testing.T) {
	needAdmin(t)
	f, err := tun.ProbeFeatures()
	if err != nil || !f.TAP {
		t.Skipf("no TAP-Windows6 adapter (%v)", err)
	}
	dev, err := tun.Open(tun.Config{Mode: tun.ModeTAP})
	if err != nil {
		t.Skipf("no free TAP-Windows6 adapter: %v", err)
	}
	defer dev.Close()
	if dev.Mode() != tun.ModeTAP || dev.Name() == "" {
		t.Errorf("Mode %v Name %q", dev.Mode(), dev.Name())
	}
	mac, err := dev.HardwareAddr()
	if err != nil || len(mac) != 6 {
		t.Errorf("HardwareAddr() = %v, %v", mac, err)
	}
	if idx, err := dev.Index(); err != nil || idx <= 0 {
		t.Errorf("Index() = %d, %v", idx, err)
	}
	if mtu, err := dev.MTU(); err != nil || mtu <= 0 {
		t.Errorf("MTU() = %d, %v", mtu, err)
	}
	if err := dev.SetCarrier(false); err != nil {
		t.Errorf("SetCarrier(false): %v", err)
	}
	if err := dev.SetCarrier(true); err != nil {
		t.Errorf("SetCarrier(true): %v", err)
	}
	if err := dev.SetHardwareAddr(mac); !errors.Is(err, tun.ErrNotSupported) {
		t.Errorf("SetHardwareAddr = %v, want ErrNotSupported", err)
	}
	// A broadcast frame the adapter accepts.
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:], mac)
	frame[12], frame[13] = 0x88, 0xb5 // local experimental EtherType
	if n, err := dev.Write(frame); n != len(frame) || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
	closeUnblocks(t, dev)
}
