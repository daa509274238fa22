package netconf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The byte layouts of the BSD kernels' requests (macOS and FreeBSD), built
// here without build tags so that they are tested on every system. The
// machines tapwire builds for (amd64, arm64) are little-endian, and the
// structures' integers are in the machine's order.

const (
	ifNameSize     = 16 // IFNAMSIZ
	sizeofSockIn   = 16 // struct sockaddr_in
	sizeofSockIn6  = 28 // struct sockaddr_in6
	sizeofIfreq    = 32 // struct ifreq
	sizeofIn6Ifreq = 288
	afInet         = 2 // AF_INET, the same on every BSD

	in6IffNodad       = 0x0020     // IN6_IFF_NODAD
	nd6InfiniteLifetm = 0xffffffff // ND6_INFINITE_LIFETIME
)

// siocDIFADDR6 is SIOCDIFADDR_IN6, _IOW('i', 25, struct in6_ifreq), the
// same on macOS and FreeBSD (netinet6/in6_var.h): a 288-byte in6_ifreq,
// whose union's largest member is struct icmp6_ifstat (34 uint64s).
const siocDIFADDR6 = 0x81206919

// bsdLayout is what differs between macOS and FreeBSD in the requests.
type bsdLayout struct {
	af6             byte // AF_INET6: 30 on macOS, 28 on FreeBSD
	sizeofAliasReq  int  // struct ifaliasreq: FreeBSD's ends with ifra_vhid
	sizeofAliasReq6 int  // struct in6_aliasreq: likewise
	// The add-address requests, whose numbers encode the sizes above.
	siocAIFADDR  uint // SIOCAIFADDR
	siocAIFADDR6 uint // SIOCAIFADDR_IN6
}

// darwinLayout is macOS's (xnu bsd/sys/sockio.h, bsd/netinet6/in6_var.h):
// SIOCAIFADDR is _IOW('i', 26, struct ifaliasreq), SIOCAIFADDR_IN6 is
// _IOW('i', 26, struct in6_aliasreq).
func darwinLayout() bsdLayout {
	return bsdLayout{af6: 30, sizeofAliasReq: 64, sizeofAliasReq6: 128,
		siocAIFADDR: 0x8040691a, siocAIFADDR6: 0x8080691a}
}

// freebsdLayout is FreeBSD's (sys/sockio.h, netinet/in_var.h,
// netinet6/in6_var.h): SIOCAIFADDR is _IOW('i', 43, struct in_aliasreq)
// and SIOCAIFADDR_IN6 _IOW('i', 27, struct in6_aliasreq), both with
// ifra_vhid; 26 is the FreeBSD 9 form without it (OSIOCAIFADDR), which is
// golang.org/x/sys/unix's SIOCAIFADDR.
func freebsdLayout() bsdLayout {
	return bsdLayout{af6: 28, sizeofAliasReq: 68, sizeofAliasReq6: 136,
		siocAIFADDR: 0x8044692b, siocAIFADDR6: 0x8088691b}
}

// putName writes an interface name at the start of a request.
func putName(b []byte, name string) error {
	if name == "" || len(name) >= ifNameSize {
		return fmt.Errorf("interface name %q is empty or longer than %d bytes", name, ifNameSize-1)
	}
	copy(b[:ifNameSize], name)
	return nil
}

// putSockaddr writes a as a struct sockaddr_in or sockaddr_in6 at b; the
// zero Addr writes nothing.
func (l bsdLayout) putSockaddr(b []byte, a netip.Addr) {
	switch {
	case a.Is4():
		b[0], b[1] = sizeofSockIn, afInet
		ip := a.As4()
		copy(b[4:8], ip[:])
	case a.Is6():
		b[0], b[1] = sizeofSockIn6, l.af6
		ip := a.As16()
		copy(b[8:24], ip[:])
	}
}

// aliasReq4 is a struct ifaliasreq for SIOCAIFADDR: the address, the
// broadcast or (on a point-to-point link) destination address, the netmask.
func (l bsdLayout) aliasReq4(name string, addr, dst, mask netip.Addr) ([]byte, error) {
	b := make([]byte, l.sizeofAliasReq)
	if err := putName(b, name); err != nil {
		return nil, err
	}
	l.putSockaddr(b[16:], addr)
	l.putSockaddr(b[32:], dst)
	l.putSockaddr(b[48:], mask)
	return b, nil
}

// aliasReq6 is a struct in6_aliasreq for SIOCAIFADDR_IN6: the address, its
// prefix mask, flags (in6IffNodad) and infinite lifetimes.
func (l bsdLayout) aliasReq6(name string, addr, mask netip.Addr, flags uint32) ([]byte, error) {
	b := make([]byte, l.sizeofAliasReq6)
	if err := putName(b, name); err != nil {
		return nil, err
	}
	l.putSockaddr(b[16:], addr)
	// ifra_dstaddr (b[44:72]) stays empty.
	l.putSockaddr(b[72:], mask)
	binary.LittleEndian.PutUint32(b[100:], flags)
	// ifra_lifetime at 104: expire and preferred (time_t, 0), then the
	// valid and preferred lifetimes.
	binary.LittleEndian.PutUint32(b[120:], nd6InfiniteLifetm)
	binary.LittleEndian.PutUint32(b[124:], nd6InfiniteLifetm)
	return b, nil
}

// ifreqAddr is a struct ifreq (IPv4, for SIOCDIFADDR) or in6_ifreq (IPv6,
// for SIOCDIFADDR_IN6) naming an address of the interface.
func (l bsdLayout) ifreqAddr(name string, addr netip.Addr) ([]byte, error) {
	size := sizeofIfreq
	if addr.Is6() {
		size = sizeofIn6Ifreq
	}
	b := make([]byte, size)
	if err := putName(b, name); err != nil {
		return nil, err
	}
	l.putSockaddr(b[16:], addr)
	return b, nil
}

// ifreqLLAddr is a struct ifreq for SIOCSIFLLADDR: the link-layer address
// in ifr_addr, as ifconfig ether writes it.
func ifreqLLAddr(name string, mac []byte, afLink byte) ([]byte, error) {
	b := make([]byte, sizeofIfreq)
	if err := putName(b, name); err != nil {
		return nil, err
	}
	if len(mac) > sizeofIfreq-16-2 {
		return nil, fmt.Errorf("hardware address of %d bytes is too long", len(mac))
	}
	b[16], b[17] = byte(len(mac)), afLink
	copy(b[18:], mac)
	return b, nil
}

// maskAddr returns the netmask of a prefix length as an address of the
// family of a.
func maskAddr(bits int, a netip.Addr) netip.Addr {
	var m [16]byte
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	if a.Is4() {
		return netip.AddrFrom4([4]byte(m[:4]))
	}
	return netip.AddrFrom16(m)
}

// maskBits returns the prefix length of a netmask, and false if its ones
// are not contiguous.
func maskBits(mask []byte) (int, bool) {
	bits, zero := 0, false
	for _, b := range mask {
		for i := 7; i >= 0; i-- {
			if b>>i&1 == 1 {
				if zero {
					return 0, false
				}
				bits++
			} else {
				zero = true
			}
		}
	}
	return bits, true
}
