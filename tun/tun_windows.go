package tun

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
)

// Device is an open TUN or TAP device on Windows: a Wintun adapter (TUN) or
// an OpenVPN TAP-Windows6 adapter (TAP). It has one queue.
//
// Neither driver is a handle the Go runtime poller can wait on for batches,
// so a blocked read or write waits in WaitForMultipleObjects on the driver's
// event, the device's close event and its deadline event: the goroutine
// holds an OS thread meanwhile (as wireguard-go's does), but Close and
// deadlines wake it at once and nothing polls.
//
// One goroutine may read and another write at the same time; calls in the
// same direction are serialised. The other methods are safe for concurrent
// use.
type Device struct {
	name string
	mode Mode
	be   winBackend

	closeEv windows.Handle // manual-reset, set by Close
	rdlEv   windows.Handle // auto-reset, set when the read deadline changes
	wdlEv   windows.Handle // auto-reset, set when the write deadline changes
	readDL  atomic.Int64   // read deadline, Unix nanoseconds, 0 for none
	writeDL atomic.Int64
	mtu     atomic.Int64 // last MTU set, the fallback of MTU

	closed atomic.Bool
	life   sync.RWMutex // held shared by I/O, exclusively by Close's teardown
	rmu    sync.Mutex   // serialises reads
	wmu    sync.Mutex   // serialises writes

	rone  [1][]byte // Read's batch of one, under rmu
	rsize [1]int
	wone  [1][]byte // Write's, under wmu
}

// winBackend is the driver behind a Device. Its I/O methods run with the
// device's direction lock and life held shared; teardown runs with life held
// exclusively, once no I/O is running.
type winBackend interface {
	readBatch(bufs [][]byte, sizes []int, offset int) (int, error)
	writeBatch(bufs [][]byte, offset int) (int, error)
	luid() (uint64, error)
	hardwareAddr() (net.HardwareAddr, error)
	setCarrier(on bool) error
	teardown() error
}

// ProbeFeatures reports what this Windows host offers: TUN when wintun.dll
// can be loaded (next to the executable or in System32), TAP when an
// adapter of OpenVPN's TAP-Windows6 driver is installed, and NoPI (packets
// never carry a header). Nothing else exists on Windows.
func ProbeFeatures() (Features, error) {
	f := Features{NoPI: true}
	if h, err := loadWintunDLL(); err == nil {
		f.TUN = true
		windows.FreeLibrary(h)
	}
	adapters, err := listAdapters()
	if err != nil {
		return f, &OpError{Op: "probe features", Err: err}
	}
	if _, err := winTAPCandidates(adapters, ""); err == nil {
		f.TAP = true
	}
	return f, nil
}

// Open opens the device cfg describes.
//
// TUN (the default) is a Wintun adapter, which needs wintun.dll from
// https://www.wintun.net next to the executable and Administrator. The name
// is the adapter's connection name (at most 127 characters, any but NUL);
// it may hold one %d, which becomes the first number giving a free name; an
// empty Name means "tapwire%d" (tapwire0, tapwire1, ...). When a Wintun
// adapter of that name exists already (held open by another program that
// runs no session on it), Open uses it, as Linux attaches, unless
// cfg.Exclusive is set: then an existing name fails with an error matching
// fs.ErrExist. A created adapter disappears on Close; its GUID is derived
// from the name, so Windows keeps treating it as the same network.
//
// TAP is an adapter of OpenVPN's TAP-Windows6 driver (tap0901), which this
// package cannot create: install one with the OpenVPN installer or
// `tapctl create --hwid root\tap0901`. cfg.Name selects the adapter by its
// connection name (as `netsh interface show interface` lists it); empty
// takes the first one that is not in use. Open connects the adapter's media
// (its carrier) unless cfg.CarrierOff is set.
//
// cfg.MTU, if positive, sets the IPv4 and (from 1280) IPv6 MTU of the
// interface. cfg.NoOffload is accepted and ignored. Queues > 1, MultiQueue,
// PacketInfo, Persist, Owner, Group, SendBuffer, NetNS, a MAC address for
// TAP, Exclusive for TAP and CarrierOff for TUN return a *NotSupportedError
// before anything is created. On error nothing is left behind.
func Open(cfg Config) (*Device, error) { return openWindows(cfg, false) }

