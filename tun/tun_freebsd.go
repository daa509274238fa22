package tun

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FreeBSD's tun(4)/tap(4) ioctls (net/if_tun.h, net/if_tap.h; the tap ones
// share the tun numbers).
const (
	tunSIFHEAD = 0x80047460 // _IOW('t', 96, int): the address-family header on/off
	tunSIFMODE = 0x8004745e // _IOW('t', 94, int): IFF_POINTOPOINT or IFF_BROADCAST
	tunGIFNAME = 0x4020745d // _IOR('t', 93, struct ifreq): the interface name (TAPGIFNAME too)
	tunSIFPID  = 0x2000745f // _IO('t', 95): make this process the device's owner

	siocGIFINFOIN6      = 0xc048696c // _IOWR('i', 108, struct in6_ndireq)
	siocSIFINFOIN6      = 0xc048696d // _IOWR('i', 109, struct in6_ndireq)
	nd6IffAutoLinklocal = 0x20
	nd6IffNoDAD         = 0x100
)

// in6Ndireq is struct in6_ndireq: a name and struct nd_ifinfo (72 bytes in
// all, as the ioctl numbers say).
type in6Ndireq struct {
	name          [unix.IFNAMSIZ]byte
	linkmtu       uint32
	maxmtu        uint32
	basereachable uint32
	reachable     uint32
	retrans       uint32
	flags         uint32
	recalctm      int32
	chlim         uint8
	initialized   uint8
	randomseed0   [8]byte
	randomseed1   [8]byte
	randomid      [8]byte
	_             [2]byte
}

// cloneNode returns the device node that makes a new device of mode.
func cloneNode(mode Mode) string {
	if mode == ModeTAP {
		return "/dev/tap"
	}
	return "/dev/tun"
}

// ProbeFeatures reports what FreeBSD offers: TUN and TAP devices (when the
// if_tuntap driver is in the kernel) without a packet information header,
// and nothing else. It reads sysctls and needs no privilege; it does not
// open the clone devices, which would create an interface.
func ProbeFeatures() (Features, error) {
	_, tunErr := unix.SysctlUint32("net.link.tun.devfs_cloning")
	_, tapErr := unix.SysctlUint32("net.link.tap.devfs_cloning")
	f := Features{TUN: tunErr == nil, TAP: tapErr == nil, NoPI: true}
	if !f.TUN && !f.TAP {
		return f, &OpError{Op: "probe features", Err: tunErr, Hint: "the kernel has no tun/tap driver: load it with `kldload if_tuntap`"}
	}
	return f, nil
}

// Open creates a tun(4) or tap(4) interface by opening the clone device
// /dev/tun or /dev/tap. Config.Name "" keeps the kernel's name (tunN, tapN,
// as do "tun%d" and "tap%d"); any other name is given to the new interface
// with SIOCSIFNAME, and a name with one %d gets the first free number. If an
// interface of that name exists already, Open attaches to it as Attach does,
// unless Config.Exclusive is set: then it fails with an error wrapping
// unix.EEXIST. Config.MTU, if positive, and Config.MAC (TAP only) are set
// after opening; Config.NoOffload is accepted and ignored. Multi-queue,
// packet information, persistence, owner and group, carrier off, the send
// buffer and network namespaces are Linux's: asking for one is a
// *NotSupportedError, before anything is created. Opening needs root.
//
// A TUN device is put in the mode wireguard-go uses: the address-family
// header on (so it carries IPv6 as well as IPv4; this package strips and adds
// it), broadcast instead of point-to-point (so it takes a subnet address such
// as 10.0.0.1/24 without a destination), and without an automatic IPv6
// link-local address or duplicate address detection. Close destroys an
// interface Open created (SIOCIFDESTROY), as it would vanish on Linux.
func Open(cfg Config) (*Device, error) {
	if err := checkBSD(&cfg); err != nil {
		return nil, err
	}
	pattern, keep, err := bsdNamePattern(cfg.Name, cfg.Mode)
	if err != nil {
		return nil, err
	}
	if !keep && !hasPercentD(pattern) {
		if _, err := net.InterfaceByName(pattern); err == nil {
			if cfg.Exclusive {
				return nil, opErr("create", pattern, unix.EEXIST)
			}
			return Attach(cfg)
		}
	}
	node := cloneNode(cfg.Mode)
	fd, err := openNode(node, cfg.Name)
	if err != nil {
		return nil, err
	}
	name, err := tunName(fd)
	if err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "get the name of the interface made by", Name: node, Err: err}
	}
	fail := func(err error) (*Device, error) {
		unix.Close(fd)
		_ = destroyInterface(name)
		return nil, err
	}
	if cfg.Mode == ModeTUN {
		if err := setupTUN(fd, name); err != nil {
			return fail(err)
		}
	}
	if !keep {
		// On failure name must stay the kernel's, for fail to destroy.
		newName, err := renameInterface(name, pattern)
		if err != nil {
			return fail(err)
		}
		name = newName
	}
	destroy := func() error { return destroyInterface(name) }
	dev, err := newDevice(fd, node, name, cfg.Mode, destroy)
	if err != nil {
		return fail(err)
	}
	if err := applyFreeBSD(dev, &cfg); err != nil {
		dev.Close()
		return nil, err
	}
	return dev, nil
}

