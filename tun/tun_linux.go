package tun

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// cloneDevice is the device node every TUN/TAP descriptor is opened from.
const cloneDevice = "/dev/net/tun"

// Device is an open TUN or TAP device with one or more queues.
//
// The Read, Write, ReadBatch, WriteBatch and deadline methods of Device act on
// its first queue; a multi-queue program uses Queue(i) or Queues instead.
type Device struct {
	name  string
	mode  Mode
	flags uint16 // TUNSETIFF flags every queue is opened with
	netNS string // namespace the device was opened in, fallback for lookups
	first *Queue
	off   *offloadState // nil without a virtio-net header

	mu     sync.Mutex
	queues []*Queue // open queues, in opening order
	closed bool
}

// ProbeFeatures opens /dev/net/tun and asks the kernel which TUN/TAP features
// it supports. It needs no privilege beyond opening the device node.
func ProbeFeatures() (Features, error) {
	fd, err := openClone("")
	if err != nil {
		return Features{}, err
	}
	defer unix.Close(fd)
	return probe(fd)
}

func probe(fd int) (Features, error) {
	raw, err := unix.IoctlGetUint32(fd, unix.TUNGETFEATURES)
	if err != nil {
		return Features{}, &OpError{Op: "probe features", Err: err}
	}
	return Features{
		TUN:        raw&unix.IFF_TUN != 0,
		TAP:        raw&unix.IFF_TAP != 0,
		NoPI:       raw&unix.IFF_NO_PI != 0,
		OneQueue:   raw&unix.IFF_ONE_QUEUE != 0,
		VnetHdr:    raw&unix.IFF_VNET_HDR != 0,
		MultiQueue: raw&unix.IFF_MULTI_QUEUE != 0,
		NoCarrier:  raw&unix.IFF_NO_CARRIER != 0,
		NAPI:       raw&unix.IFF_NAPI != 0,
		NAPIFrags:  raw&unix.IFF_NAPI_FRAGS != 0,
		Raw:        raw,
	}, nil
}

// Open creates the device described by cfg, or attaches to an existing
// TUN/TAP interface of that name unless cfg.Exclusive is set. On error
// nothing is left behind: every descriptor opened is closed.
func Open(cfg Config) (*Device, error) { return open(cfg, false) }

// Attach attaches to an existing TUN or TAP interface named cfg.Name, for
// example a persistent device made earlier by Open with Persist, by
// `ip tuntap add` or by `tapwire device add`. It never creates one. The
// device's mode and multi-queue setting are taken from the interface itself;
// cfg.Mode and cfg.MultiQueue are ignored. The other options apply as in Open.
func Attach(cfg Config) (*Device, error) { return open(cfg, true) }

