package tunnel

import (
	"errors"
	"syscall"
	"testing"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// Apply refuses a Transport it does not know before changing anything, with
// the EINVAL the UAPI reports, and applies the ones it knows.
func TestApplyTransport(t *testing.T) {
	t.Parallel()
	d := newMemWorld().start(t, "tr", tun.ModeTUN, "192.0.2.1:51820", "").d
	other, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := other.PublicKey()
	bad := devconf.Transport(9)
	err = d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pub}, {PublicKey: pub, Transport: &bad}}})
	var de *devconf.Error
	if !errors.As(err, &de) || de.Code() != syscall.EINVAL {
		t.Fatalf("Apply with Transport(9) = %v, want a *devconf.Error with EINVAL", err)
	}
	if n := len(d.Status().Peers); n != 0 {
		t.Errorf("a failed Apply left %d peers", n)
	}
	for _, want := range []devconf.Transport{devconf.TransportUDP, devconf.TransportTCP, devconf.TransportAuto} {
		if err := d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pub, Transport: &want}}}); err != nil {
			t.Fatal(err)
		}
		if ps := d.Info().(Info).Peers; len(ps) != 1 || ps[0].Transport != want.String() {
			t.Errorf("after Apply with Transport %v: peers %+v", want, ps)
		}
	}
	// nil leaves it.
	if err := d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: pub}}}); err != nil {
		t.Fatal(err)
	}
	if ps := d.Info().(Info).Peers; len(ps) != 1 || ps[0].Transport != "auto" {
		t.Errorf("after Apply without a Transport: peers %+v", ps)
	}
}
