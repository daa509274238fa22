// Package netconf configures network links, addresses, routes and bridges
// through rtnetlink, in the current or in another network namespace.
//
// # Namespaces
//
// A [Handle] is bound to one network namespace when it is opened: [Open]
// creates a netlink socket inside that namespace and every request goes
// through that socket. The calling goroutine never enters the namespace, so a
// program can configure any number of namespaces from one goroutine while its
// own threads stay where they are. The namespace is named as for
// internal/inns: "" is the namespace of the calling thread, a reference
// containing "/" is a path (for example /proc/1234/ns/net), and anything else
// is a name made by `ip netns add`, under /var/run/netns.
//
// # Idempotence
//
// Every method describes a desired state and succeeds when that state already
// holds, so calling it twice is the same as calling it once:
//
//   - Set* methods and [Handle.AddBridge] leave a link that already has the
//     wanted setting alone.
//   - Add* methods succeed when exactly the wanted object is already present,
//     and fail with an error wrapping EEXIST (errors.Is(err, fs.ErrExist))
//     when a different object occupies its place: an IPv6 address with
//     another prefix length, or a route to the same destination, table and
//     metric with another gateway or link. They never replace what is there.
//     AddBridge fails with [ErrNotBridge] when the name belongs to another
//     kind of link.
//   - Del* and [Handle.DetachFromBridge] succeed when the object is already
//     absent.
//
// Idempotence is about the kernel state, not about atomicity: a Handle
// serializes its own calls, but another process may change the same
// namespace between the check and the change that some methods make.
//
// # Errors
//
// Errors name the operation, the link and the namespace, and wrap the
// underlying cause. A link that does not exist gives an error matching
// [ErrLinkNotFound] with errors.Is, except in [Handle.DelLink], for which an
// absent link is success. Kernel errors wrap the syscall.Errno the kernel
// returned.
package netconf
