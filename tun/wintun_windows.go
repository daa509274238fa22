package tun

import (
	"errors"
	"net"
	"strings"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wintun"
)

// wintunRing is the capacity of each of a Wintun session's two rings, as
// wireguard-go uses: 8 MiB.
const wintunRing = 0x800000

// wintunTunnelType is the tunnel type Wintun adapters are created with,
// which names their device class in Device Manager.
const wintunTunnelType = "tapwire"

// wintunDev is a Wintun adapter with a running session.
type wintunDev struct {
	dev      *Device
	adapter  *wintun.Adapter
	session  wintun.Session
	readWait windows.Handle // the session's read-wait event; Wintun owns it
}

// loadWintunDLL loads wintun.dll from where the wintun package looks for it.
func loadWintunDLL() (windows.Handle, error) {
	return windows.LoadLibraryEx("wintun.dll", 0,
		windows.LOAD_LIBRARY_SEARCH_APPLICATION_DIR|windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
}

func openWintun(d *Device, cfg Config, attach bool) (winBackend, string, error) {
	name := cfg.Name
	if name == "" {
		name = winDefaultName
	}
	op := "create"
	if attach {
		op = "attach"
	}
	// Fail early, with the hint, when the DLL is missing: the wintun
	// package's own error says only that a module was not found.
	h, err := loadWintunDLL()
	if err != nil {
		return nil, name, wintunErr(op, name, err)
	}
	windows.FreeLibrary(h)

	var ad *wintun.Adapter
	var openErr error
	if strings.Contains(name, "%d") {
		if name, err = winExpandName(name, aliasExists); err != nil {
			return nil, name, err
		}
	} else if attach || !cfg.Exclusive {
		ad, openErr = wintun.OpenAdapter(name)
		if err = openErr; err != nil && attach {
			e := wintunErr(op, name, err).(*OpError)
			if e.Hint == "" {
				e.Hint = "no Wintun adapter of that name is open; Wintun removes an adapter when the program that made it closes it"
			}
			return nil, name, e
		}
	}
	if ad == nil {
		if aliasExists(name) {
			if cfg.Exclusive || openErr == nil {
				return nil, name, winOpErr(op, name, windows.ERROR_ALREADY_EXISTS)
			}
			// Not a Wintun adapter we may open: say why rather than let
			// Wintun make a second interface beside it.
			e := wintunErr(op, name, openErr).(*OpError)
			if e.Hint == "" {
				e.Hint = "an interface of this name exists and is not a Wintun adapter this program can open; pick another name"
			}
			return nil, name, e
		}
		d1, d2, d3, d4 := winNameGUID(name)
		guid := windows.GUID{Data1: d1, Data2: d2, Data3: d3, Data4: d4}
		if ad, err = wintun.CreateAdapter(name, wintunTunnelType, &guid); err != nil {
			return nil, name, wintunErr(op, name, err)
		}
	}
	sess, err := ad.StartSession(wintunRing)
	if err != nil {
		ad.Close()
		e := wintunErr("start session on", name, err).(*OpError)
		if e.Hint == "" && errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			e.Hint = "another program runs a session on this adapter"
		}
		return nil, name, e
	}
	w := &wintunDev{dev: d, adapter: ad, session: sess, readWait: sess.ReadWaitEvent()}
	return w, name, nil
}

// wintunErr wraps an error of the wintun package with a hint.
func wintunErr(op, name string, err error) error {
	e := winOpErr(op, name, err).(*OpError)
	switch {
	case errors.Is(err, windows.ERROR_MOD_NOT_FOUND):
		e.Hint = winWintunHint
	case errors.Is(err, windows.ERROR_BAD_EXE_FORMAT):
		e.Hint = "wintun.dll is of another architecture: use the one for this program's (amd64, arm64, ...) from https://www.wintun.net"
	}
	return e
}

// readBatch waits on the session's read-wait event while the ring is
// empty, then drains it.
func (w *wintunDev) readBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	d := w.dev
	for {
		n, err := winFillBatch(w, bufs, sizes, offset)
		if n > 0 || err != nil {
			return n, err
		}
		if err := d.wait(w.readWait, &d.readDL, d.rdlEv); err != nil {
			return 0, err
		}
	}
}

// receive takes the next packet from the receive ring, nil when it is empty.
func (w *wintunDev) receive() ([]byte, error) {
	p, err := w.session.ReceivePacket()
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, windows.ERROR_NO_MORE_ITEMS):
		return nil, nil
	case errors.Is(err, windows.ERROR_HANDLE_EOF):
		return nil, ErrDeviceRemoved
	case errors.Is(err, windows.ERROR_INVALID_DATA):
		return nil, errors.New("wintun receive ring is corrupt")
	}
	return nil, err
}

// release gives a received packet's room back to the ring.
func (w *wintunDev) release(p []byte) { w.session.ReleaseReceivePacket(p) }

func (w *wintunDev) writeBatch(bufs [][]byte, offset int) (int, error) {
	return winWriteEach(w, bufs, offset)
}

// send copies one packet into the send ring. Wintun never blocks a writer:
// a full ring refuses the packet.
func (w *wintunDev) send(p []byte) (bool, error) {
	if len(p) == 0 || len(p) > wintun.PacketSizeMax {
		return true, windows.ERROR_INVALID_PARAMETER
	}
	buf, err := w.session.AllocateSendPacket(len(p))
	switch {
	case err == nil:
		copy(buf, p)
		w.session.SendPacket(buf)
		return false, nil
	case errors.Is(err, windows.ERROR_BUFFER_OVERFLOW):
		return true, err // the ring is full: dropped
	case errors.Is(err, windows.ERROR_HANDLE_EOF):
		return false, ErrDeviceRemoved
	}
	return false, err
}

func (w *wintunDev) luid() (uint64, error) { return w.adapter.LUID(), nil }

func (w *wintunDev) hardwareAddr() (net.HardwareAddr, error) {
	return nil, windows.ERROR_NOT_SUPPORTED
}

func (w *wintunDev) setCarrier(bool) error {
	return &NotSupportedError{Feature: "carrier state of a Wintun (TUN) adapter", OS: "windows"}
}

// teardown ends the session and closes the adapter, which removes it if
// this device created it.
func (w *wintunDev) teardown() error {
	w.session.End()
	return w.adapter.Close()
}
