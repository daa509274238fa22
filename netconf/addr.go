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
