package tunnel

import (
	"net/netip"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/uapi"
)

// setEndpoint runs for every received data packet: it must not allocate
// when the endpoint is unchanged.
func TestSetEndpointNoAlloc(t *testing.T) {
	p := &Peer{}
	ep := netip.MustParseAddrPort("192.0.2.1:51820")
	p.setEndpoint(ep)
	if n := testing.AllocsPerRun(1000, func() { p.setEndpoint(ep) }); n != 0 {
		t.Errorf("setEndpoint with an unchanged endpoint: %v allocations", n)
	}
}

// An IPv6 endpoint on an IPv4-only socket is refused, not a crash.
func TestIPv6EndpointOnIPv4Socket(t *testing.T) {
	b := &udpBatch{v4: true}
	if b.add([]byte{4}, netip.MustParseAddrPort("[2001:db8::1]:51820")) {
		t.Error("an IPv6 destination was queued on an IPv4 socket")
	}
	if !b.add([]byte{4}, netip.MustParseAddrPort("192.0.2.1:51820")) {
		t.Error("an IPv4 destination was refused")
	}
}

// A packet that the TUN reader had already routed to a peer when the peer
// was removed starts nothing: no handshake, no index entry, nothing staged.
func TestRemovedPeerStartsNothing(t *testing.T) {
	ns := nstest.New(t)
	dev, err := tun.Open(tun.Config{Name: "twr0", NetNS: ns.Name, MTU: 1420})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(dev, Options{NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	priv, _ := protocol.GeneratePrivateKey()
	other, _ := protocol.GeneratePrivateKey()
	pk := other.PublicKey()
	ep := netip.MustParseAddrPort("192.0.2.99:51820")
	if err := d.Apply(uapi.DeviceConfig{PrivateKey: &priv, Peers: []uapi.PeerConfig{{PublicKey: pk, Endpoint: &ep,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32")}}}}); err != nil {
		t.Fatal(err)
	}
	d.mu.RLock()
	p := d.peers[pk]
	d.mu.RUnlock()
	if err := d.Apply(uapi.DeviceConfig{Peers: []uapi.PeerConfig{{PublicKey: pk, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, tun.Headroom+tun.MaxPacket)
	buf[protocol.TransportHeaderSize] = 0x45
	p.sendPacket(buf, 20, nil)
	d.indices.mu.RLock()
	n := len(d.indices.m)
	d.indices.mu.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n != 0 || p.hsIndex != 0 || len(p.staged) != 0 {
		t.Errorf("after removal: %d index entries, hsIndex %d, %d packets staged", n, p.hsIndex, len(p.staged))
	}
}
