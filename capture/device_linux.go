package capture

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/tun"
)

// DefaultDeviceName is the name pattern of a device made by OpenDevice when
// DeviceConfig.Name is empty: the kernel fills in the first free number.
const DefaultDeviceName = "twcap%d"

// DeviceConfig describes the device OpenDevice makes.
type DeviceConfig struct {
	// Name is the interface name or a pattern with %d; empty means
	// DefaultDeviceName. At most 15 bytes. An existing interface of that
	// name is an error: OpenDevice never takes over somebody else's device
	// (watch it with OpenInterface instead).
	Name string
	// Mode is TUN (IP packets) or TAP (Ethernet frames).
	Mode tun.Mode
	// Addrs are given to the device, like ip addr add (for example
	// 192.0.2.1/24: the device's address and the attached subnet, whose
	// other addresses the kernel then routes into the device). IPv6
	// addresses skip duplicate address detection.
	Addrs []netip.Prefix
	// NetNS is the network namespace to make the device in: empty for the
	// caller's own, a name made by ip netns add, or a path.
	NetNS string
}

// DeviceSource is a TUN or TAP device of our own, made by OpenDevice. Every
// packet read from it went out through it (DirOut): the kernel routed it
// there. Nothing is written back.
type DeviceSource struct {
	dev *tun.Device
	buf []byte
}

// OpenDevice makes a new TUN or TAP device, gives it cfg.Addrs and brings it
// up. The device is opened without offloads, so that what is read is plain
// packets of their real size. Close removes it.
func OpenDevice(cfg DeviceConfig) (*DeviceSource, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultDeviceName
	}
	for _, p := range cfg.Addrs {
		if !p.IsValid() {
			return nil, fmt.Errorf("capture: invalid address prefix %v", p)
		}
	}
	dev, err := tun.Open(tun.Config{
		Name:      cfg.Name,
		Mode:      cfg.Mode,
		NetNS:     cfg.NetNS,
		NoOffload: true,
		Exclusive: true,
	})
	if err != nil {
		return nil, err
	}
	if err := configure(dev.Name(), cfg); err != nil {
		dev.Close()
		return nil, err
	}
	return &DeviceSource{dev: dev, buf: make([]byte, tun.MaxPacket)}, nil
}

// configure adds the addresses and brings the link up.
func configure(link string, cfg DeviceConfig) error {
	nc, err := netconf.Open(cfg.NetNS)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, p := range cfg.Addrs {
		if err := nc.AddAddr(link, p, netconf.NoDAD()); err != nil {
			return err
		}
	}
	return nc.SetUp(link)
}

// Device returns the underlying device.
func (s *DeviceSource) Device() *tun.Device { return s.dev }

// Name returns the name the kernel gave the device (twcap0, ...).
func (s *DeviceSource) Name() string { return s.dev.Name() }

// LinkType is raw IP for a TUN device, Ethernet for a TAP device.
func (s *DeviceSource) LinkType() layers.LinkType {
	if s.dev.Mode() == tun.ModeTAP {
		return layers.LinkTypeEthernet
	}
	return layers.LinkTypeRaw
}

// ReadPacket reads the next packet the kernel sends into the device.
func (s *DeviceSource) ReadPacket() (Packet, error) {
	for {
		n, err := s.dev.Read(s.buf)
		if err != nil {
			return Packet{}, err
		}
		if n == 0 {
			continue
		}
		now := time.Now()
		return Packet{Timestamp: now, Data: append([]byte(nil), s.buf[:n]...), Length: n, Direction: DirOut}, nil
	}
}

// Close closes and so removes the device; a blocked ReadPacket returns an
// error matching os.ErrClosed (tun.ErrClosed).
func (s *DeviceSource) Close() error {
	return s.dev.Close()
}