func open(cfg Config, attach bool) (*Device, error) {
	if err := cfg.check(attach); err != nil {
		return nil, err
	}
	var dev *Device
	err := inns.Do(cfg.NetNS, func() error {
		if attach {
			if err := cfg.fromExisting(); err != nil {
				return err
			}
		}
		var err error
		dev, err = openIn(cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return dev, nil
}

func (cfg *Config) check(attach bool) error {
	if cfg.Name == "" && attach {
		return &OpError{Op: "attach", Err: errors.New("a device name is needed")}
	}
	if len(cfg.Name) >= unix.IFNAMSIZ {
		return &OpError{Op: "open", Name: cfg.Name, Err: unix.EINVAL,
			Hint: fmt.Sprintf("interface names are at most %d bytes", unix.IFNAMSIZ-1)}
	}
	if strings.ContainsAny(cfg.Name, "/ \t\n") {
		return &OpError{Op: "open", Name: cfg.Name, Err: unix.EINVAL, Hint: "interface names cannot contain '/' or spaces"}
	}
	if cfg.Queues < 0 || cfg.Queues > MaxQueues {
		return &OpError{Op: "open", Name: cfg.Name, Err: unix.EINVAL,
			Hint: fmt.Sprintf("queues must be between 1 and %d", MaxQueues)}
	}
	if cfg.Mode != ModeTUN && cfg.Mode != ModeTAP {
		return &OpError{Op: "open", Name: cfg.Name, Err: fmt.Errorf("unknown mode %d", cfg.Mode)}
	}
	if len(cfg.MAC) != 0 && len(cfg.MAC) != 6 {
		return &OpError{Op: "open", Name: cfg.Name, Err: unix.EINVAL, Hint: "a MAC address has 6 bytes"}
	}
	return nil
}

// fromExisting fills in the mode and multi-queue flag of the existing
// interface cfg.Name in the current namespace.
func (cfg *Config) fromExisting() error {
	link, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		return &OpError{Op: "attach", Name: cfg.Name, Err: err, Hint: "no interface of that name exists in this network namespace"}
	}
	tt, ok := link.(*netlink.Tuntap)
	if !ok {
		return &OpError{Op: "attach", Name: cfg.Name, Err: unix.EINVAL,
			Hint: fmt.Sprintf("the interface is a %s device, not TUN/TAP", link.Type())}
	}
	cfg.Mode = ModeTUN
	if tt.Mode == netlink.TUNTAP_MODE_TAP {
		cfg.Mode = ModeTAP
	}
	cfg.MultiQueue = tt.Flags&netlink.TUNTAP_MULTI_QUEUE != 0
	return nil
}

func (cfg *Config) flags() uint16 {
	var f uint16 = unix.IFF_TUN
	if cfg.Mode == ModeTAP {
		f = unix.IFF_TAP
	}
	if !cfg.PacketInfo {
		f |= unix.IFF_NO_PI
	}
	if cfg.MultiQueue || cfg.Queues > 1 {
		f |= unix.IFF_MULTI_QUEUE
	}
	if cfg.Exclusive {
		f |= unix.IFF_TUN_EXCL
	}
	if cfg.CarrierOff {
		f |= unix.IFF_NO_CARRIER
	}
	return f
}

// unsupported returns an error for the first flag in want that the kernel
// did not report. IFF_TUN_EXCL is never reported (it is not a feature of the
// device but of the call) and every kernel since 2.6.27 takes it.
func unsupported(feat Features, want uint16) error {
	names := []struct {
		flag uint16
		name string
	}{
		{unix.IFF_TUN, "TUN mode"}, {unix.IFF_TAP, "TAP mode"},
		{unix.IFF_NO_PI, "omitting the packet information header"},
		{unix.IFF_MULTI_QUEUE, "multi-queue"}, {unix.IFF_NO_CARRIER, "creating with carrier off"},
		{unix.IFF_VNET_HDR, "the virtio-net header"},
	}
	for _, n := range names {
		if want&n.flag != 0 && feat.Raw&uint32(n.flag) == 0 {
			return &NotSupportedError{Feature: n.name, Flag: uint32(n.flag)}
		}
	}
	return nil
}

// openIn opens the device in the calling thread's namespace.
func openIn(cfg Config) (dev *Device, err error) {
	name := cfg.Name
	if name == "" {
		name = cfg.Mode.String() + "%d"
	}
	flags := cfg.flags()
	nq := max(cfg.Queues, 1)

	fd, err := openClone(name)
	if err != nil {
		return nil, err
	}
	fds := []int{fd}
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()
	feat, err := probe(fd)
	if err != nil {
		return nil, err
	}
	if err := unsupported(feat, flags); err != nil {
		return nil, err
	}
	if cfg.offloadWanted() && feat.VnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	if name, err = setIFF(fd, name, flags); err != nil {
		return nil, err
	}
	// The header flags are the device's, not the descriptor's: attaching to
	// a multi-queue device that other descriptors hold keeps theirs. Go by
	// what the kernel says.
	if actual, err := getFlags(fd); err == nil {
		flags = flags&^unix.IFF_VNET_HDR | actual&unix.IFF_VNET_HDR
	}
	var off *offloadState
	if flags&unix.IFF_VNET_HDR != 0 {
		if err := checkVnetHdrSize(fd, name); err != nil {
			return nil, err
		}
		off = &offloadState{Offloads: probeOffloads(fd)}
		if off.TSO || off.USO {
			limitGSOSegments(name)
		}
	} else {
		// A persistent device may still have offloads from an earlier
		// owner; without the header they would hand us partial checksums.
		_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0)
	}
	// Further queues attach to the device by its real name; the exclusive
	// flag would make them fail against the device just made.
	for i := 1; i < nq; i++ {
		fd, err := openClone(name)
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
		if _, err := setIFF(fd, name, flags&^unix.IFF_TUN_EXCL); err != nil {
			return nil, err
		}
	}
	if err := cfg.apply(fd, name); err != nil {
		return nil, err
	}

	dev = &Device{name: name, mode: cfg.Mode, flags: flags &^ unix.IFF_TUN_EXCL, netNS: cfg.NetNS, off: off}
	for i, fd := range fds {
		q, qerr := newQueue(dev, fd, i)
		if qerr != nil {
			// Queues already made own their descriptors.
			for _, q := range dev.queues {
				q.close()
			}
			fds = fds[i:]
			return nil, qerr
		}
		dev.queues = append(dev.queues, q)
	}
	dev.first = dev.queues[0]
	return dev, nil
}

// apply sets the per-device options on the first descriptor. Persistence
// comes last, so that a failure before it leaves no device behind.
func (cfg *Config) apply(fd int, name string) error {
	if cfg.Owner != nil {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOWNER, int(*cfg.Owner)); err != nil {
			return opErr("set owner", name, err)
		}
	}
	if cfg.Group != nil {
		if err := unix.IoctlSetInt(fd, unix.TUNSETGROUP, int(*cfg.Group)); err != nil {
			return opErr("set group", name, err)
		}
	}
	if cfg.SendBuffer > 0 {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETSNDBUF, cfg.SendBuffer); err != nil {
			return opErr("set send buffer", name, err)
		}
	}
	if len(cfg.MAC) > 0 {
		if cfg.Mode != ModeTAP {
			return &OpError{Op: "set MAC address", Name: name, Err: unix.EINVAL, Hint: "only TAP devices have a MAC address"}
		}
		if err := setHWAddr(fd, name, cfg.MAC); err != nil {
			return err
		}
	}
	if cfg.MTU > 0 {
		if err := setMTUHere(name, cfg.MTU); err != nil {
			return err
		}
	}
	if cfg.Persist {
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			return opErr("set persist", name, err)
		}
	}
	return nil
}

