package main

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/wgquick"
)

// TestSyncConfig: what a reload sends the device (wg syncconf's
// transaction, tapwire's way with ports and endpoints) and which keys it
// says take a restart.
func TestSyncConfig(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	priv := key(t)
	kept, gone, added := key(t).PublicKey(), key(t).PublicKey(), key(t).PublicKey()
	byWGSet := key(t).PublicKey() // added with wg set, not in the file
	parse := func(text string) *config.Config {
		cfg, err := config.Parse("wg0.conf", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	head := "[Interface]\nPrivateKey = " + priv.String() + "\n"
	peer := func(k protocol.Key, rest string) string {
		return "\n[Peer]\nPublicKey = " + k.String() + "\n" + rest
	}
	old := parse(head + "ListenPort = 51820\nAddress = 198.51.100.1/24\nMTU = 1400\n" +
		peer(kept, "AllowedIPs = 198.51.100.2/32\nEndpoint = 192.0.2.2:51820\n") +
		peer(gone, "AllowedIPs = 198.51.100.3/32\n"))
	cur := devconf.DeviceStatus{PrivateKey: priv, ListenPort: 51820, Peers: []devconf.PeerStatus{
		{PublicKey: kept, Endpoint: netip.MustParseAddrPort("192.0.2.22:40000"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32")}}, // roamed
		{PublicKey: gone, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.3/32")}},
		{PublicKey: byWGSet},
	}}
	plan, err := wgquick.NewPlan(old, "wg0", wgquick.Host{})
	if err != nil {
		t.Fatal(err)
	}
	pf := factsOf(plan)
	if !pf.routes || pf.rules || !slices.Contains(pf.routed, netip.MustParsePrefix("198.51.100.0/24")) {
		t.Errorf("factsOf: %+v", pf)
	}

	// No ListenPort now, a new MTU, kept's allowed IPs grown, gone
	// removed, added new with an endpoint.
	next := parse(head + "Address = 198.51.100.1/24\nMTU = 1380\n" +
		peer(kept, "AllowedIPs = 198.51.100.2/32, 203.0.113.0/24\nEndpoint = 192.0.2.2:51820\nPersistentKeepalive = 25\n") +
		peer(added, "AllowedIPs = 198.51.100.4/32\nEndpoint = 192.0.2.4:51820\n"))
	dc, restart := syncConfig(old, next, cur, pf, quiet)
	if dc.ReplacePeers || dc.ListenPort != nil || dc.FwMark != nil || dc.PrivateKey == nil || !dc.PrivateKey.Equal(priv) {
		t.Errorf("device: ReplacePeers %v, ListenPort %v, FwMark %v, PrivateKey set %v", dc.ReplacePeers, dc.ListenPort, dc.FwMark, dc.PrivateKey != nil)
	}
	peers := map[protocol.Key]devconf.PeerConfig{}
	for _, pc := range dc.Peers {
		peers[pc.PublicKey] = pc
	}
	if pc := peers[kept]; pc.Endpoint != nil || !pc.ReplaceAllowedIPs || len(pc.AllowedIPs) != 2 || pc.PersistentKeepalive == nil || *pc.PersistentKeepalive != 25 {
		t.Errorf("kept peer: %+v; want its allowed IPs replaced, the keepalive set and the endpoint it roamed to left alone", pc)
	}
	if pc := peers[added]; pc.Remove || pc.Endpoint == nil || pc.Endpoint.String() != "192.0.2.4:51820" {
		t.Errorf("new peer: %+v", pc)
	}
	for _, k := range []protocol.Key{gone, byWGSet} {
		if !peers[k].Remove {
			t.Errorf("peer %s is not in the file but is not removed: %+v", k, peers[k])
		}
	}
	if want := []string{"AllowedIPs (no route yet: 203.0.113.0/24)", "MTU"}; !slices.Equal(restart, want) {
		t.Errorf("restart keys %q, want %q", restart, want)
	}

	// The endpoint line changed: set, roaming or not. A new port, a
	// fwmark; policy rules keep the fwmark as it is.
	moved := parse(head + "ListenPort = 51821\nFwMark = 0x99\nAddress = 198.51.100.1/24\nMTU = 1400\n" +
		peer(kept, "AllowedIPs = 198.51.100.2/32\nEndpoint = 192.0.2.9:51820\n") +
		peer(gone, "AllowedIPs = 198.51.100.3/32\n"))
	dc, restart = syncConfig(old, moved, cur, pf, quiet)
	if dc.ListenPort == nil || *dc.ListenPort != 51821 || dc.FwMark == nil || *dc.FwMark != 0x99 || len(restart) != 0 {
		t.Errorf("ListenPort %v, FwMark %v, restart %q", dc.ListenPort, dc.FwMark, restart)
	}
	for _, pc := range dc.Peers {
		if pc.PublicKey.Equal(kept) && (pc.Endpoint == nil || pc.Endpoint.String() != "192.0.2.9:51820") {
			t.Errorf("an Endpoint line that changed is not applied: %+v", pc)
		}
	}
	pf.rules = true
	dc, restart = syncConfig(old, moved, cur, pf, quiet)
	if dc.FwMark != nil || !slices.Equal(restart, []string{"FwMark (policy rules route by it)"}) {
		t.Errorf("with policy rules: FwMark %v, restart %q", dc.FwMark, restart)
	}
}
