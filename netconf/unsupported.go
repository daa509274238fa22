//go:build darwin || freebsd || windows

package netconf

import "fmt"

// Policy rules, bridges and veth pairs are Linux's. The methods are here,
// with the same signatures, so that code written for Linux builds
// everywhere and fails at run time with ErrNotSupported.

// AddRule fails with an error matching [ErrNotSupported]: policy routing
// rules are Linux's.
func (h *Handle) AddRule(r Rule) error {
	return h.unsupported("add rule "+r.String(), "policy routing rules")
}

// DelRule fails with an error matching [ErrNotSupported]: policy routing
// rules are Linux's.
func (h *Handle) DelRule(r Rule) error {
	return h.unsupported("delete rule "+r.String(), "policy routing rules")
}

// AddBridge fails with an error matching [ErrNotSupported]: bridges are
// configured here on Linux only.
func (h *Handle) AddBridge(name string) error {
	return h.unsupported("add bridge "+name, "bridges")
}

// AttachToBridge fails with an error matching [ErrNotSupported]: bridges
// are configured here on Linux only.
func (h *Handle) AttachToBridge(link, bridge string) error {
	return h.unsupported(fmt.Sprintf("attach %s to bridge %s", link, bridge), "bridges")
}

// DetachFromBridge fails with an error matching [ErrNotSupported]: bridges
// are configured here on Linux only.
func (h *Handle) DetachFromBridge(link string) error {
	return h.unsupported("detach "+link+" from its bridge", "bridges")
}

// AddVeth fails with an error matching [ErrNotSupported]: veth pairs are
// Linux's.
func (h *Handle) AddVeth(name, peer, peerNS string) error {
	return h.unsupported(fmt.Sprintf("add veth %s (peer %s)", name, peer), "veth pairs")
}

// unsupported is the error of an operation this system lacks, or
// ErrClosed on a closed handle.
func (h *Handle) unsupported(what, feature string) error {
	_, err := h.lock()
	h.mu.Unlock()
	if err == nil {
		err = notSupported(goos, feature+" are Linux's")
	}
	return h.errorf(err, "%s", what)
}