func openClone(name string) (int, error) {
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		e := &OpError{Op: "open " + cloneDevice + " for", Name: name, Err: err}
		switch {
		case errors.Is(err, unix.ENOENT):
			e.Hint = "the device node is missing: create it with `mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun` (in a container: run it with --device /dev/net/tun); `tapwire doctor` explains more"
		case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			e.Hint = "the kernel has no TUN/TAP driver: load it with `modprobe tun`"
		case errors.Is(err, unix.EACCES):
			e.Hint = "no permission to open /dev/net/tun: run as root or make the node readable and writable (chmod 0666 /dev/net/tun)"
		case errors.Is(err, unix.EPERM):
			e.Hint = "opening /dev/net/tun was refused: a container's device rules may forbid c 10:200 (docker: --device /dev/net/tun; LXC: lxc.cgroup2.devices.allow = c 10:200 rwm)"
		}
		return -1, e
	}
	return fd, nil
}

// getFlags reads the device's flags back (TUNGETIFF).
func getFlags(fd int) (uint16, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return 0, err
	}
	return ifr.Uint16(), nil
}

// checkVnetHdrSize refuses a virtio-net header of another size than the
// 10 bytes this package reads and writes (QEMU sets 12 on devices it owns).
func checkVnetHdrSize(fd int, name string) error {
	n, err := unix.IoctlGetInt(fd, unix.TUNGETVNETHDRSZ)
	if err == nil && n != vnetLen {
		return &NotSupportedError{Feature: fmt.Sprintf("a %d-byte virtio-net header (the device's owner set it; this package uses %d)", n, vnetLen)}
	}
	return nil
}

// limitGSOSegments caps how many segments the kernel packs into one
// super-packet (gso_max_segs) at what a read can split, so that flows with
// a small MSS are not dropped. It runs in the device's namespace.
func limitGSOSegments(name string) {
	if link, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkSetGSOMaxSegs(link, maxSegments)
	}
}

// setIFF issues TUNSETIFF and returns the device's real name.
func setIFF(fd int, name string, flags uint16) (string, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return "", &OpError{Op: "open", Name: name, Err: err}
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return "", opErr("create or attach", name, err)
	}
	return ifr.Name(), nil
}

