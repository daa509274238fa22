// Package inns runs code inside a Linux network namespace without moving the
// calling goroutine there.
//
// A network namespace is a property of an OS thread. Go moves goroutines
// between threads freely, so code that enters a namespace must lock its thread
// and must never hand a thread left in a foreign namespace back to the
// scheduler. Do runs the function on a fresh goroutine that locks its thread,
// enters the namespace, runs the function, and returns to the original
// namespace; if it cannot return, the thread stays locked and is destroyed when
// the goroutine exits.
package inns

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Path resolves a namespace reference to a file path. An empty string means
// the caller's namespace (and returns ""). A reference containing a slash is a
// path (for example /proc/1234/ns/net); anything else is the name of a
// namespace made by `ip netns add`, under /var/run/netns.
func Path(ns string) string {
	if ns == "" || strings.Contains(ns, "/") {
		return ns
	}
	return filepath.Join("/var/run/netns", ns)
}

// Open returns a handle on the namespace ns (see Path). The caller closes it.
// An empty ns opens the calling thread's current namespace.
func Open(ns string) (netns.NsHandle, error) {
	if ns == "" {
		h, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("open current network namespace: %w", err)
		}
		return h, nil
	}
	h, err := netns.GetFromPath(Path(ns))
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	return h, nil
}

// Do runs fn with its OS thread inside the namespace ns (see Path) and returns
// fn's error. With an empty ns, fn runs directly on the calling goroutine.
// File descriptors and sockets that fn opens keep the namespace they were
// made in after Do returns; that is the point of Do.
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	target, err := Open(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do for an already open namespace handle. When the target is
// the namespace the thread is in already, fn runs there without entering
// it: setns(2) takes CAP_SYS_ADMIN even then, which a process that keeps
// only CAP_NET_ADMIN (tapwire up once it dropped its privileges, a
// systemd unit's bounding set) does not have.
func DoHandle(target netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if orig.Equal(target) {
			err := fn()
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and dies with this goroutine.
		errc <- ferr
	}()
	return <-errc
}

// Create makes a new named network namespace, like `ip netns add NAME`: it is
// bind-mounted under /var/run/netns so that Path, Do and `ip netns exec` find
// it. The calling goroutine's namespace is unchanged. Remove it with Delete.
func Create(name string) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("create network namespace %q: bad name", name)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer orig.Close()
		// NewNamed moves this thread into the new namespace.
		ns, err := netns.NewNamed(name)
		if err == nil {
			ns.Close()
		}
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			err = fmt.Errorf("create network namespace %s: %w", name, err)
		}
		errc <- err
	}()
	return <-errc
}

// Delete removes a named network namespace made by Create or `ip netns add`.
// The namespace itself lives on while a process or descriptor still holds it.
func Delete(name string) error {
	if err := netns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete network namespace %s: %w", name, err)
	}
	return nil
}
