package netconf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestMaskAddrBits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		bits int
		a    string
		want string
	}{
		{0, "0.0.0.0", "0.0.0.0"},
		{1, "0.0.0.0", "128.0.0.0"},
		{24, "192.0.2.0", "255.255.255.0"},
		{32, "192.0.2.1", "255.255.255.255"},
		{1, "::", "8000::"},
		{64, "2001:db8::", "ffff:ffff:ffff:ffff::"},
	} {
		m := maskAddr(c.bits, netip.MustParseAddr(c.a))
		if m.String() != c.want {
			t.Errorf("maskAddr(%d, %s) = %s, want %s", c.bits, c.a, m, c.want)
		}
		if bits, ok := maskBits(m.AsSlice()); !ok || bits != c.bits {
			t.Errorf("maskBits(%s) = %d, %v; want %d", m, bits, ok, c.bits)
		}
	}
	if _, ok := maskBits([]byte{255, 0, 255, 0}); ok {
		t.Error("maskBits accepted a mask with a hole")
	}
}

func TestAliasReq4(t *testing.T) {
	t.Parallel()
	addr, dst, mask := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("255.255.255.0")
	for _, l := range []bsdLayout{darwinLayout(), freebsdLayout()} {
		b, err := l.aliasReq4("utun3", addr, dst, mask)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != l.sizeofAliasReq || string(b[:6]) != "utun3\x00" {
			t.Fatalf("%d bytes, name %q", len(b), b[:16])
		}
		for off, want := range map[int]netip.Addr{16: addr, 32: dst, 48: mask} {
			if b[off] != 16 || b[off+1] != 2 || netip.AddrFrom4([4]byte(b[off+4:off+8])) != want {
				t.Errorf("sockaddr at %d = % x, want %s", off, b[off:off+16], want)
			}
		}
	}
	if _, err := darwinLayout().aliasReq4("a-name-far-too-long", addr, dst, mask); err == nil {
		t.Error("a 19-byte name was taken")
	}
}

func TestAliasReq6(t *testing.T) {
	t.Parallel()
	addr, mask := netip.MustParseAddr("fd00::2"), maskAddr(64, netip.MustParseAddr("fd00::"))
	for _, c := range []struct {
		l    bsdLayout
		af6  byte
		size int
	}{{darwinLayout(), 30, 128}, {freebsdLayout(), 28, 136}} {
		b, err := c.l.aliasReq6("tun0", addr, mask, in6IffNodad)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != c.size {
			t.Fatalf("size %d, want %d", len(b), c.size)
		}
		if b[16] != 28 || b[17] != c.af6 || netip.AddrFrom16([16]byte(b[24:40])) != addr {
			t.Errorf("ifra_addr = % x", b[16:44])
		}
		if !slices.Equal(b[44:72], make([]byte, 28)) {
			t.Errorf("ifra_dstaddr = % x, want zeros", b[44:72])
		}
		if b[72] != 28 || netip.AddrFrom16([16]byte(b[80:96])) != mask {
			t.Errorf("ifra_prefixmask = % x", b[72:100])
		}
		if f := binary.LittleEndian.Uint32(b[100:]); f != in6IffNodad {
			t.Errorf("ifra_flags = %#x", f)
		}
		if v, p := binary.LittleEndian.Uint32(b[120:]), binary.LittleEndian.Uint32(b[124:]); v != 0xffffffff || p != 0xffffffff {
			t.Errorf("lifetimes %#x %#x, want infinite", v, p)
		}
	}
}