// opErr wraps a kernel error with a hint for the usual causes.
func opErr(op, name string, err error) error {
	e := &OpError{Op: op, Name: name, Err: err}
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		e.Hint = "needs CAP_NET_ADMIN (run as root, or `setcap cap_net_admin+ep` the binary), or, to attach to an existing device, to be its owner or in its group"
	case errors.Is(err, unix.EBUSY):
		e.Hint = "the name is in use: another interface has it, or it is held exclusively; pick another name or a pattern such as tun%d"
	case errors.Is(err, unix.EINVAL) && op == "create or attach":
		e.Hint = "an interface of this name exists with other settings (TUN vs TAP, multi-queue, or it is not a TUN/TAP device); delete it or pick another name"
	case errors.Is(err, unix.EBADFD):
		e.Err = ErrDeviceRemoved
	}
	return e
}

// setHWAddr sets a TAP device's MAC through its descriptor (SIOCSIFHWADDR on
// a tun descriptor acts on its device, in whatever namespace it is).
func setHWAddr(fd int, name string, mac net.HardwareAddr) error {
	var ifr [unix.IFNAMSIZ + 24]byte // struct ifreq: name, then struct sockaddr
	copy(ifr[:unix.IFNAMSIZ], name)
	*(*uint16)(unsafe.Pointer(&ifr[unix.IFNAMSIZ])) = unix.ARPHRD_ETHER
	copy(ifr[unix.IFNAMSIZ+2:], mac)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return opErr("set MAC address", name, errno)
	}
	return nil
}

func getHWAddr(fd int, name string) (net.HardwareAddr, error) {
	var ifr [unix.IFNAMSIZ + 24]byte
	copy(ifr[:unix.IFNAMSIZ], name)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFHWADDR, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return nil, opErr("get MAC address", name, errno)
	}
	mac := make(net.HardwareAddr, 6)
	copy(mac, ifr[unix.IFNAMSIZ+2:])
	return mac, nil
}

// setMTUHere sets the MTU of the interface name in the calling thread's
// namespace.
func setMTUHere(name string, mtu int) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &OpError{Op: "set MTU of", Name: name, Err: err}
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return &OpError{Op: "set MTU of", Name: name, Err: err}
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		e := opErr("set MTU of", name, err).(*OpError)
		if errors.Is(err, unix.EINVAL) {
			e.Hint = fmt.Sprintf("MTU %d is out of range (68 to 65535 for IPv4; IPv6 needs at least 1280)", mtu)
		}
		return e
	}
	return nil
}

// FromFD wraps an open TUN/TAP descriptor, typically one inherited from a
// parent process or received over a unix socket. On success the Device owns
// fd and closes it on Close; on error fd is left open, the caller's. The name, mode and multi-queue setting are
// read from the descriptor; packet information is read from the interface
// when the kernel lets us, else assumed off.
func FromFD(fd int) (*Device, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil, &OpError{Op: "wrap descriptor", Err: err}
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return nil, &OpError{Op: "wrap descriptor", Err: err, Hint: "the descriptor is not an attached TUN/TAP device"}
	}
	name, flags := ifr.Name(), ifr.Uint16()
	mode := ModeTUN
	if flags&unix.IFF_TAP != 0 {
		mode = ModeTAP
	}
	// TUNGETIFF reports IFF_NOFILTER in the bit IFF_NO_PI uses, so ask the
	// interface itself.
	keep := unix.IFF_TUN | unix.IFF_TAP | unix.IFF_MULTI_QUEUE | unix.IFF_NO_PI | unix.IFF_VNET_HDR
	flags &= uint16(keep)
	dev := &Device{name: name, mode: mode}
	if flags&unix.IFF_VNET_HDR != 0 {
		if err := checkVnetHdrSize(fd, name); err != nil {
			return nil, err
		}
		// We do not know what the descriptor's owner agreed to: set our own.
		dev.off = &offloadState{Offloads: probeOffloads(fd)}
	}
	if h, err := dev.netlinkFD(fd); err == nil {
		if link, err := h.LinkByName(name); err == nil {
			if tt, ok := link.(*netlink.Tuntap); ok && tt.Flags&netlink.TUNTAP_NO_PI == 0 {
				flags &^= unix.IFF_NO_PI
			}
		}
		h.Close()
	}
	dev.flags = flags
	if flags&unix.IFF_VNET_HDR != 0 && flags&unix.IFF_NO_PI == 0 {
		return nil, &NotSupportedError{Feature: "a descriptor with both the packet information and the virtio-net header"}
	}
	q, err := newQueue(dev, fd, 0)
	if err != nil {
		return nil, err
	}
	dev.queues = []*Queue{q}
	dev.first = q
	if dev.off != nil && (dev.off.TSO || dev.off.USO) {
		_ = dev.inNS("limit GSO segments", func() error { limitGSOSegments(name); return nil })
	}
	return dev, nil
}

