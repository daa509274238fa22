package tun

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// Info is what the kernel reports about a TUN/TAP interface over rtnetlink
// (the IFLA_TUN_* attributes `ip -d link show` prints).
type Info struct {
	Name           string
	Index          int
	Mode           Mode
	MTU            int
	HardwareAddr   net.HardwareAddr // TAP only
	Up             bool             // administratively up
	Carrier        bool             // lower layer up (only reported while up)
	PacketInfo     bool
	VnetHdr        bool
	Persist        bool
	MultiQueue     bool
	Queues         int     // attached queues; the kernel reports it for multi-queue devices only
	DisabledQueues int     // detached queues (multi-queue devices)
	Owner          *uint32 // nil: no owner set
	Group          *uint32 // nil: no group set
}

// List returns every TUN and TAP interface in the network namespace ns ("",
// a name made by `ip netns add`, or a path), including the ones other programs
// made, sorted by name.
func List(ns string) ([]Info, error) {
	var out []Info
	err := inns.Do(ns, func() error {
		var err error
		out, err = listHere()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tun: list devices: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listHere dumps the links of the calling thread's namespace and keeps the
// TUN/TAP ones.
func listHere() ([]Info, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, m := range msgs {
		if info, ok := parseLink(m); ok {
			out = append(out, info)
		}
	}
	return out, nil
}

// parseLink decodes an RTM_NEWLINK message; ok is false unless it is a
// TUN/TAP interface.
func parseLink(m []byte) (info Info, ok bool) {
	if len(m) < unix.SizeofIfInfomsg {
		return info, false
	}
	ifi := nl.DeserializeIfInfomsg(m)
	info.Index = int(ifi.Index)
	info.Up = ifi.Flags&unix.IFF_UP != 0
	info.Carrier = ifi.Flags&unix.IFF_LOWER_UP != 0
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return info, false
	}
	var mac []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			info.Name = strings.TrimRight(string(a.Value), "\x00")
		case unix.IFLA_MTU:
			if len(a.Value) >= 4 {
				info.MTU = int(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.IFLA_ADDRESS:
			mac = a.Value
		case unix.IFLA_LINKINFO:
			ok = parseLinkInfo(a.Value, &info)
		}
	}
	if info.Mode == ModeTAP && len(mac) == 6 {
		info.HardwareAddr = net.HardwareAddr(append([]byte(nil), mac...))
	}
	return info, ok
}

func parseLinkInfo(b []byte, info *Info) bool {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return false
	}
	var isTun bool
	var data []syscall.NetlinkRouteAttr
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_INFO_KIND:
			isTun = strings.TrimRight(string(a.Value), "\x00") == "tun"
		case unix.IFLA_INFO_DATA:
			data, _ = nl.ParseRouteAttr(a.Value)
		}
	}
	if !isTun {
		return false
	}
	u8 := func(v []byte) bool { return len(v) > 0 && v[0] != 0 }
	u32 := func(v []byte) uint32 {
		if len(v) < 4 {
			return 0
		}
		return binary.NativeEndian.Uint32(v)
	}
	for _, a := range data {
		switch a.Attr.Type {
		case nl.IFLA_TUN_OWNER:
			v := u32(a.Value)
			info.Owner = &v
		case nl.IFLA_TUN_GROUP:
			v := u32(a.Value)
			info.Group = &v
		case nl.IFLA_TUN_TYPE:
			if len(a.Value) > 0 && a.Value[0] == unix.IFF_TAP {
				info.Mode = ModeTAP
			}
		case nl.IFLA_TUN_PI:
			info.PacketInfo = u8(a.Value)
		case nl.IFLA_TUN_VNET_HDR:
			info.VnetHdr = u8(a.Value)
		case nl.IFLA_TUN_PERSIST:
			info.Persist = u8(a.Value)
		case nl.IFLA_TUN_MULTI_QUEUE:
			info.MultiQueue = u8(a.Value)
		case nl.IFLA_TUN_NUM_QUEUES:
			info.Queues = int(u32(a.Value))
		case nl.IFLA_TUN_NUM_DISABLED_QUEUES:
			info.DisabledQueues = int(u32(a.Value))
		}
	}
	return true
}

// Info asks the kernel for the device's current state, in whatever
// namespace the device now is.
func (d *Device) Info() (Info, error) {
	var infos []Info
	err := d.inNS("inspect", func() error {
		var err error
		infos, err = listHere()
		return err
	})
	if err != nil {
		return Info{}, &OpError{Op: "inspect", Name: d.name, Err: err}
	}
	for _, info := range infos {
		if info.Name == d.name {
			return info, nil
		}
	}
	return Info{}, &OpError{Op: "inspect", Name: d.name, Err: ErrDeviceRemoved}
}

// Process is a process that holds a TUN/TAP descriptor open.
type Process struct {
	PID  int
	Comm string // the command name, from /proc/PID/comm
}

// Holders returns the processes that have a descriptor attached to the
// TUN/TAP interface called name open, found through /proc/PID/fdinfo (the
// kernel writes "iff: NAME" there). Processes this one may not inspect are
// skipped. Interfaces of the same name in other namespaces are not told apart.
func Holders(name string) ([]Process, error) {
	pids, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, dir := range pids {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		if holds(dir, name) {
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			out = append(out, Process{PID: pid, Comm: strings.TrimSpace(string(comm))})
		}
	}
	return out, nil
}

// holds reports whether the process in dir has a descriptor on name.
func holds(dir, name string) bool {
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if err != nil || target != cloneDevice {
			continue
		}
		f, err := os.Open(filepath.Join(dir, "fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == "iff" && strings.TrimSpace(v) == name {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}
