package tun

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// This file holds the pure, system-independent decisions of the non-Linux
// backends (macOS, FreeBSD, and any other that wants them), so that they are
// tested on every system.

// checkNonLinux returns the first problem with cfg on goos, a system whose
// TUN/TAP devices have none of Linux's extras: a malformed value as an
// *OpError wrapping syscall.EINVAL, or a Linux-only option as a
// *NotSupportedError naming goos. Nothing is created before it passes.
// Config.NoOffload is accepted (there are no offloads to turn off) and
// Config.Exclusive is left to the backend (the BSDs never share a device).
// Neither the name nor the mode's availability is checked here.
func checkNonLinux(cfg *Config, goos string) error {
	if cfg.Mode != ModeTUN && cfg.Mode != ModeTAP {
		return &OpError{Op: "open", Name: cfg.Name, Err: fmt.Errorf("unknown mode %d", cfg.Mode)}
	}
	if cfg.Queues < 0 || cfg.Queues > MaxQueues {
		return &OpError{Op: "open", Name: cfg.Name, Err: syscall.EINVAL,
			Hint: fmt.Sprintf("queues must be between 1 and %d", MaxQueues)}
	}
	if len(cfg.MAC) != 0 && len(cfg.MAC) != 6 {
		return &OpError{Op: "open", Name: cfg.Name, Err: syscall.EINVAL, Hint: "a MAC address has 6 bytes"}
	}
	var feature string
	switch {
	case cfg.Queues > 1 || cfg.MultiQueue:
		feature = "multi-queue (one descriptor per device)"
	case cfg.PacketInfo:
		feature = "the packet information header"
	case cfg.Persist:
		feature = "persistent devices (a device lasts as long as its descriptor)"
	case cfg.Owner != nil || cfg.Group != nil:
		feature = "a device owner or group"
	case cfg.CarrierOff:
		feature = "creating a device with its carrier off"
	case cfg.SendBuffer > 0:
		feature = "setting the send buffer"
	case cfg.NetNS != "":
		feature = "network namespaces"
	case len(cfg.MAC) != 0 && cfg.Mode == ModeTUN:
		feature = "a MAC address on a TUN device (only TAP devices have one)"
	default:
		return nil
	}
	return &NotSupportedError{Feature: feature, OS: goos}
}

// bsdIfNameMax is the longest interface name on macOS and FreeBSD
// (IFNAMSIZ - 1).
const bsdIfNameMax = 15

// checkBSDName refuses names the BSD kernels cannot take.
func checkBSDName(name string) error {
	if len(name) > bsdIfNameMax {
		return &OpError{Op: "open", Name: name, Err: syscall.EINVAL,
			Hint: fmt.Sprintf("interface names are at most %d bytes", bsdIfNameMax)}
	}
	if strings.ContainsAny(name, "/ \t\n") {
		return &OpError{Op: "open", Name: name, Err: syscall.EINVAL, Hint: "interface names cannot contain '/' or spaces"}
	}
	return nil
}

// utunUnit returns the unit to connect a macOS utun control socket to for
// the interface name: 0 (the kernel picks the first free utunN) for "",
// "utun" and "utun%d", and N+1 for "utunN". Any other name is an *OpError
// wrapping syscall.EINVAL: macOS names utun interfaces itself.
func utunUnit(name string) (uint32, error) {
	switch name {
	case "", "utun", "utun%d":
		return 0, nil
	}
	digits, ok := strings.CutPrefix(name, "utun")
	if ok && digits != "" && (digits == "0" || digits[0] != '0') {
		// The kernel's unit is 32 bits and holds N+1.
		if n, err := strconv.ParseUint(digits, 10, 31); err == nil {
			return uint32(n) + 1, nil
		}
	}
	return 0, &OpError{Op: "open", Name: name, Err: syscall.EINVAL,
		Hint: `macOS names TUN devices utunN: use "" or "utun" for the first free one, or "utunN" for a given N`}
}

// bsdNamePattern says how a FreeBSD device opened with Config.Name name is
// named. keep is true when the kernel's own name (tunN, tapN) is kept: name
// is "", or "tun%d" for a TUN device or "tap%d" for a TAP one. Otherwise the
// new interface is renamed to pattern, a fixed name or one with a single %d
// that expandName fills with the first free number.
func bsdNamePattern(name string, mode Mode) (pattern string, keep bool, err error) {
	if name == "" || name == mode.String()+"%d" {
		return "", true, nil
	}
	if err := checkBSDName(name); err != nil {
		return "", false, err
	}
	rest := strings.Replace(name, "%d", "", 1)
	if strings.Contains(rest, "%") || rest == "" {
		return "", false, &OpError{Op: "open", Name: name, Err: syscall.EINVAL,
			Hint: "a name pattern has one %d, which is replaced by the first free number, and no other %"}
	}
	return name, false, nil
}

// expandName returns pattern with its %d replaced by n, or pattern itself
// when it has no %d (then only n == 0 is meaningful). It reports false when
// the result is too long for an interface name.
func expandName(pattern string, n int) (string, bool) {
	s := strings.Replace(pattern, "%d", strconv.Itoa(n), 1)
	return s, len(s) <= bsdIfNameMax
}
