package tun

// This file holds the parts of the Windows backend (tun_windows.go,
// wintun_windows.go, tap_windows.go) that need no Windows API: checking a
// Config, naming adapters, choosing a TAP-Windows6 adapter, the I/O control
// codes, deadlines as wait timeouts, and filling and writing batches through
// a packet source or sink. It carries no build tag so that its tests run on
// Linux.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"
)

// winGOOS names Windows in NotSupportedError.OS, whatever system the pure
// logic runs on.
const winGOOS = "windows"

// winMaxName is the longest adapter name Windows and Wintun take, in UTF-16
// code units (MAX_ADAPTER_NAME is 128, with the terminating NUL).
const winMaxName = 127

// winDefaultName is the name pattern a TUN device gets when Config.Name is
// empty: tapwire0, tapwire1, ...
const winDefaultName = "tapwire%d"

// winCheckConfig refuses, before anything is created, what a Windows device
// cannot do. attach is true for Attach.
func winCheckConfig(cfg Config, attach bool) error {
	if cfg.Mode != ModeTUN && cfg.Mode != ModeTAP {
		return &OpError{Op: "open", Name: cfg.Name, Err: fmt.Errorf("unknown mode %d", cfg.Mode)}
	}
	if cfg.Queues < 0 {
		return &OpError{Op: "open", Name: cfg.Name, Err: syscall.EINVAL, Hint: "queues cannot be negative"}
	}
	if n := len(utf16.Encode([]rune(cfg.Name))); n > winMaxName {
		return &OpError{Op: "open", Name: cfg.Name, Err: syscall.EINVAL,
			Hint: fmt.Sprintf("adapter names are at most %d UTF-16 characters", winMaxName)}
	}
	if cfg.Name == "" && attach && cfg.Mode == ModeTUN {
		return &OpError{Op: "attach", Err: errors.New("a device name is needed")}
	}
	if strings.Contains(cfg.Name, "%d") && (attach || cfg.Mode == ModeTAP) {
		return &OpError{Op: "open", Name: cfg.Name, Err: syscall.EINVAL,
			Hint: "a name pattern with %d only makes sense when creating a Wintun (TUN) adapter"}
	}
	unsupported := []struct {
		set     bool
		feature string
	}{
		{cfg.Queues > 1, "multi-queue (Queues > 1)"},
		{cfg.MultiQueue, "multi-queue"},
		{cfg.PacketInfo, "the packet information header"},
		{cfg.Persist, "persistent devices"},
		{cfg.Owner != nil, "device owners"},
		{cfg.Group != nil, "device groups"},
		{cfg.SendBuffer > 0, "the device send buffer"},
		{cfg.NetNS != "", "network namespaces"},
		{cfg.CarrierOff && cfg.Mode == ModeTUN, "creating a TUN device with carrier off"},
		{cfg.Exclusive && cfg.Mode == ModeTAP, "creating TAP adapters (Exclusive); install one with tapctl"},
		{len(cfg.MAC) > 0 && cfg.Mode == ModeTAP, "setting a TAP adapter's MAC address (set it in the adapter's advanced properties)"},
	}
	for _, u := range unsupported {
		if u.set {
			return &NotSupportedError{Feature: u.feature, OS: winGOOS}
		}
	}
	if len(cfg.MAC) > 0 {
		return &OpError{Op: "set MAC address", Name: cfg.Name, Err: syscall.EINVAL, Hint: "only TAP devices have a MAC address"}
	}
	return nil
}

// winExpandName replaces the %d in pattern by the smallest number from 0
// that gives a name taken reports as free. A name without %d is returned
// as it is.
func winExpandName(pattern string, taken func(string) bool) (string, error) {
	if !strings.Contains(pattern, "%d") {
		return pattern, nil
	}
	if strings.Count(pattern, "%d") > 1 {
		return "", &OpError{Op: "open", Name: pattern, Err: syscall.EINVAL, Hint: "a name pattern has one %d"}
	}
	for i := range MaxQueues {
		name := strings.Replace(pattern, "%d", strconv.Itoa(i), 1)
		if !taken(name) {
			return name, nil
		}
	}
	return "", &OpError{Op: "open", Name: pattern, Err: syscall.EEXIST, Hint: fmt.Sprintf("the first %d names of the pattern are all taken", MaxQueues)}
}

// winNameGUID derives the GUID a Wintun adapter named name is created with.
// The same name always gives the same GUID, so Windows recognises the
// adapter as the same network across runs (its profile and firewall
// category stay) instead of adding a network each time. The result has the
// layout of a Windows GUID (Data1, Data2, Data3 little-endian on the wire,
// here as integers) with the RFC 9562 version 8 and variant bits set.
func winNameGUID(name string) (data1 uint32, data2, data3 uint16, data4 [8]byte) {
	sum := sha256.Sum256([]byte("tapwire wintun adapter\x00" + strings.ToLower(name)))
	data1 = uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	data2 = uint16(sum[4])<<8 | uint16(sum[5])
	data3 = (uint16(sum[6])<<8|uint16(sum[7]))&0x0fff | 0x8000 // version 8
	copy(data4[:], sum[8:16])
	data4[0] = data4[0]&0x3f | 0x80 // variant 10
	return
}

