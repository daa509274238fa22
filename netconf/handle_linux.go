package netconf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
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

// dumpRetries bounds how often a netlink dump interrupted by a concurrent
// change (NLM_F_DUMP_INTR) is repeated before the error is returned.
const dumpRetries = 5

// Handle configures links in one network namespace, without moving the
// calling goroutine into it. It is safe for concurrent use; its calls are
// serialized. Close it when done.
type Handle struct {
	mu sync.Mutex
	nl *netlink.Handle // nil once closed
	ns string          // as given to Open, for error messages
}

// Open returns a Handle on the network namespace ns: "" is the calling
// thread's namespace, a reference containing "/" is a path to a namespace
// file, anything else is a name under /var/run/netns (see the package doc,
// Namespaces). A namespace that does not exist is an error matching
// fs.ErrNotExist.
//
// The netlink socket is created by a helper goroutine on a locked OS thread
// that enters the namespace and leaves it again; the calling goroutine does
// not move, and a thread that could not return is destroyed rather than
// reused.
func Open(ns string) (*Handle, error) {
	var (
		nh  *netlink.Handle
		err error
	)
	if ns == "" {
		// netns.None() makes the socket in the current thread's namespace
		// without any setns.
		nh, err = netlink.NewHandleAt(netns.None(), unix.NETLINK_ROUTE)
	} else {
		var target netns.NsHandle
		target, err = inns.Open(ns)
		if err != nil {
			return nil, fmt.Errorf("netconf: open %s: %w", where(ns), err)
		}
		defer target.Close()
		err = inns.DoHandle(target, func() error {
			var err error
			nh, err = netlink.NewHandleAt(netns.None(), unix.NETLINK_ROUTE)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("netconf: open netlink socket in %s: %w", where(ns), err)
	}
	return &Handle{nl: nh, ns: ns}, nil
}

// Close releases the handle's netlink socket. Later calls on the handle fail
// with [ErrClosed]. Close may be called more than once.
func (h *Handle) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
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

// lock locks h and returns its netlink handle, or ErrClosed. The caller
// unlocks h.mu. Using a closed netlink.Handle is dangerous: with its sockets
// gone it silently falls back to a socket in the calling thread's namespace.
func (h *Handle) lock() (*netlink.Handle, error) {
	h.mu.Lock()
	if h.nl == nil {
		return nil, ErrClosed
	}
	return h.nl, nil
}

// retryDump repeats f while it reports an interrupted dump.
func retryDump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range dumpRetries {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return v, err
}

// onLink looks up the link name and runs fn on it with the handle locked,
// wrapping any error as "netconf: <what> in <namespace>: ...".
func (h *Handle) onLink(what, name string, fn func(*netlink.Handle, netlink.Link) error) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	if err == nil {
		var l netlink.Link
		if l, err = link(nl, name); err == nil {
			err = fn(nl, l)
		}
	}
	if err != nil {
		return h.errorf(err, "%s", what)
	}
	return nil
}
