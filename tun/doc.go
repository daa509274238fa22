// Package tun opens TUN and TAP devices and moves packets through them, on
// Linux, macOS, FreeBSD and Windows (see "Other systems" for what differs
// there).
//
// A TUN device carries IP packets (layer 3); a TAP device carries Ethernet
// frames (layer 2). Either way, a user-space program holding the device's file
// descriptor becomes a network interface: what the kernel routes into the
// interface is read from the descriptor, and what is written to the
// descriptor the kernel receives as if it had arrived on the wire.
//
// # Opening a device
//
// Open creates a device, or attaches to an existing one of the same name
// (the kernel's own semantics), according to a Config:
//
//	dev, err := tun.Open(tun.Config{Name: "tun%d", MTU: 1420})
//	if err != nil {
//		return err // for example: needs CAP_NET_ADMIN
//	}
//	defer dev.Close()
//	fmt.Println("opened", dev.Name()) // tun0, tun1, ...
//
// A name containing %d is a pattern the kernel fills in with the first free
// number. Config.Exclusive refuses to attach to an existing device;
// Attach refuses to create one. FromFile wraps a descriptor inherited from
// another process (a parent, systemd, Android's VpnService). Config.NetNS makes
// the device inside another network namespace without moving the caller.
//
// The options mirror the kernel's: packet information header
// (Config.PacketInfo, off by default), persistence, owner and group (which let
// an unprivileged user attach later), carrier state, the MAC address of a TAP
// device, the socket send buffer, the MTU and multiple queues. What the running
// kernel does not support is reported as a *NotSupportedError before anything
// is created; ProbeFeatures reports what it supports.
//
// # Reading and writing
//
// Every queue's descriptor is non-blocking and registered with the Go runtime
// poller: a Read waiting for a packet parks its goroutine, not an OS thread.
// Read and Write move one packet (or frame) per call; ReadBatch and WriteBatch
// move many, into and out of caller-owned buffers:
//
//	bufs := make([][]byte, dev.BatchSize())
//	for i := range bufs {
//		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
//	}
//	sizes := make([]int, len(bufs))
//	n, err := dev.ReadBatch(bufs, sizes, tun.Headroom)
//	// packet i is bufs[i][tun.Headroom : tun.Headroom+sizes[i]]
//
// The offset argument reserves headroom in front of each packet, so a caller
// can prepend its own header (a tunnel header, say) without copying, and so
// the device can put its own header (a virtio-net header, once offloads are
// enabled) there. Offsets of at least Headroom always work.
//
// # Buffers and ownership
//
// Buffers passed to Read, ReadBatch, Write and WriteBatch belong to the caller
// before and after the call; the package keeps no reference to them. A read
// packet longer than its buffer is truncated by the kernel, so buffers should
// hold at least the MTU plus the link header (14 bytes for TAP, 4 with packet
// information).
//
// # Concurrency
//
// A Device has one or more Queues; each queue is an independent descriptor
// that the kernel feeds with a share of the device's flows. On one queue, at
// most one goroutine reads and at most one writes at a time, but the reader
// and the writer may run concurrently (calls in the same direction are
// serialised by a per-queue lock, never a global one). Different queues are
// fully independent, so the usual design is one goroutine (or pair) per queue.
// Methods of Device other than the I/O shortcuts are safe for concurrent use.
//
// # Deadlines and closing
//
// SetReadDeadline and SetWriteDeadline work as on net.Conn: an expired
// deadline makes the blocked call return an *OpError for which
// errors.Is(err, os.ErrDeadlineExceeded) is true; OpError is a net.Error,
// and its Timeout method is true exactly for such errors. Close, from any goroutine,
// promptly unblocks every Read and Write parked on the device, which return
// an error for which errors.Is(err, ErrClosed) is true. When the interface is
// deleted underneath (ip link del), reads fail with ErrDeviceRemoved.
//
// # Errors
//
// Kernel errors come back wrapped with what was being done and, where the
// cause is common, a hint a person can act on: EPERM names CAP_NET_ADMIN and
// the device's owner, ENOENT on /dev/net/tun says the device node is missing
// and how to make it, EBUSY says the name is taken. errors.Is still sees the
// underlying errno (for example unix.EPERM or os.ErrPermission).
//
// # Other systems
//
// On macOS and FreeBSD the same Device API works, with one descriptor per
// device and none of Linux's extras: multi-queue, the packet information
// header, persistence, owner and group, carrier control, the send buffer,
// network namespaces and offloads. Asking Open for one of them returns a
// *NotSupportedError naming the system (its OS field), before anything is
// created; Config.NoOffload is accepted and ignored. Packets are the same as
// on Linux: plain IP packets on TUN, Ethernet frames on TAP. The 4-byte
// address-family header these kernels put in front of TUN packets is
// stripped on read and added on write, in the 4 bytes before the offset when
// the caller leaves that much headroom (Headroom does), through a copy
// otherwise.
//
// macOS has TUN devices only: utun interfaces, made through a kernel control
// socket. Their names are utunN, chosen by the kernel: Config.Name "" or
// "utun" takes the first free one, "utunN" asks for that one. A utun belongs
// to the socket that made it, so Attach is not supported; FromFD wraps a utun
// descriptor handed over by its owner (a Network Extension, launchd). macOS
// has no TAP device: Ethernet frames need a feth pair (two fake Ethernet
// interfaces wired together, one read through BPF and written through an
// AF_NDRV socket, as ZeroTier does) or a third-party tap kext (tuntaposx),
// which this package does not drive; Open with ModeTAP returns a
// *NotSupportedError that says so.
//
// FreeBSD has both: tun(4) and tap(4) interfaces, made by opening the clone
// devices /dev/tun and /dev/tap (the if_tuntap driver). The kernel names them
// tunN and tapN; any other Config.Name (or a pattern with %d) is given to the
// new interface by renaming it. A TUN device carries IPv4 and IPv6 (the
// address-family header is on), and one Open makes is in broadcast mode, so
// it takes a subnet address such as 10.0.0.1/24. Close destroys an interface
// Open made, as it would vanish on Linux; Attach opens an existing one
// through its device node and leaves it in place, in the mode it has.
//
// On Windows, TUN devices are Wintun adapters (wintun.dll from
// https://www.wintun.net next to the executable; Administrator) and TAP
// devices are adapters of OpenVPN's TAP-Windows6 driver (tap0901), chosen
// by connection name, as water does. A Wintun adapter exists while its
// Device is open; names take one %d (default "tapwire%d"). The same
// Config fields as on macOS and FreeBSD return a *NotSupportedError with OS
// "windows". A blocked Read, ReadBatch or TAP Write waits on the driver's
// event together with the device's close and deadline events, so Close and
// deadlines wake it at once; the goroutine holds an OS thread while it
// waits. The MTU is the interface's IP MTU, set for IPv4 and IPv6.
package tun
