package tun

import (
	"errors"
	"runtime"

	"golang.org/x/sys/unix"
)

const (
	// utunControl is the kernel control that makes utun interfaces.
	utunControl = "com.apple.net.utun_control"
	// sysprotoControl is SYSPROTO_CONTROL, the protocol of kernel control
	// sockets and the level of their options.
	sysprotoControl = 2
	// utunOptIfname is UTUN_OPT_IFNAME, the option that holds a utun
	// socket's interface name.
	utunOptIfname = 2
)

// tapOnDarwin is what a TAP device on macOS would take.
const tapOnDarwin = "TAP devices (macOS has only utun, a TUN device; for Ethernet frames use a feth(4) " +
	"pair, as ZeroTier does, or a third-party tap kext)"

// ProbeFeatures reports what macOS offers: TUN devices (utun) without a
// packet information header, and nothing else. It looks the utun kernel
// control up, which needs no privilege, and fails if it is missing.
func ProbeFeatures() (Features, error) {
	fd, _, err := utunControlSocket()
	if err != nil {
		return Features{}, err
	}
	unix.Close(fd)
	return Features{TUN: true, NoPI: true}, nil
}

// Open creates a utun device. Config.Name is "" or "utun" for the first free
// utunN (as is "utun%d"), or "utunN" for that unit, which fails with an error
// wrapping unix.EBUSY when another process holds it: macOS names utun
// interfaces itself, and a utun is never shared, so Config.Exclusive always
// holds. Config.Mode must be ModeTUN: macOS has no TAP devices (the
// *NotSupportedError says what to use instead). Config.MTU, if positive, is
// set after opening; Config.NoOffload is accepted and ignored. Multi-queue,
// packet information, persistence, owner and group, carrier off, the send
// buffer and network namespaces are Linux's: asking for one is a
// *NotSupportedError, before anything is created. Opening needs root.
//
// The device disappears when it is closed.
func Open(cfg Config) (*Device, error) {
	if err := checkBSD(&cfg); err != nil {
		return nil, err
	}
	if cfg.Mode == ModeTAP {
		return nil, &NotSupportedError{Feature: tapOnDarwin, OS: runtime.GOOS}
	}
	unit, err := utunUnit(cfg.Name)
	if err != nil {
		return nil, err
	}
	fd, id, err := utunControlSocket()
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrCtl{ID: id, Unit: unit}); err != nil {
		unix.Close(fd)
		e := opErr("create", cfg.Name, err).(*OpError)
		if errors.Is(err, unix.EBUSY) {
			e.Hint = "another process holds this utun unit; pick another, or \"utun\" for the first free one"
		}
		return nil, e
	}
	dev, err := fromUtun(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if cfg.MTU > 0 {
		if err := dev.SetMTU(cfg.MTU); err != nil {
			dev.Close()
			return nil, err
		}
	}
	return dev, nil
}

// Attach is a *NotSupportedError on macOS: a utun interface belongs to the
// socket that made it and lasts as long as that socket. To use a utun made by
// another process (a Network Extension, launchd), have its descriptor handed
// over and wrap it with FromFD.
func Attach(cfg Config) (*Device, error) {
	return nil, &NotSupportedError{
		Feature: "attaching to an existing device (a utun belongs to the socket that made it; wrap a descriptor handed over by its owner with FromFD)",
		OS:      runtime.GOOS,
	}
}

// utunControlSocket opens a kernel control socket (close-on-exec) and looks
// the utun control up, returning the socket and the control's ID.
func utunControlSocket() (int, uint32, error) {
	fd, err := socketCloexec(unix.AF_SYSTEM, unix.SOCK_DGRAM, sysprotoControl)
	if err != nil {
		return -1, 0, &OpError{Op: "open a kernel control socket", Err: err}
	}
	info := &unix.CtlInfo{}
	copy(info.Name[:], utunControl)
	if err := unix.IoctlCtlInfo(fd, info); err != nil {
		unix.Close(fd)
		return -1, 0, &OpError{Op: "look up the kernel control " + utunControl, Err: err,
			Hint: "this macOS has no utun driver"}
	}
	return fd, info.Id, nil
}

// fromUtun wraps a connected utun control socket; on error fd is left open.
func fromUtun(fd int) (*Device, error) {
	name, err := unix.GetsockoptString(fd, sysprotoControl, utunOptIfname)
	if err != nil {
		return nil, &OpError{Op: "wrap descriptor", Err: err, Hint: "the descriptor is not a connected utun socket"}
	}
	return newDevice(fd, "utun", name, ModeTUN, nil)
}

// FromFD wraps an open utun descriptor (a connected kernel control socket),
// typically one handed over by a Network Extension or by launchd. On success
// the Device owns fd and closes it on Close; on error fd is left open, the
// caller's. The name is read from the socket (UTUN_OPT_IFNAME).
func FromFD(fd int) (*Device, error) { return fromUtun(fd) }