// Attach opens an existing adapter and never creates one: for TUN a Wintun
// adapter named cfg.Name that another program created and still holds
// (Wintun removes an adapter when its creator closes it) without running a
// session on it; for TAP what Open does, since TAP-Windows6 adapters always
// exist beforehand. cfg.Mode says which driver to look in.
func Attach(cfg Config) (*Device, error) { return openWindows(cfg, true) }

func openWindows(cfg Config, attach bool) (dev *Device, err error) {
	if err := winCheckConfig(cfg, attach); err != nil {
		return nil, err
	}
	d := &Device{mode: cfg.Mode}
	if err := d.makeEvents(); err != nil {
		return nil, &OpError{Op: "open", Name: cfg.Name, Err: err}
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	switch cfg.Mode {
	case ModeTUN:
		d.be, d.name, err = openWintun(d, cfg, attach)
	default:
		d.be, d.name, err = openTAP(d, cfg)
	}
	if err != nil {
		return nil, err
	}
	if cfg.MTU > 0 {
		if err := d.setMTU(cfg.MTU, 2*time.Second); err != nil {
			return nil, err
		}
	}
	if cfg.Mode == ModeTUN {
		d.quietIPv6()
	}
	if cfg.Mode == ModeTAP && !cfg.CarrierOff {
		if err := d.SetCarrier(true); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *Device) makeEvents() error {
	var err error
	if d.closeEv, err = windows.CreateEvent(nil, 1, 0, nil); err != nil {
		return err
	}
	if d.rdlEv, err = windows.CreateEvent(nil, 0, 0, nil); err != nil {
		return err
	}
	d.wdlEv, err = windows.CreateEvent(nil, 0, 0, nil)
	return err
}

// wait blocks until h is signalled (nil), the device is closed (ErrClosed)
// or the deadline in dl passes (os.ErrDeadlineExceeded). dlEv wakes it to
// take a changed deadline into account.
func (d *Device) wait(h windows.Handle, dl *atomic.Int64, dlEv windows.Handle) error {
	handles := [3]windows.Handle{h, d.closeEv, dlEv}
	for {
		if d.closed.Load() {
			return ErrClosed
		}
		ms, expired := winWaitMillis(dl.Load(), time.Now())
		if expired {
			return os.ErrDeadlineExceeded
		}
		ev, err := windows.WaitForMultipleObjects(handles[:], false, ms)
		if err != nil {
			return err
		}
		switch ev {
		case windows.WAIT_OBJECT_0:
			return nil
		case windows.WAIT_OBJECT_0 + 1:
			return ErrClosed
		}
		// The deadline changed or passed: look again.
	}
}

// Name returns the adapter's connection name.
func (d *Device) Name() string { return d.name }

// Mode returns whether the device is TUN or TAP.
func (d *Device) Mode() Mode { return d.mode }

// PacketInfo is false: packets on Windows never carry a header.
func (d *Device) PacketInfo() bool { return false }

// MultiQueue is false: Windows devices have one queue.
func (d *Device) MultiQueue() bool { return false }

// BatchSize is the number of buffers ReadBatch can fill in one call, and a
// good size for WriteBatch.
func (d *Device) BatchSize() int { return DefaultBatchSize }

// Read reads one packet (TUN) or frame (TAP) into p and returns its length;
// a longer one is truncated to len(p). It blocks until one arrives, the
// read deadline passes, or the device is closed.
func (d *Device) Read(p []byte) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	d.rone[0] = p
	n, err := d.readBatchLocked(d.rone[:], d.rsize[:], 0)
	d.rone[0] = nil
	if n == 0 {
		return 0, err
	}
	return d.rsize[0], nil
}

// ReadBatch reads up to len(bufs) packets. Packet i is placed at
// bufs[i][offset:] and its length stored in sizes[i]; len(sizes) must be at
// least len(bufs). It blocks until at least one packet is there, then takes
// what else is already queued without blocking, and returns the number of
// packets read. The bytes before offset are the caller's.
func (d *Device) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, &OpError{Op: "read batch", Name: d.name, Err: errors.New("len(sizes) < len(bufs)")}
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	return d.readBatchLocked(bufs, sizes, offset)
}

