package netconf

import (
	"errors"
	"fmt"
	"sync"
)

// ErrLinkNotFound is matched (with errors.Is) by errors about a link that
// does not exist in the handle's namespace.
var ErrLinkNotFound = errors.New("link not found")

// ErrNotBridge is matched (with errors.Is) by errors about a link that exists
// but is not a Linux bridge where a bridge is required: [Handle.AddBridge] on
// a name taken by another kind of link, or [Handle.AttachToBridge] to a link
// that is not a bridge.
var ErrNotBridge = errors.New("not a bridge")

// ErrClosed is matched (with errors.Is) by errors from a Handle after Close.
var ErrClosed = errors.New("handle is closed")

// ErrNotSupported is matched (with errors.Is) by errors about what the
// operating system lacks or this package does not do there: network
// namespaces, policy rules, bridges and veth pairs outside Linux, routing
// tables other than the main one outside Linux, for example. The error's
// text names the operation and the system.
var ErrNotSupported = errors.New("not supported")

// Handle configures links in one network namespace, without moving the
// calling goroutine into it. It is safe for concurrent use; its calls are
// serialized. Close it when done.
//
// On Linux a Handle holds a netlink socket in its namespace; on macOS,
// FreeBSD and Windows, which have no network namespaces, it works on the
// host's only network stack (see the package doc, Systems).
type Handle struct {
	mu  sync.Mutex
	sys *sysHandle // nil once closed
	ns  string     // as given to Open, for error messages
}

// Close releases the handle's sockets. Later calls on the handle fail with
// [ErrClosed]. Close may be called more than once.
func (h *Handle) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sys != nil {
		h.sys.Close()
		h.sys = nil
	}
}

// lock locks h and returns its system handle, or ErrClosed. The caller
// unlocks h.mu. (On Linux, using a closed netlink.Handle is dangerous: with
// its sockets gone it silently falls back to a socket in the calling
// thread's namespace.)
func (h *Handle) lock() (*sysHandle, error) {
	h.mu.Lock()
	if h.sys == nil {
		return nil, ErrClosed
	}
	return h.sys, nil
}

// where describes a namespace reference for error messages.
func where(ns string) string {
	if ns == "" {
		return "current netns"
	}
	return "netns " + ns
}

// errorf wraps err with "netconf: <what> in <namespace>: ".
func (h *Handle) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("netconf: %s in %s: %w", fmt.Sprintf(format, args...), where(h.ns), err)
}

// notSupported is an error wrapping ErrNotSupported that says what goos
// lacks.
func notSupported(goos, what string) error {
	return fmt.Errorf("%s on %s: %w", what, goos, ErrNotSupported)
}
