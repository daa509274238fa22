//go:build darwin || freebsd

package netconf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRouteMessage checks the bytes of route messages against net/route.h:
// struct rt_msghdr (92 bytes on macOS, 152 on 64-bit FreeBSD), then the
// sockaddrs, each padded to 4 bytes on macOS (ROUNDUP32) and to
// sizeof(long) on FreeBSD (SA_SIZE).
func TestRouteMessage(t *testing.T) {
	hdr, align := 152, 8
	if runtime.GOOS == "darwin" {
		hdr, align = 92, 4
	}
	up := func(n int) int { return (n + align - 1) &^ (align - 1) }

	// An interface route: DST, GATEWAY (the link), NETMASK.
	b, err := routeMessage(unix.RTM_ADD, rtReq{Dst: netip.MustParseAddr("10.0.0.0"), Mask: netip.MustParseAddr("255.255.255.0"), Link: 7})
	if err != nil {
		t.Fatal(err)
	}
	if l := int(binary.LittleEndian.Uint16(b)); l != len(b) || b[2] != unix.RTM_VERSION || b[3] != unix.RTM_ADD {
		t.Fatalf("header % x", b[:4])
	}
	if flags := int(binary.LittleEndian.Uint32(b[8:])); flags != unix.RTF_UP|unix.RTF_STATIC {
		t.Errorf("rtm_flags = %#x", flags)
	}
	if addrs := binary.LittleEndian.Uint32(b[12:]); addrs != unix.RTA_DST|unix.RTA_GATEWAY|unix.RTA_NETMASK {
		t.Errorf("rtm_addrs = %#x", addrs)
	}
	p := b[hdr:]
	if !bytes.Equal(p[:8], []byte{16, unix.AF_INET, 0, 0, 10, 0, 0, 0}) {
		t.Errorf("RTA_DST = % x", p[:16])
	}
	p = p[up(16):]
	if !bytes.Equal(p[:sizeofSockaddrDl], linkSockaddr(7)) || p[0] < 16 {
		t.Errorf("RTA_GATEWAY = % x, want a sockaddr_dl of index 7 and at least 16 bytes", p[:sizeofSockaddrDl])
	}
	p = p[up(sizeofSockaddrDl):]
	if !bytes.Equal(p[:8], []byte{16, unix.AF_INET, 0, 0, 255, 255, 255, 0}) {
		t.Errorf("RTA_NETMASK = % x", p[:16])
	}

	// A host route through a link-local gateway on link 5: RTF_GATEWAY and
	// RTF_HOST, DST, GATEWAY with the embedded scope, IFP.
	b, err = routeMessage(unix.RTM_ADD, rtReq{Dst: netip.MustParseAddr("2001:db8::1"), Gateway: netip.MustParseAddr("fe80::1"), Link: 5})
	if err != nil {
		t.Fatal(err)
	}
	if flags := int(binary.LittleEndian.Uint32(b[8:])); flags != unix.RTF_UP|unix.RTF_STATIC|unix.RTF_GATEWAY|unix.RTF_HOST {
		t.Errorf("rtm_flags = %#x", flags)
	}
	if addrs := binary.LittleEndian.Uint32(b[12:]); addrs != unix.RTA_DST|unix.RTA_GATEWAY|unix.RTA_IFP {
		t.Errorf("rtm_addrs = %#x", addrs)
	}
	p = b[hdr+up(28):]
	gw := netip.MustParseAddr("fe80:5::1").As16()
	if p[0] != 28 || p[1] != unix.AF_INET6 || !bytes.Equal(p[8:24], gw[:]) {
		t.Errorf("RTA_GATEWAY = % x", p[:28])
	}
	if p = p[up(28):]; !bytes.Equal(p[:sizeofSockaddrDl], linkSockaddr(5)) {
		t.Errorf("RTA_IFP = % x", p[:sizeofSockaddrDl])
	}
}