func (d *Device) readBatchLocked(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed.Load() {
		return 0, &OpError{Op: "read", Name: d.name, Err: ErrClosed}
	}
	n, err := d.be.readBatch(bufs, sizes, offset)
	if err != nil {
		return n, d.ioErr("read", err)
	}
	return n, nil
}

// Write writes one packet (TUN) or frame (TAP) and returns len(p), or 0
// and an error when the driver refused it (for Wintun, also when its ring is
// full: the packet is dropped, as a full queue drops it on Linux).
func (d *Device) Write(p []byte) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.wone[0] = p
	n, err := d.writeBatchLocked(d.wone[:], 0)
	d.wone[0] = nil
	var pe *PacketError
	if errors.As(err, &pe) {
		return 0, &OpError{Op: "write", Name: d.name, Err: pe.Err}
	}
	if n == 0 {
		return 0, err
	}
	return len(p), err
}

// WriteBatch writes the packets bufs[i][offset:], in order, and returns how
// many the driver took. A packet the driver refuses on its own (malformed,
// too big, no room in Wintun's ring) is dropped and the rest are still
// written; the error is then a *PacketError naming the first refused packet
// and how many were dropped. Any other error (the device closed or removed,
// a write deadline) stops the batch. The buffers are not modified.
func (d *Device) WriteBatch(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.writeBatchLocked(bufs, offset)
}

func (d *Device) writeBatchLocked(bufs [][]byte, offset int) (int, error) {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed.Load() {
		return 0, &OpError{Op: "write", Name: d.name, Err: ErrClosed}
	}
	if ns := d.writeDL.Load(); ns != 0 && time.Now().UnixNano() >= ns {
		return 0, &OpError{Op: "write", Name: d.name, Err: os.ErrDeadlineExceeded}
	}
	n, err := d.be.writeBatch(bufs, offset)
	var pe *PacketError
	if err != nil && !errors.As(err, &pe) {
		return n, d.ioErr("write", err)
	}
	return n, err
}

// ioErr wraps an I/O error in an *OpError with the package's errors.
func (d *Device) ioErr(op string, err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	switch {
	case d.closed.Load() || errors.Is(err, windows.ERROR_OPERATION_ABORTED):
		err = ErrClosed
	case errors.Is(err, windows.ERROR_HANDLE_EOF), errors.Is(err, windows.ERROR_DEVICE_NOT_CONNECTED),
		errors.Is(err, windows.ERROR_DEV_NOT_EXIST), errors.Is(err, windows.ERROR_FILE_INVALID):
		err = ErrDeviceRemoved
	}
	return &OpError{Op: op, Name: d.name, Err: err}
}

// SetDeadline sets the read and write deadlines (see SetReadDeadline).
func (d *Device) SetDeadline(t time.Time) error {
	if err := d.SetReadDeadline(t); err != nil {
		return err
	}
	return d.SetWriteDeadline(t)
}

// SetReadDeadline makes reads blocked past t, and reads started after it,
// fail with an error matching os.ErrDeadlineExceeded (and net.Error's
// Timeout). A zero t means no deadline.
func (d *Device) SetReadDeadline(t time.Time) error {
	return d.setDeadline(&d.readDL, d.rdlEv, t)
}

// SetWriteDeadline is SetReadDeadline for writes. Wintun writes never wait,
// so for TUN only a deadline already past matters.
func (d *Device) SetWriteDeadline(t time.Time) error {
	return d.setDeadline(&d.writeDL, d.wdlEv, t)
}

func (d *Device) setDeadline(dl *atomic.Int64, ev windows.Handle, t time.Time) error {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed.Load() {
		return &OpError{Op: "set deadline", Name: d.name, Err: ErrClosed}
	}
	var ns int64
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	dl.Store(ns)
	if err := windows.SetEvent(ev); err != nil {
		return &OpError{Op: "set deadline", Name: d.name, Err: err}
	}
	return nil
}

// luid returns the adapter's interface LUID, with the device kept open.
func (d *Device) luid(op string) (uint64, error) {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed.Load() {
		return 0, &OpError{Op: op, Name: d.name, Err: ErrClosed}
	}
	l, err := d.be.luid()
	if err != nil {
		return 0, &OpError{Op: op, Name: d.name, Err: err}
	}
	return l, nil
}