func TestIfreqAddr(t *testing.T) {
	t.Parallel()
	b, _ := freebsdLayout().ifreqAddr("tun0", netip.MustParseAddr("192.0.2.1"))
	if len(b) != 32 || b[16] != 16 || b[17] != 2 || b[20] != 192 || b[23] != 1 {
		t.Errorf("ifreq = % x", b)
	}
	b, _ = darwinLayout().ifreqAddr("utun1", netip.MustParseAddr("2001:db8::1"))
	if len(b) != 288 || b[16] != 28 || b[17] != 30 || b[24] != 0x20 || b[39] != 1 {
		t.Errorf("in6_ifreq = % x", b[:48])
	}
	b, _ = ifreqLLAddr("tap0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, 18)
	if b[16] != 6 || b[17] != 18 || !slices.Equal(b[18:24], []byte{2, 0, 0, 0, 0, 1}) {
		t.Errorf("ifreq ether = % x", b)
	}
}

func TestRtReq(t *testing.T) {
	t.Parallel()
	q := newRtReq(Route{Dst: netip.MustParsePrefix("0.0.0.0/1"), Link: "utun3"}, 7)
	if q.Host() || q.Mask.String() != "128.0.0.0" || q.Gateway.IsValid() || q.Link != 7 {
		t.Errorf("interface route: %+v", q)
	}
	q = newRtReq(Route{Dst: netip.MustParsePrefix("198.51.100.7/32"), Via: netip.MustParseAddr("192.0.2.1")}, 0)
	if !q.Host() || q.Gateway.String() != "192.0.2.1" || q.Link != 0 {
		t.Errorf("host route: %+v", q)
	}
	if !sameRoute(rtEntry{Dst: netip.MustParsePrefix("198.51.100.7/32"), Gateway: q.Gateway, Link: 4}, q) {
		t.Error("the same host route is not sameRoute")
	}
	if sameRoute(rtEntry{Dst: netip.MustParsePrefix("198.51.100.7/32"), Link: 4}, q) {
		t.Error("an interface route is the same as a gateway route")
	}
	i := newRtReq(Route{Dst: netip.MustParsePrefix("10.0.0.0/24"), Link: "utun3"}, 7)
	if !sameRoute(rtEntry{Dst: netip.MustParsePrefix("10.0.0.0/24"), Link: 7}, i) ||
		sameRoute(rtEntry{Dst: netip.MustParsePrefix("10.0.0.0/24"), Link: 8}, i) {
		t.Error("interface routes compared wrong")
	}
}

func TestEntryDst(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		dst  string
		mask []byte
		host bool
		want string
	}{
		{"0.0.0.0", nil, false, "0.0.0.0/0"},
		{"0.0.0.0", []byte{0, 0, 0, 0}, false, "0.0.0.0/0"},
		{"192.0.2.0", []byte{255, 255, 255, 0}, false, "192.0.2.0/24"},
		{"192.0.2.9", nil, true, "192.0.2.9/32"},
		{"::", make([]byte, 16), false, "::/0"},
	} {
		p, ok := entryDst(netip.MustParseAddr(c.dst), c.mask, c.host)
		if !ok || p.String() != c.want {
			t.Errorf("entryDst(%s, % x, %v) = %s, %v; want %s", c.dst, c.mask, c.host, p, ok, c.want)
		}
	}
}

func TestPickDefault(t *testing.T) {
	t.Parallel()
	gw1, gw2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.254")
	es := []rtEntry{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Link: 9, Flags: 0x1000000}, // scoped
		{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gateway: gw2, Link: 4},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, Link: 4},
		{Dst: netip.MustParsePrefix("::/0"), Link: 5},
	}
	best, ok := pickDefault(defaultRoutes(es, false, 0x1000000))
	if !ok || best.Via != gw1 || best.Link != 4 {
		t.Errorf("IPv4 default = %+v, %v", best, ok)
	}
	best, ok = pickDefault(defaultRoutes(es, true, 0x1000000))
	if !ok || best.Via.IsValid() || best.Link != 5 {
		t.Errorf("IPv6 default = %+v, %v", best, ok)
	}
	best, _ = pickDefault([]gwRoute{{Via: gw1, Link: 1, Metric: 50}, {Via: gw2, Link: 2, Metric: 10}, {Via: gw1, Link: 3, Metric: 10}})
	if best.Via != gw2 {
		t.Errorf("lowest metric: %+v", best)
	}
	if _, ok := pickDefault(nil); ok {
		t.Error("a default route out of nothing")
	}
}

func TestIPNets(t *testing.T) {
	t.Parallel()
	_, n6, _ := net.ParseCIDR("fd00::2/64")
	n6.IP = net.ParseIP("fd00::2")
	ll := &net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}
	v4 := &net.IPNet{IP: net.ParseIP("10.0.0.2"), Mask: net.CIDRMask(24, 32)}
	got := ipNets([]net.Addr{n6, ll, v4}, false)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}
	if !slices.Equal(got, want) {
		t.Errorf("ipNets = %v, want %v", got, want)
	}
	if b := broadcast(netip.MustParsePrefix("10.1.2.3/22")); b.String() != "10.1.3.255" {
		t.Errorf("broadcast = %s", b)
	}
}

func TestNotSupported(t *testing.T) {
	t.Parallel()
	err := notSupported("darwin", "policy routing rules are Linux's")
	if !errors.Is(err, ErrNotSupported) || err.Error() != "policy routing rules are Linux's on darwin: not supported" {
		t.Errorf("notSupported = %v", err)
	}
}