// winTAPAdapter is a network adapter as the registry lists it.
type winTAPAdapter struct {
	GUID       string // NetCfgInstanceId, "{...}"
	Component  string // ComponentId, e.g. "tap0901" or "root\tap0901"
	Connection string // the connection name people see, e.g. "OpenVPN TAP-Windows6"
}

// winIsTAPComponent reports whether a ComponentId is OpenVPN's TAP-Windows6
// driver (tap0901), installed by the OpenVPN installer or by tapctl.
func winIsTAPComponent(id string) bool {
	id = strings.ToLower(id)
	return id == "tap0901" || id == `root\tap0901`
}

// winTAPCandidates returns the TAP-Windows6 adapters to try, in order: the
// one whose connection name is name (compared as Windows does, without
// case), or, when name is empty, every TAP-Windows6 adapter (the first that
// opens is the first free one).
func winTAPCandidates(all []winTAPAdapter, name string) ([]winTAPAdapter, error) {
	var taps []winTAPAdapter
	for _, a := range all {
		if winIsTAPComponent(a.Component) && a.GUID != "" {
			taps = append(taps, a)
		}
	}
	if len(taps) == 0 {
		return nil, &OpError{Op: "open", Name: name, Err: syscall.ENOENT, Hint: winTAPHint}
	}
	if name == "" {
		return taps, nil
	}
	var names []string
	for _, a := range taps {
		if strings.EqualFold(a.Connection, name) {
			return []winTAPAdapter{a}, nil
		}
		names = append(names, strconv.Quote(a.Connection))
	}
	return nil, &OpError{Op: "open", Name: name, Err: syscall.ENOENT,
		Hint: "no TAP-Windows6 adapter has that connection name; there are: " + strings.Join(names, ", ")}
}

// winTAPHint is what to do when no TAP-Windows6 adapter is installed.
const winTAPHint = "no TAP-Windows6 adapter is installed: install OpenVPN's TAP-Windows6 driver " +
	"(the OpenVPN installer, or https://build.openvpn.net/downloads/releases/) and create an adapter with " +
	`tapctl create --hwid root\tap0901`

// winWintunHint is what to do when wintun.dll cannot be loaded.
const winWintunHint = "wintun.dll is missing: put the wintun.dll of this architecture from https://www.wintun.net " +
	"next to the executable (or in System32)"

// winAdminHint is what to do when Windows refuses for lack of privilege.
const winAdminHint = "creating and configuring adapters needs Administrator: run from an elevated prompt"

// winCtlCode is the CTL_CODE macro of the Windows DDK.
func winCtlCode(deviceType, function, method, access uint32) uint32 {
	return deviceType<<16 | access<<14 | function<<2 | method
}

// The TAP-Windows6 driver's I/O controls (tap-windows.h): buffered, any
// access, on FILE_DEVICE_UNKNOWN.
var (
	winTAPIoctlGetMAC         = winCtlCode(0x22, 1, 0, 0)
	winTAPIoctlGetMTU         = winCtlCode(0x22, 3, 0, 0)
	winTAPIoctlSetMediaStatus = winCtlCode(0x22, 6, 0, 0)
)

// winInfinite is the Windows wait timeout that never expires (INFINITE).
const winInfinite = math.MaxUint32

// winWaitMillis turns a deadline (Unix nanoseconds, 0 for none) into a wait
// timeout in milliseconds, rounded up so that a wait never ends before the
// deadline, or reports that it has passed.
func winWaitMillis(deadline int64, now time.Time) (ms uint32, expired bool) {
	if deadline == 0 {
		return winInfinite, false
	}
	left := deadline - now.UnixNano()
	if left <= 0 {
		return 0, true
	}
	m := (left + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	if m >= winInfinite {
		m = winInfinite - 1
	}
	return uint32(m), false
}

// winPacketSource is where ReadBatch takes packets from without blocking.
type winPacketSource interface {
	// receive returns the next queued packet, or nil when none is queued.
	receive() ([]byte, error)
	// release gives back a packet receive returned, once it is copied.
	release(p []byte)
}

// winFillBatch copies queued packets into bufs[i][offset:] (a packet longer
// than its buffer is truncated), sizes[i] their lengths, until bufs are full
// or none is left. An error after some packets is dropped: the source
// reports it again on the next call.
func winFillBatch(src winPacketSource, bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		p, err := src.receive()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if p == nil {
			break
		}
		sizes[n] = copy(bufs[n][offset:], p)
		src.release(p)
		n++
	}
	return n, nil
}

// winPacketSink is where WriteBatch puts packets.
type winPacketSink interface {
	// send writes one packet. refused is true when the system refused this
	// packet alone (malformed, too big, no room in the ring): it is dropped
	// and the batch goes on. Any other error ends the batch.
	send(p []byte) (refused bool, err error)
}

// winWriteEach writes bufs[i][offset:] in order and returns how many were
// written; refused packets are reported together as a *PacketError.
func winWriteEach(dst winPacketSink, bufs [][]byte, offset int) (int, error) {
	written, dropped, first := 0, 0, -1
	var firstErr error
	for i, b := range bufs {
		refused, err := dst.send(b[offset:])
		switch {
		case err == nil:
			written++
		case refused:
			if dropped == 0 {
				first, firstErr = i, err
			}
			dropped++
		default:
			return written, err
		}
	}
	if dropped > 0 {
		return written, &PacketError{Index: first, Dropped: dropped, Err: firstErr}
	}
	return written, nil
}
