package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// udp4 builds an IPv4 UDP packet of n bytes in all from src to dst.
func udp4(n int, df bool, src, dst [4]byte) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	if df {
		p[6] = 0x40
	}
	p[8], p[9] = 64, ProtoUDP
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], Checksum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], 5000)
	binary.BigEndian.PutUint16(p[22:], 6000)
	binary.BigEndian.PutUint16(p[24:], uint16(n-20))
	for i := 28; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

func udp6(n int, src, dst [16]byte) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(n-40))
	p[6], p[7] = ProtoUDP, 64
	copy(p[8:], src[:])
	copy(p[24:], dst[:])
	for i := 40; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

var (
	a4 = [4]byte{198, 51, 100, 1}
	b4 = [4]byte{198, 51, 100, 2}
	a6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	b6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

func TestTooBigIPv4(t *testing.T) {
	pkt := udp4(1500, true, a4, b4)
	if !DontFragment(pkt) || DontFragment(udp4(100, false, a4, b4)) || DontFragment(udp6(100, a6, b6)) {
		t.Fatal("DontFragment")
	}
	dst := make([]byte, TooBigMaxLen)
	n := TooBig(dst, pkt, 1372)
	if n != 576 {
		t.Fatalf("message of %d bytes, want 576", n)
	}
	msg := dst[:n]
	if Checksum(msg[:20], 0) != 0 || Checksum(msg[20:], 0) != 0 {
		t.Fatal("bad checksum")
	}
	p := gopacket.NewPacket(msg, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip == nil || icmp == nil {
		t.Fatalf("does not decode: %v", p)
	}
	if !ip.SrcIP.Equal(b4[:]) || !ip.DstIP.Equal(a4[:]) || ip.Length != 576 {
		t.Errorf("IP %v -> %v length %d", ip.SrcIP, ip.DstIP, ip.Length)
	}
	if icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || binary.BigEndian.Uint16(msg[26:28]) != 1372 {
		t.Errorf("ICMP %v, MTU %d", icmp.TypeCode, binary.BigEndian.Uint16(msg[26:28]))
	}
	if !bytes.Equal(msg[28:], pkt[:548]) {
		t.Error("the quote is not the packet's start")
	}
	// A short packet is quoted whole.
	if n := TooBig(dst, udp4(60, true, a4, b4), 1000); n != 88 {
		t.Errorf("short packet: %d", n)
	}
}

func TestTooBigIPv6(t *testing.T) {
	pkt := udp6(1500, a6, b6)
	dst := make([]byte, TooBigMaxLen)
	for _, c := range []struct{ mtu, want int }{{1400, 1400}, {1200, IPv6MinMTU}} {
		n := TooBig(dst, pkt, c.mtu)
		if n != 1280 {
			t.Fatalf("message of %d bytes, want 1280", n)
		}
		p := gopacket.NewPacket(dst[:n], layers.LayerTypeIPv6, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if ip == nil || icmp == nil {
			t.Fatalf("does not decode: %v", p)
		}
		if !ip.SrcIP.Equal(b6[:]) || !ip.DstIP.Equal(a6[:]) || icmp.TypeCode != layers.CreateICMPv6TypeCode(2, 0) {
			t.Errorf("%v -> %v %v", ip.SrcIP, ip.DstIP, icmp.TypeCode)
		}
		if mtu := binary.BigEndian.Uint32(dst[44:48]); int(mtu) != c.want {
			t.Errorf("MTU %d, want %d", mtu, c.want)
		}
		sum := PseudoHeaderSum(ProtoICMPv6, dst[8:24], dst[24:40], n-40)
		if Checksum(dst[40:n], sum) != 0 {
			t.Error("bad ICMPv6 checksum")
		}
		if !bytes.Equal(dst[48:n], pkt[:1232]) {
			t.Error("the quote is not the packet's start")
		}
	}
}

// Packets that must never be answered with an ICMP error.
func TestTooBigNotAnswered(t *testing.T) {
	dst := make([]byte, TooBigMaxLen)
	icmpErr4 := udp4(1500, true, a4, b4)
	icmpErr4[9], icmpErr4[20] = ProtoICMP, 3
	echo4 := udp4(1500, true, a4, b4)
	echo4[9], echo4[20] = ProtoICMP, ICMPEchoRequest
	frag4 := udp4(1500, false, a4, b4)
	binary.BigEndian.PutUint16(frag4[6:], 100)
	icmpErr6 := udp6(1500, a6, b6)
	icmpErr6[6], icmpErr6[40] = ProtoICMPv6, 1
	echo6 := udp6(1500, a6, b6)
	echo6[6], echo6[40] = ProtoICMPv6, ICMPv6EchoRequest
	for name, pkt := range map[string][]byte{
		"ICMPv4 error":       icmpErr4,
		"later fragment":     frag4,
		"from 0.0.0.0":       udp4(1500, true, [4]byte{}, b4),
		"from multicast":     udp4(1500, true, [4]byte{224, 0, 0, 1}, b4),
		"from broadcast":     udp4(1500, true, [4]byte{255, 255, 255, 255}, b4),
		"from loopback":      udp4(1500, true, [4]byte{127, 0, 0, 1}, b4),
		"ICMPv6 error":       icmpErr6,
		"from ::":            udp6(1500, [16]byte{}, b6),
		"from IPv6 mcast":    udp6(1500, [16]byte{0xff, 0x02, 15: 1}, b6),
		"short":              {0x45, 0},
		"not IP":             {0x12, 0x34},
		"bad IHL":            append([]byte{0x4f}, make([]byte, 30)...),
		"total below header": func() []byte { p := udp4(100, true, a4, b4); binary.BigEndian.PutUint16(p[2:], 10); return p }(),
	} {
		if n := TooBig(dst, pkt, 1000); n != 0 {
			t.Errorf("%s answered with %d bytes", name, n)
		}
	}
	if TooBig(dst, echo4, 1000) == 0 || TooBig(dst, echo6, 1300) == 0 {
		t.Error("an echo request (a ping -M do) was not answered")
	}
	if TooBig(make([]byte, 100), udp4(1500, true, a4, b4), 1000) != 0 {
		t.Error("wrote past a short dst")
	}
}

func TestFragmentIPv4(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		size := 29 + r.IntN(9000)
		mtu := 68 + r.IntN(1500)
		pkt := udp4(size, false, a4, b4)
		dst := make([]byte, mtu)
		var payload []byte
		off, frags := 0, 0
		for {
			n, next := FragmentIPv4(dst, pkt, mtu, off)
			if n == 0 {
				t.Fatalf("size %d mtu %d off %d: no fragment", size, mtu, off)
			}
			f := dst[:n]
			if n > mtu || Checksum(f[:20], 0) != 0 || int(binary.BigEndian.Uint16(f[2:])) != n {
				t.Fatalf("fragment of %d bytes (mtu %d) with a bad header", n, mtu)
			}
			fo := binary.BigEndian.Uint16(f[6:])
			if int(fo&0x1fff)*8 != len(payload) || (fo&0x2000 != 0) != (next != 0) {
				t.Fatalf("offset %d, MF %v; want %d, %v", fo&0x1fff*8, fo&0x2000 != 0, len(payload), next != 0)
			}
			payload = append(payload, f[20:]...)
			frags++
			if next == 0 {
				break
			}
			off = next
		}
		if !bytes.Equal(payload, pkt[20:]) {
			t.Fatalf("size %d mtu %d: payload differs after %d fragments", size, mtu, frags)
		}
	}
	dst := make([]byte, 1500)
	if n, _ := FragmentIPv4(dst, udp4(3000, true, a4, b4), 1400, 0); n != 0 {
		t.Error("fragmented a DF packet")
	}
	withOpts := udp4(3000, false, a4, b4)
	withOpts[0] = 0x46
	if n, _ := FragmentIPv4(dst, withOpts, 1400, 0); n != 0 {
		t.Error("fragmented a packet with options")
	}
	if n, _ := FragmentIPv4(dst, udp4(3000, false, a4, b4), 27, 0); n != 0 {
		t.Error("fragments of under 8 bytes")
	}
	// A fragment of a fragment keeps its place in the datagram and its MF.
	frag := udp4(1000, false, a4, b4)
	binary.BigEndian.PutUint16(frag[6:], 0x2000|100)
	n, next := FragmentIPv4(dst, frag, 600, 0)
	if n != 596 || binary.BigEndian.Uint16(dst[6:]) != 0x2000|100 {
		t.Errorf("first piece of a fragment: %d bytes, flags %#x", n, binary.BigEndian.Uint16(dst[6:]))
	}
	n, next = FragmentIPv4(dst, frag, 600, next)
	if next != 0 || binary.BigEndian.Uint16(dst[6:]) != 0x2000|(100+72) {
		t.Errorf("last piece of a fragment: %d bytes, flags %#x, next %d", n, binary.BigEndian.Uint16(dst[6:]), next)
	}
}

func TestTooBigNoAlloc(t *testing.T) {
	dst := make([]byte, TooBigMaxLen)
	p4, p6 := udp4(1500, true, a4, b4), udp6(1500, a6, b6)
	if n := testing.AllocsPerRun(100, func() { TooBig(dst, p4, 1400); TooBig(dst, p6, 1400); FragmentIPv4(dst, udp4Frag, 1400, 0) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

var udp4Frag = udp4(3000, false, a4, b4)

func FuzzTooBig(f *testing.F) {
	f.Add(udp4(1500, true, a4, b4), uint16(1400))
	f.Add(udp6(1500, a6, b6), uint16(1280))
	f.Add(udp4(3000, false, a4, b4), uint16(576))
	f.Fuzz(func(t *testing.T, pkt []byte, mtu uint16) {
		dst := make([]byte, TooBigMaxLen)
		if n := TooBig(dst, pkt, int(mtu)); n > 0 {
			switch IPVersion(dst) {
			case 4:
				if Checksum(dst[:20], 0) != 0 || Checksum(dst[20:n], 0) != 0 || n > 576 {
					t.Fatal("bad ICMPv4 message")
				}
			case 6:
				if n > IPv6MinMTU || Checksum(dst[40:n], PseudoHeaderSum(ProtoICMPv6, dst[8:24], dst[24:40], n-40)) != 0 {
					t.Fatal("bad ICMPv6 message")
				}
			default:
				t.Fatal("not IP")
			}
		}
		m := max(int(mtu), 68)
		frag := make([]byte, m)
		got := 0
		for off, i := 0, 0; i < 2000; i++ {
			n, next := FragmentIPv4(frag, pkt, m, off)
			if n == 0 {
				break
			}
			if n > m {
				t.Fatalf("fragment of %d bytes over mtu %d", n, m)
			}
			got += n - 20
			if next == 0 {
				if got != int(binary.BigEndian.Uint16(pkt[2:4]))-20 {
					t.Fatalf("fragments carry %d payload bytes of %d", got, int(binary.BigEndian.Uint16(pkt[2:4]))-20)
				}
				break
			}
			off = next
		}
	})
}
