package netconf

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// link looks a link up by name, mapping "not found" to ErrLinkNotFound.
func link(nl *netlink.Handle, name string) (netlink.Link, error) {
	if name == "" {
		return nil, errors.New("empty link name")
	}
	l, err := retryDump(func() (netlink.Link, error) { return nl.LinkByName(name) })
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, ErrLinkNotFound
		}
		return nil, err
	}
	return l, nil
}

// LinkIndex returns the interface index of the link name.
func (h *Handle) LinkIndex(name string) (int, error) {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l netlink.Link
		if l, err = link(nl, name); err == nil {
			return l.Attrs().Index, nil
		}
	}
	return 0, h.errorf(err, "look up link %s", name)
}

// SetUp sets the link administratively up (ip link set LINK up).
func (h *Handle) SetUp(link string) error {
	return h.onLink("set up "+link, link, func(nl *netlink.Handle, l netlink.Link) error {
		return nl.LinkSetUp(l)
	})
}

// SetDown sets the link administratively down (ip link set LINK down).
func (h *Handle) SetDown(link string) error {
	return h.onLink("set down "+link, link, func(nl *netlink.Handle, l netlink.Link) error {
		return nl.LinkSetDown(l)
	})
}

// SetMTU sets the link's MTU. A link that already has it is left alone.
func (h *Handle) SetMTU(link string, mtu int) error {
	what := fmt.Sprintf("set MTU %d on %s", mtu, link)
	if mtu <= 0 {
		return h.errorf(errors.New("MTU must be positive"), "%s", what)
	}
	return h.onLink(what, link, func(nl *netlink.Handle, l netlink.Link) error {
		if l.Attrs().MTU == mtu {
			return nil
		}
		return nl.LinkSetMTU(l, mtu)
	})
}

// SetHardwareAddr sets the link's hardware (MAC) address. A link that already
// has it is left alone, so this also succeeds on links that cannot change
// their address while up, provided the address is unchanged.
func (h *Handle) SetHardwareAddr(link string, mac net.HardwareAddr) error {
	what := fmt.Sprintf("set hardware address %s on %s", mac, link)
	if len(mac) == 0 {
		return h.errorf(errors.New("empty hardware address"), "%s", what)
	}
	return h.onLink(what, link, func(nl *netlink.Handle, l netlink.Link) error {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) {
			return nil
		}
		return nl.LinkSetHardwareAddr(l, mac)
	})
}

// DelLink deletes the link name, like ip link del. A link that does not exist
// is success. Deleting one end of a veth pair deletes the other end too.
func (h *Handle) DelLink(name string) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l netlink.Link
		l, err = link(nl, name)
		switch {
		case errors.Is(err, ErrLinkNotFound):
			err = nil
		case err == nil:
			err = nl.LinkDel(l)
			if errors.Is(err, unix.ENODEV) {
				err = nil
			}
		}
	}
	if err != nil {
		return h.errorf(err, "delete link %s", name)
	}
	return nil
}

// linkNamed is link with the role of the link in the error.
func linkNamed(nl *netlink.Handle, name, role string) (netlink.Link, error) {
	l, err := link(nl, name)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", role, name, err)
	}
	return l, nil
}

// AddVeth creates a veth pair: name in the handle's namespace and peer in
// the namespace peerNS ("" for the same one; a name or a path as for Open).
// Both ends stay down. A link called name that already exists is an error
// matching fs.ErrExist.
func (h *Handle) AddVeth(name, peer, peerNS string) error {
	var target netns.NsHandle = -1
	if peerNS != "" {
		t, err := inns.Open(peerNS)
		if err != nil {
			return h.errorf(err, "add veth %s", name)
		}
		defer t.Close()
		target = t
	}
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peer}
		if target >= 0 {
			veth.PeerNamespace = netlink.NsFd(int(target))
		}
		err = nl.LinkAdd(veth)
	}
	if err != nil {
		return h.errorf(err, "add veth %s (peer %s)", name, peer)
	}
	return nil
}