// Name returns the interface name the kernel gave the device.
func (d *Device) Name() string { return d.name }

// Mode returns whether the device is TUN or TAP.
func (d *Device) Mode() Mode { return d.mode }

// l2Len is the length of the link header in front of IP: 14 on TAP.
func (d *Device) l2Len() int {
	if d.mode == ModeTAP {
		return 14
	}
	return 0
}

// PacketInfo reports whether packets carry the 4-byte packet information header.
func (d *Device) PacketInfo() bool { return d.flags&unix.IFF_NO_PI == 0 }

// MultiQueue reports whether the device is multi-queue.
func (d *Device) MultiQueue() bool { return d.flags&unix.IFF_MULTI_QUEUE != 0 }

// BatchSize is the number of buffers ReadBatch can fill in one call, and a
// good size for WriteBatch.
func (d *Device) BatchSize() int { return DefaultBatchSize }

// Queue returns the i-th open queue, or nil.
func (d *Device) Queue(i int) *Queue {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i < 0 || i >= len(d.queues) {
		return nil
	}
	return d.queues[i]
}

// Queues returns the open queues, in the order they were opened.
func (d *Device) Queues() []*Queue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Queue(nil), d.queues...)
}

// control runs fn on the descriptor of an open queue, for device-wide ioctls.
func (d *Device) control(op string, fn func(fd int) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || len(d.queues) == 0 {
		return &OpError{Op: op, Name: d.name, Err: ErrClosed}
	}
	return d.queues[0].control(op, fn)
}

// AddQueue opens one more queue on a multi-queue device. The kernel starts
// steering a share of the flows to it at once.
func (d *Device) AddQueue() (*Queue, error) {
	if !d.MultiQueue() {
		return nil, &OpError{Op: "add queue to", Name: d.name, Err: unix.EINVAL, Hint: "the device is not multi-queue; open it with Config.MultiQueue or Queues > 1"}
	}
	var fd int
	err := d.inNS("add queue to", func() error {
		var err error
		if fd, err = openClone(d.name); err != nil {
			return err
		}
		if _, err = setIFF(fd, d.name, d.flags); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		unix.Close(fd)
		return nil, &OpError{Op: "add queue to", Name: d.name, Err: ErrClosed}
	}
	q, err := newQueue(d, fd, len(d.queues))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	d.queues = append(d.queues, q)
	return q, nil
}

// removeQueue forgets a closed queue.
func (d *Device) removeQueue(q *Queue) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range d.queues {
		if x == q {
			d.queues = append(d.queues[:i], d.queues[i+1:]...)
			return
		}
	}
}

// SetPersist makes the device outlive (true) or not (false) its last open
// descriptor. Turning persistence off and closing removes the device.
func (d *Device) SetPersist(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return d.control("set persist", func(fd int) error {
		return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, v)
	})
}

// SetCarrier raises (true) or drops (false) the device's carrier, which the
// kernel reports as the link's lower state (LOWER_UP, NO-CARRIER).
func (d *Device) SetCarrier(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return d.control("set carrier", func(fd int) error {
		return unix.IoctlSetPointerInt(fd, unix.TUNSETCARRIER, v)
	})
}

// SetSendBuffer sets the socket send buffer of every queue, in bytes.
func (d *Device) SetSendBuffer(n int) error {
	return d.control("set send buffer", func(fd int) error {
		return unix.IoctlSetPointerInt(fd, unix.TUNSETSNDBUF, n)
	})
}