// MTU returns the interface's IPv4 MTU (its IPv6 MTU when it has no IPv4),
// or, when Windows reports neither yet, the MTU last set.
func (d *Device) MTU() (int, error) {
	l, err := d.luid("get MTU of")
	if err != nil {
		return 0, err
	}
	for _, fam := range []uint16{windows.AF_INET, windows.AF_INET6} {
		row := windows.MibIpInterfaceRow{Family: fam, InterfaceLuid: l}
		if err := windows.GetIpInterfaceEntry(&row); err == nil {
			return int(row.NlMtu), nil
		}
	}
	if m := d.mtu.Load(); m > 0 {
		return int(m), nil
	}
	return 0, &OpError{Op: "get MTU of", Name: d.name, Err: windows.ERROR_NOT_FOUND, Hint: "the interface has no IP configuration yet"}
}

// SetMTU sets the interface's IPv4 MTU and, when mtu is at least 1280, its
// IPv6 MTU (Windows keeps one per IP version; neither driver has its own).
// For TAP it should not exceed the driver's MTU (the adapter's "MTU"
// advanced property, 1500 by default).
func (d *Device) SetMTU(mtu int) error { return d.setMTU(mtu, 0) }

// setMTU sets the MTU, retrying for up to wait while the interface has no
// IP configuration (a new adapter gets it shortly after it appears).
func (d *Device) setMTU(mtu int, wait time.Duration) error {
	if mtu < 68 || mtu > 65535 {
		return &OpError{Op: "set MTU of", Name: d.name, Err: windows.ERROR_INVALID_PARAMETER,
			Hint: "MTU is out of range (68 to 65535 for IPv4; IPv6 needs at least 1280)"}
	}
	l, err := d.luid("set MTU of")
	if err != nil {
		return err
	}
	stop := time.Now().Add(wait)
	for {
		set, err := setIPMTU(l, mtu)
		if err != nil {
			return winOpErr("set MTU of", d.name, err)
		}
		if set > 0 {
			d.mtu.Store(int64(mtu))
			return nil
		}
		if time.Now().After(stop) {
			return &OpError{Op: "set MTU of", Name: d.name, Err: windows.ERROR_NOT_FOUND, Hint: "the interface has no IP configuration"}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quietIPv6 turns off, on a Wintun adapter's IPv6 interface, what has no
// use on a tunnel and would send packets into it or delay its addresses:
// duplicate address detection and router discovery (as WireGuard for
// Windows does). Best effort: an interface Windows has not made yet keeps
// its defaults.
func (d *Device) quietIPv6() {
	l, err := d.be.luid()
	if err != nil {
		return
	}
	row, err := winipcfg.LUID(l).IPInterface(windows.AF_INET6)
	if err != nil {
		return
	}
	row.DadTransmits = 0
	row.RouterDiscoveryBehavior = winipcfg.RouterDiscoveryDisabled
	row.Set()
}

// setIPMTU sets the NlMtu of the interface's IPv4 and IPv6 configuration and
// returns how many of them it set; one that does not exist is skipped, and
// IPv6 is left alone below its minimum MTU of 1280. winipcfg's
// IPInterface clears the SitePrefixLength that GetIpInterfaceEntry can
// report out of range, which SetIpInterfaceEntry would refuse.
func setIPMTU(luid uint64, mtu int) (int, error) {
	set := 0
	for _, fam := range []winipcfg.AddressFamily{windows.AF_INET, windows.AF_INET6} {
		if fam == windows.AF_INET6 && mtu < 1280 {
			continue
		}
		row, err := winipcfg.LUID(luid).IPInterface(fam)
		if err != nil {
			if errors.Is(err, windows.ERROR_NOT_FOUND) {
				continue
			}
			return set, err
		}
		row.NLMTU = uint32(mtu)
		if err := row.Set(); err != nil {
			return set, err
		}
		set++
	}
	return set, nil
}

// aliasExists reports whether an interface has the connection name alias
// (ConvertInterfaceAliasToLuid, which neither golang.org/x/sys/windows nor
// winipcfg wraps). iphlpapi.dll is loaded for the call and released after
// it, so that repeated calls hold no reference to it.
func aliasExists(alias string) bool {
	a, err := windows.UTF16PtrFromString(alias)
	if err != nil {
		return false
	}
	dll, err := windows.LoadLibraryEx("iphlpapi.dll", 0, windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
	if err != nil {
		return false
	}
	defer windows.FreeLibrary(dll)
	proc, err := windows.GetProcAddress(dll, "ConvertInterfaceAliasToLuid")
	if err != nil {
		return false
	}
	var luid uint64
	r, _, _ := syscall.SyscallN(proc, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&luid)))
	return r == 0
}

// Index returns the interface index.
func (d *Device) Index() (int, error) {
	l, err := d.luid("get index of")
	if err != nil {
		return 0, err
	}
	row := windows.MibIfRow2{InterfaceLuid: l}
	if err := windows.GetIfEntry2Ex(windows.MibIfEntryNormalWithoutStatistics, &row); err != nil {
		return 0, &OpError{Op: "get index of", Name: d.name, Err: err}
	}
	return int(row.InterfaceIndex), nil
}

// HardwareAddr returns the MAC address of a TAP adapter; a TUN device has
// none (an error).
func (d *Device) HardwareAddr() (net.HardwareAddr, error) {
	if d.mode != ModeTAP {
		return nil, &OpError{Op: "get MAC address", Name: d.name, Err: windows.ERROR_NOT_SUPPORTED, Hint: "only TAP devices have a MAC address"}
	}
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed.Load() {
		return nil, &OpError{Op: "get MAC address", Name: d.name, Err: ErrClosed}
	}
	mac, err := d.be.hardwareAddr()
	if err != nil {
		return nil, winOpErr("get MAC address", d.name, err)
	}
	return mac, nil
}

// SetHardwareAddr is not supported on Windows: a TAP-Windows6 adapter's MAC
// address is its "MAC Address" advanced property, applied when the adapter
// restarts; a TUN device has none.
func (d *Device) SetHardwareAddr(mac net.HardwareAddr) error {
	if d.mode != ModeTAP {
		return &OpError{Op: "set MAC address", Name: d.name, Err: windows.ERROR_NOT_SUPPORTED, Hint: "only TAP devices have a MAC address"}
	}
	return &NotSupportedError{Feature: "setting a TAP adapter's MAC address", OS: "windows"}
}

// SetPersist is not supported on Windows: a Wintun adapter lives as long as
// its creator holds it, and TAP-Windows6 adapters are installed, not made.
func (d *Device) SetPersist(bool) error {
	return &NotSupportedError{Feature: "persistent devices", OS: "windows"}
}

// SetCarrier connects (true) or disconnects (false) a TAP adapter's media,
// which Windows shows as the cable being plugged in or not. Wintun has no
// carrier: a *NotSupportedError.
func (d *Device) SetCarrier(on bool) error {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed.Load() {
		return &OpError{Op: "set carrier", Name: d.name, Err: ErrClosed}
	}
	return d.be.setCarrier(on)
}

// Close closes the device; a Wintun adapter this device created is
// removed. Blocked reads and writes return an error matching ErrClosed.
// Close is idempotent.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if d.closeEv != 0 {
		windows.SetEvent(d.closeEv)
	}
	d.life.Lock() // every blocked call has seen the close event and left
	defer d.life.Unlock()
	var err error
	if d.be != nil {
		if terr := d.be.teardown(); terr != nil {
			err = &OpError{Op: "close", Name: d.name, Err: terr}
		}
	}
	for _, h := range []windows.Handle{d.closeEv, d.rdlEv, d.wdlEv} {
		if h != 0 {
			windows.CloseHandle(h)
		}
	}
	return err
}

// winOpErr wraps a Windows error with a hint for the usual causes.
func winOpErr(op, name string, err error) error {
	e := &OpError{Op: op, Name: name, Err: err}
	switch {
	case errors.Is(err, windows.ERROR_ACCESS_DENIED), errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD):
		e.Hint = winAdminHint
	case errors.Is(err, windows.ERROR_ALREADY_EXISTS):
		e.Hint = "an interface has this name already; pick another name or a pattern such as tapwire%d"
	}
	return e
}

// TrustChecksums is Linux's, where written packets can be coalesced; here
// nothing is, and it changes nothing.
func (d *Device) TrustChecksums(on bool) {}
