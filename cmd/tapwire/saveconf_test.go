//go:build linux

package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
)

// savedConfig keeps the file's own keys, takes the running state, keeps an
// endpoint's name, and leaves out a fwmark tapwire picked itself.
func TestSavedConfig(t *testing.T) {
	src := `[Interface]
PrivateKey = ` + key(t).String() + `
Address = 198.51.100.1/24
DNS = 192.0.2.53, example.test
MTU = 1400
Table = auto
PostUp = echo up
SaveConfig = true
Mode = tap

[Peer]
PublicKey = ` + key(t).PublicKey().String() + `
AllowedIPs = 0.0.0.0/0
Endpoint = vpn.example.test:51820
AllowedMACs = 02:00:5e:00:53:01

[Peer]
PublicKey = ` + key(t).PublicKey().String() + `
AllowedIPs = 198.51.100.3/32
`
	cfg, err := config.Parse("wg0.conf", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	newKey, added := key(t), key(t).PublicKey()
	st := devconf.DeviceStatus{PrivateKey: newKey, ListenPort: 40000, FwMark: 51820, Peers: []devconf.PeerStatus{
		{PublicKey: cfg.Peers[0].PublicKey, Endpoint: netip.MustParseAddrPort("192.0.2.7:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, PersistentKeepalive: 25},
		{PublicKey: added, Endpoint: netip.MustParseAddrPort("192.0.2.9:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32")}},
	}}
	addrs := []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.200/24")}
	out := savedConfig(cfg, st, addrs, true)
	again, err := config.Parse("wg0.conf", strings.NewReader(string(out.Marshal())))
	if err != nil {
		t.Fatalf("the saved file does not parse: %v\n%s", err, out.Marshal())
	}
	in := again.Interface
	if !in.PrivateKey.Equal(newKey) || in.ListenPort != 40000 || in.FwMark != 0 || len(in.Addresses) != 2 ||
		in.MTU != 1400 || in.Table != config.TableAuto() || len(in.DNS) != 2 || len(in.PostUp) != 1 || !in.SaveConfig || in.Mode != config.ModeTAP {
		t.Errorf("interface %+v", in)
	}
	if len(again.Peers) != 2 {
		t.Fatalf("%d peers saved, want the 2 running (one removed, one added): %s", len(again.Peers), out.Marshal())
	}
	p0, p1 := again.Peers[0], again.Peers[1]
	if !p0.PublicKey.Equal(cfg.Peers[0].PublicKey) {
		p0, p1 = p1, p0
	}
	if p0.Endpoint != "vpn.example.test:51820" || p0.PersistentKeepalive != 25*time.Second || len(p0.AllowedMACs) != 1 {
		t.Errorf("kept peer %+v: want its endpoint's name, keepalive 25, its allowed MAC", p0)
	}
	if !p1.PublicKey.Equal(added) || p1.Endpoint != "192.0.2.9:51820" || len(p1.AllowedIPs) != 1 {
		t.Errorf("added peer %+v", p1)
	}
	if got := savedConfig(cfg, st, nil, false); got.Interface.FwMark != 51820 || len(got.Interface.Addresses) != 1 {
		t.Errorf("a fwmark set by hand is saved, and the file's addresses stay when the interface's are unknown: %+v", got.Interface)
	}
}

func TestWriteFileAtomicKeepsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wg0.conf")
	os.WriteFile(p, []byte("old"), 0o640)
	if err := writeFileAtomic(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	b, _ := os.ReadFile(p)
	if string(b) != "new" || fi.Mode().Perm() != 0o640 {
		t.Errorf("%q, mode %v", b, fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".wg0.conf.tmp*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestSaveConfigRoundTrip brings up a file with SaveConfig = true, adds a
// peer with wg set, brings it down: the file now has the peer, keeps its
// mode, and the next up has the peer again.
func TestSaveConfigRoundTrip(t *testing.T) {
	requireWGTool(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	me := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, port: 51031}
	other := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51032}
	conf := writeConf(t, dir, "twsave", me, "SaveConfig = true\nPostUp = true", other)
	if err := os.Chmod(conf, 0o640); err != nil {
		t.Fatal(err)
	}
	up(t, ns, conf)
	added := key(t).PublicKey()
	ns.Run("wg", "set", "twsave", "peer", added.String(), "allowed-ips", "198.51.100.9/32", "endpoint", "192.0.2.9:51820", "persistent-keepalive", "25")
	if out, err := tapwireIn(t, ns, "down", conf); err != nil {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	saved := string(b)
	for _, want := range []string{"PublicKey = " + added.String(), "AllowedIPs = 198.51.100.9/32", "Endpoint = 192.0.2.9:51820",
		"PersistentKeepalive = 25", "PublicKey = " + other.key.PublicKey().String(), "Address = 198.51.100.1/24", "SaveConfig = true",
		"PostUp = true", "ListenPort = 51031"} {
		if !strings.Contains(saved, want) {
			t.Errorf("the saved file lacks %q:\n%s", want, saved)
		}
	}
	if fi, _ := os.Stat(conf); fi.Mode().Perm() != 0o640 {
		t.Errorf("the saved file's mode is %v, want 0640 kept", fi.Mode())
	}
	up(t, ns, conf)
	if dump := ns.Run("wg", "show", "twsave", "dump"); !strings.Contains(dump, added.String()) {
		t.Errorf("after up again, wg does not show the saved peer:\n%s", dump)
	}
}
