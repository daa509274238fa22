package netconf

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddBridge creates the Linux bridge name if it does not exist and sets it
// up. A bridge of that name that exists already is set up and is otherwise
// left alone; a link of that name that is not a bridge is an error matching
// [ErrNotBridge].
func (h *Handle) AddBridge(name string) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		err = addBridge(nl, name)
	}
	if err != nil {
		return h.errorf(err, "add bridge %s", name)
	}
	return nil
}

func addBridge(nl *netlink.Handle, name string) error {
	l, err := link(nl, name)
	if errors.Is(err, ErrLinkNotFound) {
		attrs := netlink.NewLinkAttrs() // the zero LinkAttrs would ask for txqueuelen 0
		attrs.Name = name
		err = nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		// Made now, or by someone else meanwhile: look again.
		l, err = link(nl, name)
	}
	if err != nil {
		return err
	}
	if err := isBridge(l); err != nil {
		return err
	}
	return nl.LinkSetUp(l)
}

// isBridge reports an error matching ErrNotBridge unless l is a bridge.
func isBridge(l netlink.Link) error {
	if l.Type() != "bridge" {
		return fmt.Errorf("%s is a %s link: %w", l.Attrs().Name, l.Type(), ErrNotBridge)
	}
	return nil
}

// AttachToBridge makes link a port of bridge (ip link set LINK master
// BRIDGE). A link already attached to that bridge is success; a link attached
// to another master is moved. A bridge that is not a bridge is an error
// matching [ErrNotBridge].
func (h *Handle) AttachToBridge(link, bridge string) error {
	return h.onLink(fmt.Sprintf("attach %s to bridge %s", link, bridge), link, func(nl *netlink.Handle, l netlink.Link) error {
		b, err := linkNamed(nl, bridge, "bridge")
		if err != nil {
			return err
		}
		if err := isBridge(b); err != nil {
			return err
		}
		if l.Attrs().MasterIndex == b.Attrs().Index {
			return nil
		}
		return nl.LinkSetMasterByIndex(l, b.Attrs().Index)
	})
}

// DetachFromBridge removes link from the bridge it is a port of (ip link set
// LINK nomaster). A link that is not attached to a bridge is success; a link
// enslaved to a master of another kind (a bond, a VRF) is left alone.
func (h *Handle) DetachFromBridge(link string) error {
	return h.onLink("detach "+link+" from its bridge", link, func(nl *netlink.Handle, l netlink.Link) error {
		mi := l.Attrs().MasterIndex
		if mi == 0 {
			return nil
		}
		m, err := nl.LinkByIndex(mi)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil // the master went away meanwhile
			}
			return err
		}
		if m.Type() != "bridge" {
			return nil
		}
		return nl.LinkSetNoMaster(l)
	})
}
