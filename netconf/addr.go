package netconf

import (
	"errors"
	"net"
	"net/netip"
)

// AddrOption modifies how [Handle.AddAddr] adds an address.
type AddrOption func(*addrOptions)

type addrOptions struct {
	noDAD bool
}

// NoDAD adds an IPv6 address without duplicate address detection
// (IFA_F_NODAD on Linux, IN6_IFF_NODAD on macOS and FreeBSD), so that the
// address is usable at once instead of "tentative" for about a second. It
// has no effect on IPv4 addresses, nor on Windows.
func NoDAD() AddrOption {
	return func(o *addrOptions) { o.noDAD = true }
}

// checkAddr rejects addresses the kernels would mangle.
func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("invalid address")
	case a.Is4In6():
		return errors.New("IPv4-mapped IPv6 addresses are not supported; use the IPv4 form")
	case a.Zone() != "":
		return errors.New("addresses with a zone are not supported; name the link instead")
	}
	return nil
}

// ipNet converts a valid prefix to a net.IPNet keeping the host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// checkPrefix rejects an interface address the kernels would mangle.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	return checkAddr(p.Addr())
}

// broadcast returns the IPv4 broadcast address of p's subnet.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// ipNets converts the addresses Go's net package lists for an interface,
// IPv4 first and otherwise in its order; IPv6 link-local ones only if
// linkLocal.
func ipNets(addrs []net.Addr, linkLocal bool) []netip.Prefix {
	var v4, v6 []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, _ := n.Mask.Size()
		if ip.Is4() && len(n.Mask) == net.IPv6len {
			ones -= 96
		}
		if ip.Is4() {
			v4 = append(v4, netip.PrefixFrom(ip, ones))
		} else if linkLocal || !ip.IsLinkLocalUnicast() {
			v6 = append(v6, netip.PrefixFrom(ip.WithZone(""), ones))
		}
	}
	return append(v4, v6...)
}
