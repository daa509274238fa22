// Package netconf configures network links, addresses, routes, bridges and
// policy routing rules through rtnetlink, in the current or in another network
// namespace, the way ip link, ip addr, ip route and ip rule do.
//
// # Systems
//
// The API is the same everywhere; what a system lacks fails with an error
// matching [ErrNotSupported]. On Linux everything is there, through
// rtnetlink. On macOS and FreeBSD there are no namespaces (Open takes ""
// only); addresses, flags, MTU and hardware addresses go through the
// interface ioctls (SIOCAIFADDR, SIOCAIFADDR_IN6, SIOCSIFFLAGS, SIOCSIFMTU,
// SIOCSIFLLADDR, SIOCIFDESTROY), routes through the routing socket, in the
// main table only and without metrics. On Windows (the IP Helper API,
// through winipcfg) there are addresses, MTU and routes on a link; SetUp
// only checks that the link exists. Policy rules, bridges and veth pairs
// are Linux's. [Handle.DefaultGateway] reads the default route on all of
// them.
//
// # Namespaces
//
// A [Handle] is bound to one network namespace when it is opened, and
// [Open] and [Handle.AddVeth] name a namespace in one of three ways:
//
//   - "" is the namespace of the calling thread, normally the program's own.
//   - A reference containing "/" is the path of a namespace file, for example
//     /proc/1234/ns/net for the namespace of process 1234.
//   - Anything else is the name of a namespace made by `ip netns add NAME`
//     (or by anything else that bind-mounts one there): the file
//     /var/run/netns/NAME, the namespace `ip netns exec NAME` enters.
//
// Open creates a netlink socket inside that namespace and every request goes
// through that socket. The calling goroutine never enters the namespace, so a
// program can configure any number of namespaces from one goroutine while its
// own threads stay where they are.
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
// Errors name the package, the operation with its arguments, and the
// namespace ("current netns" for "", else "netns " and the reference as
// given), and wrap the underlying cause:
//
//	netconf: set MTU 1420 on wg0 in netns blue: link not found
//	netconf: add address 192.0.2.1/24 to wg0 in current netns: operation not permitted
//	netconf: open netns blue: open network namespace blue: no such file or directory
//
// Test them with errors.Is rather than by their text:
//
//   - A link that does not exist matches [ErrLinkNotFound], except in
//     [Handle.DelLink], for which an absent link is success.
//   - A link that is not a bridge where one is needed matches [ErrNotBridge].
//   - Any call on a closed Handle matches [ErrClosed].
//   - A namespace that does not exist matches fs.ErrNotExist.
//   - Kernel errors wrap the syscall.Errno the kernel returned, so for
//     example errors.Is(err, fs.ErrExist) is EEXIST and errors.Is(err,
//     fs.ErrPermission) is EPERM (not root, or without CAP_NET_ADMIN in the
//     namespace's user namespace).
package netconf
