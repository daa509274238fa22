package netconf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddAddr assigns the address p (for example 192.0.2.1/24; the address and
// the prefix length of the attached subnet) to link, like ip addr add.
//
// An address that is already present with the same prefix length is success;
// its flags and lifetimes are left as they are. An IPv6 address that is
// present with another prefix length is an error wrapping EEXIST (the kernel
// allows an IPv6 address only once per link; IPv4 allows the same address
// with different prefix lengths, and AddAddr then adds another entry). For
// IPv4 the broadcast address is set from the prefix, as netlink does.
func (h *Handle) AddAddr(link string, p netip.Prefix, opts ...AddrOption) error {
	var o addrOptions
	for _, opt := range opts {
		opt(&o)
	}
	return h.onLink(fmt.Sprintf("add address %s to %s", p, link), link, func(nl *netlink.Handle, l netlink.Link) error {
		addr, err := nlAddr(p)
		if err != nil {
			return err
		}
		if o.noDAD && p.Addr().Is6() {
			addr.Flags |= unix.IFA_F_NODAD
		}
		err = nl.AddrAdd(l, addr)
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
		// Present already: fine if with the same prefix length.
		have, lerr := addrsOf(nl, l, true)
		if lerr != nil {
			return err
		}
		for _, q := range have {
			if q == p {
				return nil
			}
		}
		for _, q := range have {
			if q.Addr() == p.Addr() {
				return fmt.Errorf("%s is already assigned: %w", q, err)
			}
		}
		return err
	})
}

// DelAddr removes the address p (address and prefix length, as given to
// AddAddr) from link, like ip addr del. An address that is not there is
// success. As with ip addr del, removing a primary IPv4 address also removes
// the secondary addresses of its subnet unless the namespace's
// net.ipv4.conf.*.promote_secondaries sysctl is set.
func (h *Handle) DelAddr(link string, p netip.Prefix) error {
	return h.onLink(fmt.Sprintf("delete address %s from %s", p, link), link, func(nl *netlink.Handle, l netlink.Link) error {
		addr, err := nlAddr(p)
		if err != nil {
			return err
		}
		err = nl.AddrDel(l, addr)
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil
		}
		return err
	})
}

// Addrs returns the IPv4 and IPv6 addresses of link, each with the prefix
// length it was added with, IPv4 first, in the kernel's order. IPv6
// link-local addresses (fe80::/10), which the kernel makes by itself, are
// left out; everything else is included, among them loopback addresses and
// addresses that are still tentative. A point-to-point address is reported as
// its local address with a full-length prefix.
func (h *Handle) Addrs(link string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := h.onLink("list addresses of "+link, link, func(nl *netlink.Handle, l netlink.Link) error {
		var err error
		out, err = addrsOf(nl, l, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// addrsOf lists the addresses of l, IPv6 link-local ones only if linkLocal.
func addrsOf(nl *netlink.Handle, l netlink.Link, linkLocal bool) ([]netip.Prefix, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return nl.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !linkLocal && ip.Is6() && ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// nlAddr converts an interface address to netlink's form.
func nlAddr(p netip.Prefix) (*netlink.Addr, error) {
	if !p.IsValid() {
		return nil, errors.New("invalid prefix")
	}
	if err := checkAddr(p.Addr()); err != nil {
		return nil, err
	}
	return &netlink.Addr{IPNet: ipNet(p)}, nil
}