// SendBuffer returns the socket send buffer of the device's queues.
func (d *Device) SendBuffer() (int, error) {
	var n int
	err := d.control("get send buffer", func(fd int) error {
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TUNGETSNDBUF)
		return err
	})
	return n, err
}

// HardwareAddr returns the MAC address of a TAP device.
func (d *Device) HardwareAddr() (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := d.control("get MAC address", func(fd int) error {
		var err error
		mac, err = getHWAddr(fd, d.name)
		return err
	})
	return mac, err
}

// SetHardwareAddr sets the MAC address of a TAP device.
func (d *Device) SetHardwareAddr(mac net.HardwareAddr) error {
	if d.mode != ModeTAP {
		return &OpError{Op: "set MAC address", Name: d.name, Err: unix.EINVAL, Hint: "only TAP devices have a MAC address"}
	}
	if len(mac) != 6 {
		return &OpError{Op: "set MAC address", Name: d.name, Err: unix.EINVAL, Hint: "a MAC address has 6 bytes"}
	}
	return d.control("set MAC address", func(fd int) error { return setHWAddr(fd, d.name, mac) })
}

// SetMTU sets the interface MTU, in whatever namespace the device now is.
func (d *Device) SetMTU(mtu int) error {
	return d.inNS("set MTU of", func() error { return setMTUHere(d.name, mtu) })
}

// MTU returns the interface MTU.
func (d *Device) MTU() (int, error) {
	link, err := d.link()
	if err != nil {
		return 0, err
	}
	return link.Attrs().MTU, nil
}

// Index returns the interface index.
func (d *Device) Index() (int, error) {
	link, err := d.link()
	if err != nil {
		return 0, err
	}
	return link.Attrs().Index, nil
}

func (d *Device) link() (netlink.Link, error) {
	var link netlink.Link
	err := d.withNetlink("inspect", func(h *netlink.Handle) error {
		var err error
		link, err = h.LinkByName(d.name)
		return err
	})
	return link, err
}

// devNS returns a handle on the namespace the device is in now (it may have
// been moved with `ip link set NAME netns NS`), or on the namespace it was
// opened in when the kernel will not say.
func (d *Device) devNS() (netns.NsHandle, error) {
	var nsfd int = -1
	_ = d.control("get namespace", func(fd int) error {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNGETDEVNETNS, 0)
		if errno == 0 {
			nsfd = int(r)
		}
		return nil
	})
	if nsfd >= 0 {
		return netns.NsHandle(nsfd), nil
	}
	return inns.Open(d.netNS)
}

func (d *Device) netlinkFD(fd int) (*netlink.Handle, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNGETDEVNETNS, 0)
	if errno != 0 {
		return netlink.NewHandle()
	}
	ns := netns.NsHandle(r)
	defer ns.Close()
	return netlinkIn(ns)
}

// netlinkIn returns a netlink handle whose socket is in ns, made there by
// inns (which enters no namespace the thread is in already: netlink's own
// NewHandleAt always does, and that takes CAP_SYS_ADMIN).
func netlinkIn(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inns.DoHandle(ns, func() (err error) {
		h, err = netlink.NewHandleAt(netns.None())
		return err
	})
	return h, err
}

func (d *Device) inNS(op string, fn func() error) error {
	ns, err := d.devNS()
	if err != nil {
		return &OpError{Op: op, Name: d.name, Err: err}
	}
	defer ns.Close()
	return inns.DoHandle(ns, fn)
}

func (d *Device) withNetlink(op string, fn func(h *netlink.Handle) error) error {
	ns, err := d.devNS()
	if err != nil {
		return &OpError{Op: op, Name: d.name, Err: err}
	}
	defer ns.Close()
	h, err := netlinkIn(ns)
	if err != nil {
		return &OpError{Op: op, Name: d.name, Err: err}
	}
	defer h.Close()
	if err := fn(h); err != nil {
		return &OpError{Op: op, Name: d.name, Err: err}
	}
	return nil
}

// Close closes every queue. A device that is not persistent disappears with
// its last queue. Blocked reads and writes return ErrClosed. Close is
// idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	qs := d.queues
	d.queues = nil
	d.mu.Unlock()
	var errs []error
	for _, q := range qs {
		if err := q.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
