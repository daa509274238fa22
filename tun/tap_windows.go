package tun

import (
	"encoding/binary"
	"errors"
	"net"
	"sort"
	"sync"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
)

// The registry keys where Windows lists network adapters (the Net device
// class) and their connection names.
const (
	netClassKey   = `SYSTEM\CurrentControlSet\Control\Class\{4D36E972-E325-11CE-BFC1-08002BE10318}`
	netConnKeyFmt = `SYSTEM\CurrentControlSet\Control\Network\{4D36E972-E325-11CE-BFC1-08002BE10318}\`
)

// tapDev is an open TAP-Windows6 adapter. It keeps one overlapped read
// outstanding into its own buffer, so that ReadBatch can take what is queued
// without blocking (a completed read) and wait on the read's event when
// nothing is; a read cut short by a deadline stays pending, and its packet
// goes to the next call. Writes are overlapped too, and wait with the
// device's close and deadline events.
type tapDev struct {
	dev  *Device
	h    windows.Handle
	guid windows.GUID

	rov      *windows.Overlapped // the outstanding read; its event is manual-reset
	rbuf     []byte
	rpending bool
	wov      *windows.Overlapped

	imu  sync.Mutex // serialises ioctls, guards iov, ibuf, obuf
	iov  *windows.Overlapped
	ibuf [16]byte
	obuf [16]byte
}

// listAdapters reads the network adapters from the registry; subkeys it
// cannot read (Properties, adapters being removed) are skipped.
func listAdapters() ([]winTAPAdapter, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, netClassKey, registry.ENUMERATE_SUB_KEYS)
	if errors.Is(err, registry.ErrNotExist) {
		return nil, nil // no network adapter class at all (wine): no adapters
	}
	if err != nil {
		return nil, err
	}
	defer k.Close()
	subs, err := k.ReadSubKeyNames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(subs)
	var out []winTAPAdapter
	for _, sub := range subs {
		sk, err := registry.OpenKey(k, sub, registry.QUERY_VALUE)
		if err != nil {
			continue
		}
		comp, _, err1 := sk.GetStringValue("ComponentId")
		guid, _, err2 := sk.GetStringValue("NetCfgInstanceId")
		sk.Close()
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, winTAPAdapter{GUID: guid, Component: comp, Connection: connectionName(guid)})
	}
	return out, nil
}

// connectionName returns the adapter's connection name, or "".
func connectionName(guid string) string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, netConnKeyFmt+guid+`\Connection`, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	name, _, err := k.GetStringValue("Name")
	if err != nil {
		return ""
	}
	return name
}

func openTAP(d *Device, cfg Config) (winBackend, string, error) {
	adapters, err := listAdapters()
	if err != nil {
		return nil, cfg.Name, &OpError{Op: "list adapters for", Name: cfg.Name, Err: err}
	}
	cands, err := winTAPCandidates(adapters, cfg.Name)
	if err != nil {
		return nil, cfg.Name, err
	}
	var firstErr error
	for _, a := range cands {
		t, err := openTAPAdapter(d, a)
		if err == nil {
			return t, a.Connection, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	e := winOpErr("open", cfg.Name, firstErr).(*OpError)
	if e.Hint == "" {
		if cfg.Name == "" {
			e.Hint = "every TAP-Windows6 adapter is in use or disabled; create another with `tapctl create --hwid root\\tap0901`"
		} else {
			e.Hint = "the adapter is in use by another program (OpenVPN?) or disabled"
		}
	}
	return nil, cfg.Name, e
}

func openTAPAdapter(d *Device, a winTAPAdapter) (t *tapDev, err error) {
	guid, err := windows.GUIDFromString(a.GUID)
	if err != nil {
		return nil, err
	}
	path, err := windows.UTF16PtrFromString(`\\.\Global\` + a.GUID + `.tap`)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(path, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING,
		windows.FILE_ATTRIBUTE_SYSTEM|windows.FILE_FLAG_OVERLAPPED, 0)
	if err != nil {
		return nil, err
	}
	t = &tapDev{dev: d, h: h, guid: guid, rov: new(windows.Overlapped), wov: new(windows.Overlapped), iov: new(windows.Overlapped)}
	defer func() {
		if err != nil {
			t.teardown()
		}
	}()
	if t.rov.HEvent, err = windows.CreateEvent(nil, 1, 0, nil); err != nil {
		return nil, err
	}
	if t.wov.HEvent, err = windows.CreateEvent(nil, 1, 0, nil); err != nil {
		return nil, err
	}
	bufLen := MaxPacket
	if out, err := t.ioctl(winTAPIoctlGetMTU, nil, 4); err == nil {
		if mtu := int(binary.LittleEndian.Uint32(out)); mtu+18 > bufLen {
			bufLen = mtu + 18
		}
	}
	t.rbuf = make([]byte, bufLen)
	return t, nil
}

// ioctl issues a TAP-Windows6 I/O control with in as its input and
// returns outLen bytes of output. The OVERLAPPED and the buffers live in t,
// on the heap, where the driver may still write after DeviceIoControl
// returns ERROR_IO_PENDING.
func (t *tapDev) ioctl(code uint32, in []byte, outLen int) ([]byte, error) {
	t.imu.Lock()
	defer t.imu.Unlock()
	if t.iov.HEvent == 0 {
		ev, err := windows.CreateEvent(nil, 1, 0, nil)
		if err != nil {
			return nil, err
		}
		t.iov.HEvent = ev
	}
	ev := t.iov.HEvent
	*t.iov = windows.Overlapped{HEvent: ev}
	n := copy(t.ibuf[:], in)
	var done uint32
	err := windows.DeviceIoControl(t.h, code, &t.ibuf[0], uint32(n), &t.obuf[0], uint32(outLen), &done, t.iov)
	if errors.Is(err, windows.ERROR_IO_PENDING) {
		err = windows.GetOverlappedResult(t.h, t.iov, &done, true)
	}
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), t.obuf[:outLen]...), nil
}

// startRead issues the next overlapped read into rbuf.
func (t *tapDev) startRead() error {
	err := windows.ReadFile(t.h, t.rbuf, nil, t.rov)
	if err != nil && !errors.Is(err, windows.ERROR_IO_PENDING) {
		return err
	}
	t.rpending = true
	return nil
}

// receive returns the frame of the outstanding read if it has completed,
// nil if not, starting a read when none is outstanding.
func (t *tapDev) receive() ([]byte, error) {
	for {
		if !t.rpending {
			if err := t.startRead(); err != nil {
				return nil, err
			}
		}
		var n uint32
		err := windows.GetOverlappedResult(t.h, t.rov, &n, false)
		if errors.Is(err, windows.ERROR_IO_INCOMPLETE) {
			return nil, nil
		}
		t.rpending = false
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return t.rbuf[:n], nil
		}
	}
}

// release is a no-op: the next receive reads into the buffer again.
func (t *tapDev) release([]byte) {}

func (t *tapDev) readBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	d := t.dev
	for {
		n, err := winFillBatch(t, bufs, sizes, offset)
		if n > 0 || err != nil {
			return n, err
		}
		if err := d.wait(t.rov.HEvent, &d.readDL, d.rdlEv); err != nil {
			return 0, err
		}
	}
}

func (t *tapDev) writeBatch(bufs [][]byte, offset int) (int, error) {
	return winWriteEach(t, bufs, offset)
}

// send writes one frame and waits for the driver to take it. Cut short by
// Close or a deadline, it cancels the write and waits for the cancellation,
// so that the driver no longer reads the caller's buffer.
func (t *tapDev) send(p []byte) (bool, error) {
	if len(p) == 0 {
		return true, windows.ERROR_INVALID_PARAMETER
	}
	d := t.dev
	var n uint32
	err := windows.WriteFile(t.h, p, nil, t.wov)
	if errors.Is(err, windows.ERROR_IO_PENDING) {
		if werr := d.wait(t.wov.HEvent, &d.writeDL, d.wdlEv); werr != nil {
			windows.CancelIoEx(t.h, t.wov)
			if windows.GetOverlappedResult(t.h, t.wov, &n, true) == nil {
				return false, nil // it completed before the cancellation
			}
			return false, werr
		}
		err = windows.GetOverlappedResult(t.h, t.wov, &n, true)
	}
	if err != nil {
		return tapRefused(err), err
	}
	return false, nil
}

// tapRefused reports whether a write error concerns that frame alone.
func tapRefused(err error) bool {
	for _, e := range []windows.Errno{windows.ERROR_INVALID_PARAMETER, windows.ERROR_INVALID_USER_BUFFER,
		windows.ERROR_INSUFFICIENT_BUFFER, windows.ERROR_NOT_ENOUGH_MEMORY, windows.ERROR_NO_SYSTEM_RESOURCES,
		windows.ERROR_NOT_ENOUGH_QUOTA, windows.ERROR_INVALID_DATA, windows.ERROR_BUFFER_OVERFLOW} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (t *tapDev) luid() (uint64, error) {
	l, err := winipcfg.LUIDFromGUID(&t.guid)
	if err != nil {
		return 0, err
	}
	return uint64(l), nil
}

func (t *tapDev) hardwareAddr() (net.HardwareAddr, error) {
	mac, err := t.ioctl(winTAPIoctlGetMAC, nil, 6)
	if err != nil {
		return nil, err
	}
	return net.HardwareAddr(mac), nil
}

func (t *tapDev) setCarrier(on bool) error {
	in := make([]byte, 4)
	if on {
		binary.LittleEndian.PutUint32(in, 1)
	}
	if _, err := t.ioctl(winTAPIoctlSetMediaStatus, in, 4); err != nil {
		return winOpErr("set carrier", t.dev.name, err)
	}
	return nil
}

// teardown cancels the outstanding read, waits for it, and closes the
// handle and events.
func (t *tapDev) teardown() error {
	var err error
	if t.h != 0 {
		windows.CancelIoEx(t.h, nil)
		if t.rpending {
			var n uint32
			windows.GetOverlappedResult(t.h, t.rov, &n, true)
			t.rpending = false
		}
		err = windows.CloseHandle(t.h)
		t.h = 0
	}
	for _, ov := range []*windows.Overlapped{t.rov, t.wov, t.iov} {
		if ov != nil && ov.HEvent != 0 {
			windows.CloseHandle(ov.HEvent)
			ov.HEvent = 0
		}
	}
	return err
}
