package tun

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// Mode says whether a device carries IP packets (TUN) or Ethernet frames (TAP).
type Mode int

const (
	// ModeTUN is a layer-3 device: each read or write is one IP packet.
	ModeTUN Mode = iota
	// ModeTAP is a layer-2 device: each read or write is one Ethernet frame.
	ModeTAP
)

// String returns "tun" or "tap".
func (m Mode) String() string {
	switch m {
	case ModeTUN:
		return "tun"
	case ModeTAP:
		return "tap"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "tun" or "tap".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "tun":
		return ModeTUN, nil
	case "tap":
		return ModeTAP, nil
	}
	return 0, fmt.Errorf("unknown mode %q: want tun or tap", s)
}

// Headroom is an offset for ReadBatch and WriteBatch that every device
// accepts, whatever headers it may need to place in front of a packet. It
// leaves room for a virtio-net header and still keeps a packet's IP header
// 16-byte aligned in a buffer that starts aligned.
const Headroom = 32

// MaxPacket is the largest packet (or frame) a device hands over in one
// read when offloads are on: a 64 KiB super-packet behind an Ethernet header
// with a VLAN tag. Buffers of at least Headroom+MaxPacket bytes let ReadBatch
// read into them directly and WriteBatch coalesce into them.
const MaxPacket = 65535 + 18

// DefaultBatchSize is the number of packets ReadBatch and WriteBatch are
// sized for when the device has no better figure.
const DefaultBatchSize = 64

// MaxQueues is the kernel's limit on queues per multi-queue device.
const MaxQueues = 256

// Config describes the device to open. The zero value opens a TUN device
// named by the kernel (tun0, tun1, ...) with one queue and no packet
// information header, in the caller's network namespace.
type Config struct {
	// Name is the interface name, or a pattern such as "tun%d" that the
	// kernel completes with the first free number. Empty means "tun%d" or
	// "tap%d" according to Mode. At most 15 bytes.
	Name string

	// Mode selects TUN (IP packets, the default) or TAP (Ethernet frames).
	Mode Mode

	// Queues is the number of queues (descriptors) to open: 0 or 1 opens
	// one; more than 1 makes a multi-queue device. See also MultiQueue.
	Queues int

	// MultiQueue makes the device multi-queue even with one queue, so that
	// queues can be added later with Device.AddQueue. Implied by Queues > 1.
	MultiQueue bool

	// PacketInfo keeps the kernel's 4-byte packet information header
	// (struct tun_pi: 2 bytes of flags, 2 bytes of EtherType) in front of
	// every packet read and written. Off by default, as almost every program
	// wants.
	PacketInfo bool

	// Persist keeps the device after the last descriptor closes, so that it
	// can be attached to again later (by this program or another). Remove it
	// with Device.SetPersist(false) before closing, or `ip link del`.
	Persist bool

	// Owner, if set, is the user ID allowed to attach to the device without
	// CAP_NET_ADMIN. Use ID to set it.
	Owner *uint32

	// Group, if set, is the group ID whose members may attach to the device
	// without CAP_NET_ADMIN. Use ID to set it.
	Group *uint32

	// Exclusive fails with an error wrapping unix.EBUSY if an interface of
	// this name already exists, instead of attaching to it (IFF_TUN_EXCL).
	Exclusive bool

	// CarrierOff creates the device with its carrier down (IFF_NO_CARRIER):
	// the kernel sees the link as down until Device.SetCarrier(true).
	CarrierOff bool

	// MAC is the hardware address of a TAP device. Empty keeps the kernel's
	// random address. Ignored (an error) for TUN.
	MAC net.HardwareAddr

	// SendBuffer, if positive, sets the socket send buffer of the device's
	// queues (TUNSETSNDBUF): how many bytes of packets written by user space
	// may be in flight in the kernel. The kernel default is effectively
	// unlimited.
	SendBuffer int

	// MTU, if positive, sets the interface MTU after opening.
	MTU int

	// NoOffload turns off the kernel's checksum and segmentation offloads
	// (the virtio-net header), which are otherwise used where the kernel has
	// them. The environment variable TAPWIRE_OFFLOAD=off does the same for
	// every device a program opens. Offloads never change what Read and
	// ReadBatch return (plain packets, at most MTU-sized) or what Write and
	// WriteBatch take; they make batches cheaper.
	NoOffload bool

	// NetNS is the network namespace to create the device in: empty for the
	// caller's own, a name made by `ip netns add`, or a path such as
	// /proc/PID/ns/net. The calling goroutine never moves.
	NetNS string
}