// unhex decodes a hand-written byte image: hex digits, spaces and dots
// ignored (a dot marks a field boundary).
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", ".", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRequestImages compares whole requests with byte images written by
// hand from the headers: xnu bsd/net/if.h (struct ifaliasreq), FreeBSD
// netinet6/in6_var.h (struct in6_aliasreq, with ifra_vhid, 8-byte time_t).
func TestRequestImages(t *testing.T) {
	t.Parallel()
	b, err := darwinLayout().aliasReq4("utun3", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("255.255.255.0"))
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		75 74 75 6e 33 00 00 00 00 00 00 00 00 00 00 00
		10 02 0000 0a000002 0000000000000000
		10 02 0000 0a000002 0000000000000000
		10 02 0000 ffffff00 0000000000000000`)
	if !bytes.Equal(b, want) {
		t.Errorf("macOS ifaliasreq\n got % x\nwant % x", b, want)
	}

	b, err = freebsdLayout().aliasReq6("tun0", netip.MustParseAddr("fd00::2"), maskAddr(64, netip.MustParseAddr("fd00::")), in6IffNodad)
	if err != nil {
		t.Fatal(err)
	}
	want = unhex(t, `
		74 75 6e 30 00 00 00 00 00 00 00 00 00 00 00 00
		1c 1c 0000 00000000 fd000000000000000000000000000002 00000000
		00000000 00000000 00000000000000000000000000000000 00000000
		1c 1c 0000 00000000 ffffffffffffffff0000000000000000 00000000
		20000000
		0000000000000000 . 0000000000000000 . ffffffff . ffffffff
		00000000 . 00000000`)
	if !bytes.Equal(b, want) {
		t.Errorf("FreeBSD in6_aliasreq\n got % x\nwant % x", b, want)
	}
	// FreeBSD's in_aliasreq is macOS's ifaliasreq and ifra_vhid (0).
	b, _ = freebsdLayout().aliasReq4("tun0", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.255"), netip.MustParseAddr("255.255.255.0"))
	if len(b) != 68 || !slices.Equal(b[64:], []byte{0, 0, 0, 0}) || !slices.Equal(b[32:40], []byte{16, 2, 0, 0, 10, 0, 0, 255}) {
		t.Errorf("FreeBSD in_aliasreq = % x", b)
	}
}

// bsdIOW is _IOW(group, num, size) of the BSD kernels' sys/ioccom.h.
func bsdIOW(group byte, num, size int) uint {
	return 0x80000000 | uint(size&0x1fff)<<16 | uint(group)<<8 | uint(num)
}

// TestRequestNumbers recomputes the ioctl numbers from their definitions
// and the structure sizes.
func TestRequestNumbers(t *testing.T) {
	t.Parallel()
	d, f := darwinLayout(), freebsdLayout()
	for _, c := range []struct {
		name      string
		got, want uint
	}{
		{"macOS SIOCAIFADDR", d.siocAIFADDR, bsdIOW('i', 26, d.sizeofAliasReq)},
		{"macOS SIOCAIFADDR_IN6", d.siocAIFADDR6, bsdIOW('i', 26, d.sizeofAliasReq6)},
		{"FreeBSD SIOCAIFADDR", f.siocAIFADDR, bsdIOW('i', 43, f.sizeofAliasReq)},
		{"FreeBSD SIOCAIFADDR_IN6", f.siocAIFADDR6, bsdIOW('i', 27, f.sizeofAliasReq6)},
		{"SIOCDIFADDR_IN6", siocDIFADDR6, bsdIOW('i', 25, sizeofIn6Ifreq)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// struct in6_ifreq: the name and a union whose largest member is
	// struct icmp6_ifstat, 34 64-bit counters.
	if sizeofIn6Ifreq != 16+34*8 {
		t.Errorf("sizeof(struct in6_ifreq) = %d", sizeofIn6Ifreq)
	}
}

// TestRouteSockaddrs checks what route messages carry besides x/net/route's
// own sockaddrs: the interface's sockaddr_dl and a link-local gateway.
func TestRouteSockaddrs(t *testing.T) {
	t.Parallel()
	want := []byte{20, 18, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if b := linkSockaddr(0x107); !bytes.Equal(b, want) {
		t.Errorf("linkSockaddr(0x107) = % x, want % x", b, want)
	}
	for _, c := range []struct {
		a     string
		scope int
		want  string
	}{
		{"fe80::1", 5, "fe80:5::1"},
		{"fe80::1", 0, "fe80::1"},
		{"ff02::1", 0x102, "ff02:102::1"},
		{"2001:db8::1", 5, "2001:db8::1"},
	} {
		if b := embedScope(netip.MustParseAddr(c.a), c.scope); netip.AddrFrom16(b).String() != c.want {
			t.Errorf("embedScope(%s, %d) = %s, want %s", c.a, c.scope, netip.AddrFrom16(b), c.want)
		}
	}
}