// Attach opens the existing tun or tap interface cfg.Name through its device
// node /dev/NAME, for example one made with `ifconfig tun0 create` (FreeBSD
// 13 and later also give a renamed interface a node of its new name). It
// never creates one. The mode is taken from the interface (TAP if it has a
// hardware address); cfg.Mode is ignored. A TUN device gets the
// address-family header, as in Open, but keeps its point-to-point or
// broadcast mode and its IPv6 settings: the kernel refuses to change the
// mode of an interface that is up, and the interface is its creator's.
// Closing the device leaves the interface in place. The other options apply
// as in Open. A device another process has open fails with an error
// wrapping unix.EBUSY.
func Attach(cfg Config) (*Device, error) {
	if cfg.Name == "" {
		return nil, &OpError{Op: "attach", Err: errors.New("a device name is needed")}
	}
	if err := checkBSD(&cfg); err != nil {
		return nil, err
	}
	if hasPercentD(cfg.Name) {
		return nil, &OpError{Op: "attach", Name: cfg.Name, Err: unix.EINVAL, Hint: "attach takes an interface name, not a pattern"}
	}
	// Opening /dev/tunN would create tunN: look first.
	ifi, err := net.InterfaceByName(cfg.Name)
	if err != nil {
		return nil, &OpError{Op: "attach", Name: cfg.Name, Err: err, Hint: "no interface of that name exists"}
	}
	cfg.Mode = ModeTUN
	if len(ifi.HardwareAddr) == 6 {
		cfg.Mode = ModeTAP
	}
	if len(cfg.MAC) != 0 && cfg.Mode == ModeTUN {
		return nil, &NotSupportedError{Feature: "a MAC address on a TUN device (only TAP devices have one)", OS: runtime.GOOS}
	}
	node := "/dev/" + cfg.Name
	fd, err := openNode(node, cfg.Name)
	if err != nil {
		if e := (*OpError)(nil); errors.As(err, &e) && errors.Is(err, unix.ENOENT) {
			e.Hint = "the interface has no device node of its name: it is not a tun or tap interface (or, before FreeBSD 13, it was renamed)"
		}
		return nil, err
	}
	name, err := tunName(fd)
	if err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "attach", Name: cfg.Name, Err: err, Hint: "the device is not a tun or tap device"}
	}
	if cfg.Mode == ModeTUN {
		if err := setIfHead(fd, name); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	dev, err := newDevice(fd, node, name, cfg.Mode, nil)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := applyFreeBSD(dev, &cfg); err != nil {
		dev.Close()
		return nil, err
	}
	return dev, nil
}

// applyFreeBSD sets the options that apply to an open device.
func applyFreeBSD(dev *Device, cfg *Config) error {
	if len(cfg.MAC) != 0 {
		if err := dev.SetHardwareAddr(cfg.MAC); err != nil {
			return err
		}
	}
	if cfg.MTU > 0 {
		if err := dev.SetMTU(cfg.MTU); err != nil {
			return err
		}
	}
	return nil
}

func hasPercentD(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] == 'd' {
			return true
		}
	}
	return false
}

// openNode opens a tun/tap device node, non-blocking and close-on-exec.
func openNode(node, name string) (int, error) {
	fd, err := unix.Open(node, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		e := &OpError{Op: "open " + node + " for", Name: name, Err: err}
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO):
			e.Hint = "no such device: load the driver with `kldload if_tuntap`, and for the clone devices allow cloning with `sysctl net.link.tun.devfs_cloning=1` (net.link.tap.devfs_cloning for tap)"
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			e.Hint = "needs root"
		case errors.Is(err, unix.EBUSY):
			e.Hint = "another process has the device open"
		}
		return -1, e
	}
	return fd, nil
}