// ID returns a pointer to v, for Config.Owner and Config.Group.
func ID(v uint32) *uint32 { return &v }

// Features is what the running kernel's TUN/TAP driver supports, as reported
// by TUNGETFEATURES.
type Features struct {
	TUN        bool // layer-3 devices
	TAP        bool // layer-2 devices
	NoPI       bool // packets without the packet information header
	OneQueue   bool // obsolete single-queue flag, accepted and ignored
	VnetHdr    bool // virtio-net header for checksum and segmentation offloads
	MultiQueue bool // several queues per device
	NoCarrier  bool // create with carrier down; TUNSETCARRIER
	NAPI       bool // IFF_NAPI receive path
	NAPIFrags  bool // IFF_NAPI_FRAGS
	// Raw is the flag mask the kernel reported.
	Raw uint32
}

var (
	// ErrClosed is returned by I/O on a closed device or queue, including
	// calls that were blocked when Close was called. It is os.ErrClosed.
	ErrClosed = os.ErrClosed

	// ErrDeviceRemoved is returned by I/O on a queue whose interface has been
	// deleted (for example with ip link del) while it was open.
	ErrDeviceRemoved = errors.New("tun: interface was removed")

	// ErrDetached is returned by I/O on a queue detached with Queue.Detach.
	ErrDetached = errors.New("tun: queue is detached")

	// ErrNotSupported is matched (errors.Is) by every *NotSupportedError.
	ErrNotSupported = errors.New("not supported by this kernel")
)

// NotSupportedError says that the running kernel lacks a feature a Config
// asked for, or (with OS set) that the operating system has no such thing:
// multi-queue, offloads, persistence and the other Linux features on macOS,
// Windows and FreeBSD.
type NotSupportedError struct {
	Feature string // what was asked for, e.g. "multi-queue"
	Flag    uint32 // the TUNSETIFF flag the kernel lacks, or 0
	OS      string // the system that lacks it (runtime.GOOS), or "" for the running Linux kernel
}

func (e *NotSupportedError) Error() string {
	if e.OS != "" {
		return fmt.Sprintf("tun: %s is not supported on %s", e.Feature, e.OS)
	}
	return fmt.Sprintf("tun: %s is not supported by this kernel", e.Feature)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// OpError is a failed operation on a device, with a hint for a person when
// the cause is a common one. It unwraps to the underlying error (usually a
// unix.Errno).
type OpError struct {
	Op   string // what was being done, e.g. "open", "set owner"
	Name string // the device name or pattern, when known
	Err  error  // the underlying error
	Hint string // what to do about it, or ""
}

func (e *OpError) Error() string {
	s := "tun: " + e.Op
	if e.Name != "" {
		s += " " + e.Name
	}
	s += ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// OpError is a net.Error, so code written for net.Conn's deadlines handles a
// device's the same way.
var _ net.Error = (*OpError)(nil)

// Timeout reports whether the operation failed because a deadline set with
// SetDeadline, SetReadDeadline or SetWriteDeadline expired: whether Err
// matches os.ErrDeadlineExceeded (the runtime poller's timeout). Any other
// failure, ETIMEDOUT included, is not a timeout.
func (e *OpError) Timeout() bool { return errors.Is(e.Err, os.ErrDeadlineExceeded) }

// Temporary reports whether retrying the same call may succeed without
// anything else changing. It is true exactly when Timeout is (as for net's
// own deadline errors): an expired deadline is the one transient failure a
// device reports, since its queues retry EAGAIN and EINTR themselves. Closed
// and removed devices, refused packets and kernel errors are not temporary.
//
// Deprecated: as with net.Error, "temporary" is not well defined; test
// Timeout, or the cause with errors.Is.
func (e *OpError) Temporary() bool { return e.Timeout() }

// PacketError reports packets of a batch that the system refused one by one
// and that were dropped; the rest of the batch was written.
type PacketError struct {
	Index   int   // position of the first refused packet in the batch
	Dropped int   // how many packets were refused
	Err     error // the kernel's error for the first one
}

func (e *PacketError) Error() string {
	return "tun: write batch: " + strconv.Itoa(e.Dropped) + " packet(s) refused, the first (index " +
		strconv.Itoa(e.Index) + "): " + e.Err.Error()
}

// Unwrap returns the kernel's error.
func (e *PacketError) Unwrap() error { return e.Err }
