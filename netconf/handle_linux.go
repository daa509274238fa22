package netconf

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// dumpRetries bounds how often a netlink dump interrupted by a concurrent
// change (NLM_F_DUMP_INTR) is repeated before the error is returned.
const dumpRetries = 5

// sysHandle is what a Handle holds on Linux: a netlink socket in its
// namespace.
type sysHandle = netlink.Handle

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
	return &Handle{sys: nh, ns: ns}, nil
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