// tunName returns the interface name of a tun or tap descriptor (TUNGIFNAME,
// which is also TAPGIFNAME).
func tunName(fd int) (string, error) {
	var ifr ifreq
	if err := ioctl(fd, tunGIFNAME, unsafe.Pointer(&ifr)); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(ifr.name[:]), nil
}

// setIfHead turns on a tun descriptor's address-family header (TUNSIFHEAD),
// which the kernel allows at any time.
func setIfHead(fd int, name string) error {
	one := int32(1)
	if err := ioctl(fd, tunSIFHEAD, unsafe.Pointer(&one)); err != nil {
		return &OpError{Op: "turn on the address-family header of", Name: name, Err: err}
	}
	return nil
}

// setupTUN puts the descriptor of a tun interface Open has just made, still
// down, in the mode Open documents. TUNSIFMODE fails with EBUSY once the
// interface is up (if_tuntap.c), so it is for new interfaces only.
func setupTUN(fd int, name string) error {
	if err := setIfHead(fd, name); err != nil {
		return err
	}
	mode := int32(unix.IFF_BROADCAST | unix.IFF_MULTICAST)
	if err := ioctl(fd, tunSIFMODE, unsafe.Pointer(&mode)); err != nil {
		return &OpError{Op: "set broadcast mode of", Name: name, Err: err}
	}
	if err := ioctl(fd, tunSIFPID, nil); err != nil {
		return &OpError{Op: "take ownership of", Name: name, Err: err}
	}
	// Without IPv6 in the kernel there are no ND flags to change.
	s, err := socketCloexec(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(s)
	var nd in6Ndireq
	copy(nd.name[:], name)
	if err := ioctl(s, siocGIFINFOIN6, unsafe.Pointer(&nd)); err != nil {
		return &OpError{Op: "get the IPv6 neighbour discovery flags of", Name: name, Err: err}
	}
	nd.flags = nd.flags&^nd6IffAutoLinklocal | nd6IffNoDAD
	if err := ioctl(s, siocSIFINFOIN6, unsafe.Pointer(&nd)); err != nil {
		return &OpError{Op: "set the IPv6 neighbour discovery flags of", Name: name, Err: err}
	}
	return nil
}

// renameInterface renames the interface name after pattern (SIOCSIFNAME),
// trying the numbers from 0 up for a %d, and returns the new name.
func renameInterface(name, pattern string) (string, error) {
	for n := 0; ; n++ {
		newName, ok := expandName(pattern, n)
		if !ok {
			return "", &OpError{Op: "rename " + name + " to", Name: pattern, Err: unix.ENAMETOOLONG,
				Hint: fmt.Sprintf("no free name of at most %d bytes", bsdIfNameMax)}
		}
		err := setIfName(name, newName)
		if err == nil {
			return newName, nil
		}
		if !errors.Is(err, unix.EEXIST) || !hasPercentD(pattern) {
			return "", opErr("rename "+name+" to", newName, err)
		}
	}
}

func setIfName(name, newName string) error {
	buf := new([unix.IFNAMSIZ]byte)
	copy(buf[:], newName)
	var ifr ifreqPtr
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(buf)
	return sockIoctl(unix.SIOCSIFNAME, unsafe.Pointer(&ifr))
}

// destroyInterface removes the interface name (SIOCIFDESTROY).
func destroyInterface(name string) error {
	var ifr ifreq
	if err := ifIoctl(name, unix.SIOCIFDESTROY, &ifr); err != nil {
		return &OpError{Op: "destroy", Name: name, Err: err}
	}
	return nil
}

// FromFD wraps an open tun or tap descriptor, typically one inherited from a
// parent process. On success the Device owns fd and closes it on Close
// (leaving the interface in place, as Attach does); on error fd is left
// open, the caller's. The name is read from the descriptor and the mode from
// the interface; a TUN descriptor is switched to the address-family header.
func FromFD(fd int) (*Device, error) {
	name, err := tunName(fd)
	if err != nil {
		return nil, &OpError{Op: "wrap descriptor", Err: err, Hint: "the descriptor is not a tun or tap device"}
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, &OpError{Op: "wrap descriptor", Name: name, Err: err}
	}
	mode := ModeTUN
	if len(ifi.HardwareAddr) == 6 {
		mode = ModeTAP
	}
	if mode == ModeTUN {
		if err := setIfHead(fd, name); err != nil {
			return nil, err
		}
	}
	return newDevice(fd, "/dev/"+name, name, mode, nil)
}
