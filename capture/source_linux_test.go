package capture

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/tun"
)

// quietNS turns IPv6 off for the namespace's new interfaces, so that the
// kernel sends nothing (router solicitations, MLD reports) but what a test
// provokes.
func quietNS(ns *nstest.NS) {
	ns.Run("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
}

// readOne reads a packet from src, or fails after a while.
func readOne(t *testing.T, src Source) Packet {
	t.Helper()
	type result struct {
		p   Packet
		err error
	}
	c := make(chan result, 1)
	go func() {
		p, err := src.ReadPacket()
		c <- result{p, err}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("read %s: %v", src.Name(), r.err)
		}
		return r.p
	case <-time.After(10 * time.Second):
		src.Close()
		t.Fatalf("nothing to read on %s", src.Name())
	}
	return Packet{}
}

// A device of our own, and the same device watched as an existing
// interface: both see the echo request the kernel routes into it, as raw IP
// on TUN and Ethernet on TAP.
func TestCaptureSources(t *testing.T) {
	nstest.RequireRoot(t)
	for _, mode := range []tun.Mode{tun.ModeTUN, tun.ModeTAP} {
		t.Run(mode.String(), func(t *testing.T) {
			nstest.RequireRoot(t)
			nstest.GuardHost(t)
			ns := nstest.New(t)
			quietNS(ns)
			dev, err := OpenDevice(DeviceConfig{Mode: mode, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}, NetNS: ns.Name})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			if !strings.HasPrefix(dev.Name(), "twcap") {
				t.Errorf("device name %q, want twcapN", dev.Name())
			}
			if _, err := OpenDevice(DeviceConfig{Name: dev.Name(), Mode: mode, NetNS: ns.Name}); err == nil {
				t.Errorf("OpenDevice took over the existing device %s", dev.Name())
			}
			iface, err := OpenInterface(dev.Name(), ns.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer iface.Close()
			wantLT := map[tun.Mode]layers.LinkType{tun.ModeTUN: layers.LinkTypeRaw, tun.ModeTAP: layers.LinkTypeEthernet}[mode]
			if dev.LinkType() != wantLT || iface.LinkType() != wantLT {
				t.Errorf("link types: device %v, interface %v; want %v", dev.LinkType(), iface.LinkType(), wantLT)
			}

			ns.Output("ping", "-c", "1", "-W", "1", "192.0.2.2") // no answer
			want := "IP 192.0.2.1 > 192.0.2.2: ICMP echo request"
			if mode == tun.ModeTAP {
				want = "ARP, Request who-has 192.0.2.2 tell 192.0.2.1"
			}
			for _, src := range []Source{dev, iface} {
				p := readOne(t, src)
				line := Line(p, Decode(p, src.LinkType()))
				if !strings.Contains(line, want) || p.Direction != DirOut || p.Length != len(p.Data) ||
					time.Since(p.Timestamp) > time.Minute {
					t.Errorf("%T read %q (%d of %d bytes, %v), want an outgoing %q", src, line, len(p.Data), p.Length, p.Direction, want)
				}
			}

			// Close unblocks a read, which then says so.
			errc := make(chan error, 1)
			go func() {
				for {
					if _, err := iface.ReadPacket(); err != nil {
						errc <- err
						return
					}
				}
			}()
			time.Sleep(20 * time.Millisecond)
			iface.Close()
			dev.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("read after Close: %v, want os.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock ReadPacket")
			}
			if _, err := dev.ReadPacket(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("device read after Close: %v, want os.ErrClosed", err)
			}
		})
	}
}

func TestCaptureOpenInterfaceMissing(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	if _, err := OpenInterface("nosuch0", ns.Name); err == nil || !strings.Contains(err.Error(), "nosuch0") || !errors.Is(err, unix.ENODEV) {
		t.Errorf("OpenInterface(nosuch0) = %v, want an error naming it that is ENODEV", err)
	}
}
