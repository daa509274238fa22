package tun_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/tapwire/tapwire/tun"
)

const tunPrefix = "utun"

// configureTUN gives a utun device its addresses, point-to-point, as
// wg-quick does on macOS.
func configureTUN(t *testing.T, name string, a testAddrs) {
	t.Helper()
	run(t, "ifconfig", name, "inet", a.local4.String(), a.peer4.String(), "up")
	run(t, "ifconfig", name, "inet6", a.local6.String(), "prefixlen", "128", "alias")
	run(t, "route", "-q", "-n", "add", "-inet6", a.peer6.String()+"/128", "-interface", name)
}

func TestDarwinNotSupported(t *testing.T) {
	t.Parallel()
	var ne *tun.NotSupportedError
	if _, err := tun.Open(tun.Config{Mode: tun.ModeTAP}); !errors.As(err, &ne) || ne.OS != runtime.GOOS {
		t.Errorf("Open(TAP) = %v, want a NotSupportedError", err)
	}
	if _, err := tun.Attach(tun.Config{Name: "utun3"}); !errors.As(err, &ne) {
		t.Errorf("Attach = %v, want a NotSupportedError", err)
	}
	if _, err := tun.Open(tun.Config{Name: "tun0"}); err == nil || errors.As(err, &ne) {
		t.Errorf("Open(tun0) = %v, want an error about utun names", err)
	}
	f, err := tun.ProbeFeatures()
	if err != nil || !f.TUN || f.TAP || !f.NoPI || f.MultiQueue || f.VnetHdr {
		t.Errorf("ProbeFeatures = %+v, %v", f, err)
	}
}

// TestUtunUnitName opens utunN by name and wraps a duplicate of its
// descriptor with FromFD.
func TestUtunUnitName(t *testing.T) {
	requireRoot(t)
	first, err := tun.Open(tun.Config{Name: "utun"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// A high unit is very likely free.
	dev, err := tun.Open(tun.Config{Name: "utun199"})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if dev.Name() != "utun199" {
		t.Errorf("Open(utun199) made %s", dev.Name())
	}
	if _, err := tun.Open(tun.Config{Name: "utun199"}); err == nil {
		t.Error("a second Open(utun199) succeeded")
	}
}
