//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/internal/privdrop"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/uapi"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	// Interfaces the tests bring up keep their pid files and logs in a
	// directory of their own, not in /var/run/tapwire.
	run, err := os.MkdirTemp("", "tapwire-run")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(runDirEnv, run)
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.RemoveAll(run)
	os.Exit(code)
}

// binaries builds tapwire and tapwire-go once and returns their folder.
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "tapwire-bin"); binErr != nil {
			return
		}
		for _, pkg := range []string{"github.com/tapwire/tapwire/cmd/tapwire", "github.com/tapwire/tapwire/cmd/tapwire-go"} {
			out, err := exec.Command("go", "build", "-o", binDir, pkg).CombinedOutput()
			if err != nil {
				binErr = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

type wgEnd struct {
	key   protocol.Key
	addr  []string // inner addresses with prefix
	under string   // underlay address
	port  int
}

// writeConf writes a wg-quick file for me with the given peers.
func writeConf(t *testing.T, dir, name string, me wgEnd, extra string, peers ...wgEnd) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nListenPort = %d\nAddress = %s\n%s\n", me.key, me.port, strings.Join(me.addr, ", "), extra)
	for _, p := range peers {
		var allowed []string
		for _, a := range p.addr {
			ip, _, _ := strings.Cut(a, "/")
			if strings.Contains(ip, ":") {
				allowed = append(allowed, ip+"/128")
			} else {
				allowed = append(allowed, ip+"/32")
			}
		}
		ep := p.under
		if strings.Contains(ep, ":") {
			ep = "[" + ep + "]"
		}
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = %s:%d\n", p.key.PublicKey(), strings.Join(allowed, ", "), ep, p.port)
	}
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tapwireIn runs the built tapwire in ns.
func tapwireIn(t *testing.T, ns *nstest.NS, args ...string) (string, error) {
	return ns.Output(filepath.Join(binaries(t), "tapwire"), args...)
}

// up runs tapwire up on conf in ns, and tapwire down when the test ends.
// It returns the output of tapwire up.
func up(t *testing.T, ns *nstest.NS, conf string) string {
	t.Helper()
	out, err := tapwireIn(t, ns, "up", conf)
	if err != nil || !strings.Contains(out, "is up") {
		t.Fatalf("tapwire up %s: %v\n%s", conf, err, out)
	}
	t.Cleanup(func() { tapwireIn(t, ns, "down", conf) })
	return out
}

func TestUpDown(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	na, nb := nstest.New(t), nstest.New(t)
	na.Link(nb, "twva", "twvb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24", "2001:db8:2::1/64"}, under: "192.0.2.1", port: 51011}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24", "2001:db8:2::2/64"}, under: "192.0.2.2", port: 51012}
	confA := writeConf(t, dir, "twupa", a, "MTU = 1400\nPostUp = echo up %i > "+filepath.Join(dir, "hook"), b)
	confB := writeConf(t, dir, "twupb", b, "", a)

	// A private key others may read: a warning, as wg-quick gives, and up all the same.
	if err := os.Chmod(confA, 0o644); err != nil {
		t.Fatal(err)
	}
	out := up(t, na, confA)
	if !strings.Contains(out, "warning: "+confA+" holds a private key") || !strings.Contains(out, "chmod 600 "+confA) {
		t.Errorf("tapwire up on a 0644 file gave no warning with the fix:\n%s", out)
	}
	// The log goes to $TAPWIRE_RUN_DIR, which TestMain set.
	if log := filepath.Join(runDir(), "twupa.log"); !strings.Contains(out, "(log: "+log+")") {
		t.Errorf("tapwire up does not log to %s:\n%s", log, out)
	} else if _, err := os.Stat(log); err != nil {
		t.Error(err)
	}
	if out := up(t, nb, confB); strings.Contains(out, "warning") {
		t.Errorf("tapwire up on a 0600 file warns:\n%s", out)
	}
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)
	pingtest.Ping(t, nb, "2001:db8:2::1", 3, 1300)
	if hook, _ := os.ReadFile(filepath.Join(dir, "hook")); strings.TrimSpace(string(hook)) != "up twupa" {
		t.Errorf("PostUp hook wrote %q", hook)
	}
	if out := na.Run("ip", "link", "show", "twupa"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("MTU not applied:\n%s", out)
	}
	dump := na.Run("wg", "show", "twupa", "dump")
	if !strings.Contains(dump, b.key.PublicKey().String()+"\t(none)\t192.0.2.2:51012\t") {
		t.Errorf("wg show dump:\n%s", dump)
	}
	out, err := tapwireIn(t, na, "down", confA)
	if err != nil || !strings.Contains(out, "is down") {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	if _, err := na.Output("ip", "link", "show", "twupa"); err == nil {
		t.Error("interface still there after tapwire down")
	}
	if _, err := os.Stat("/var/run/wireguard/twupa.sock"); err == nil {
		t.Error("UAPI socket left behind")
	}
}

func TestUpBadConfigSetsNothingUp(t *testing.T) {
	ns := nstest.New(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "twbad0.conf")
	os.WriteFile(bad, []byte("[Interface]\nPrivateKey = "+key(t).String()+"\nAddress = 198.51.100.1/24\nListenPort = 99999\n"), 0o600)
	out, err := tapwireIn(t, ns, "up", bad)
	if err == nil || !strings.Contains(out, bad+":4") || !strings.Contains(strings.ToLower(out), "listenport") {
		t.Errorf("bad config: %v\n%s", err, out)
	}
	if links := ns.Run("ip", "-o", "link"); strings.Contains(links, "twbad0") {
		t.Errorf("a bad config left an interface:\n%s", links)
	}
}

func requireWGTool(t *testing.T) {
	for _, tool := range []string{"wg", "wg-quick"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian package wireguard-tools; the README's test command installs it)", tool)
		}
	}
}

// TestWGQuickWithTapwireGo brings an interface with two peers and IPv6 up
// and down with an unmodified wg-quick, using tapwire-go as its userspace
// implementation, as one would use wireguard-go.
func TestWGQuickWithTapwireGo(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	bin := binaries(t)
	na, nb, nc := nstest.New(t), nstest.New(t), nstest.New(t)
	na.Link(nb, "twvb", "twva", []string{"2001:db8:1::1/64"}, []string{"2001:db8:1::2/64"})
	na.Link(nc, "twvc", "twva", []string{"203.0.113.1/24"}, []string{"203.0.113.2/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24", "2001:db8:2::1/64"}, port: 51021}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24", "2001:db8:2::2/64"}, under: "2001:db8:1::2", port: 51022}
	c := wgEnd{key: key(t), addr: []string{"198.51.100.3/24", "2001:db8:2::3/64"}, under: "203.0.113.2", port: 51023}
	aForB, aForC := a, a
	aForB.under, aForC.under = "2001:db8:1::1", "203.0.113.1"
	confA := writeConf(t, dir, "twgq0", a, "", b, c)
	for _, side := range []struct {
		ns   *nstest.NS
		conf string
	}{{nb, writeConf(t, dir, "twgqb", b, "", aForB)}, {nc, writeConf(t, dir, "twgqc", c, "", aForC)}} {
		if out, err := tapwireIn(t, side.ns, "up", side.conf); err != nil {
			t.Fatalf("tapwire up: %v\n%s", err, out)
		}
		t.Cleanup(func() { tapwireIn(t, side.ns, "down", side.conf) })
	}

	wgQuick := func(verb string) (string, error) {
		cmd := na.Command("wg-quick", verb, confA)
		cmd.Env = append(os.Environ(), "WG_QUICK_USERSPACE_IMPLEMENTATION=tapwire-go", "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := wgQuick("up")
	if err != nil {
		t.Fatalf("wg-quick up with tapwire-go: %v\n%s", err, out)
	}
	t.Cleanup(func() { wgQuick("down") })
	for _, dst := range []string{"198.51.100.2", "198.51.100.3", "2001:db8:2::2", "2001:db8:2::3"} {
		pingtest.Ping(t, na, dst, 3, 56)
	}
	show := na.Run("wg", "show", "twgq0")
	if strings.Count(show, "latest handshake:") != 2 {
		t.Errorf("wg show after pinging both peers:\n%s", show)
	}
	// tapwire-go runs no program after start: it dropped to CAP_NET_ADMIN
	// and CAP_NET_BIND_SERVICE, and wg-quick's work went on.
	requireCaps(t, processOf(t, filepath.Join(bin, "tapwire-go"), "twgq0"), 1<<privdrop.NetAdmin|1<<privdrop.NetBindService)
	if out, err := wgQuick("down"); err != nil {
		t.Fatalf("wg-quick down: %v\n%s", err, out)
	}
	// wg-quick down deletes the interface; tapwire-go must notice and exit.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat("/var/run/wireguard/twgq0.sock"); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tapwire-go still serving after wg-quick down")
		}
	}
}

func TestKeyCommands(t *testing.T) {
	bin := filepath.Join(binaries(t), "tapwire")
	priv, err := exec.Command(bin, "genkey").Output()
	if err != nil {
		t.Fatal(err)
	}
	k, err := protocol.ParseKey(strings.TrimSpace(string(priv)))
	if err != nil {
		t.Fatalf("genkey printed %q: %v", priv, err)
	}
	cmd := exec.Command(bin, "pubkey")
	cmd.Stdin = strings.NewReader(string(priv))
	pub, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(pub)) != k.PublicKey().String() {
		t.Errorf("pubkey: %q, %v", pub, err)
	}
	if wg, err := exec.LookPath("wg"); err == nil {
		cmd := exec.Command(wg, "pubkey")
		cmd.Stdin = strings.NewReader(string(priv))
		if want, _ := cmd.Output(); string(want) != string(pub) {
			t.Errorf("wg pubkey says %q, tapwire pubkey %q", want, pub)
		}
	}
	psk, err := exec.Command(bin, "genpsk").Output()
	if _, perr := protocol.ParseKey(strings.TrimSpace(string(psk))); err != nil || perr != nil {
		t.Errorf("genpsk: %q %v %v", psk, err, perr)
	}
}

// TestUpDefaultRoute sends everything through the tunnel (AllowedIPs
// 0.0.0.0/0, ::/0) as wg-quick does: a host behind the peer is reached
// through the tunnel while the tunnel's own packets still go out the veth,
// and taking the interface down removes the policy rules.
func TestUpDefaultRoute(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	na, nb := nstest.New(t), nstest.New(t)
	na.Link(nb, "twva", "twvb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	// Something "on the internet" behind b: an address only b has.
	nb.Run("ip", "addr", "add", "203.0.113.9/32", "dev", "lo")
	nb.Run("ip", "addr", "add", "2001:db8:9::9/128", "dev", "lo")
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24", "2001:db8:2::1/64"}, under: "192.0.2.1", port: 51031}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24", "2001:db8:2::2/64"}, under: "192.0.2.2", port: 51032}
	confA := writeConf(t, dir, "twdra", a, "", b)
	// a's peer b takes everything.
	raw, _ := os.ReadFile(confA)
	conf := strings.Replace(string(raw), "AllowedIPs = 198.51.100.2/32, 2001:db8:2::2/128", "AllowedIPs = 0.0.0.0/0, ::/0", 1)
	os.WriteFile(confA, []byte(conf), 0o600)
	confB := writeConf(t, dir, "twdrb", b, "", a)
	for _, c := range []struct {
		ns   *nstest.NS
		conf string
	}{{nb, confB}, {na, confA}} {
		if out, err := tapwireIn(t, c.ns, "up", c.conf); err != nil {
			t.Fatalf("tapwire up %s: %v\n%s", c.conf, err, out)
		}
		t.Cleanup(func() { tapwireIn(t, c.ns, "down", c.conf) })
	}
	pingtest.Ping(t, na, "203.0.113.9", 3, 56)
	pingtest.Ping(t, na, "2001:db8:9::9", 3, 56)
	if route := na.Run("ip", "route", "get", "203.0.113.9"); !strings.Contains(route, "dev twdra") {
		t.Errorf("203.0.113.9 not routed through the tunnel: %s", route)
	}
	rules := na.Run("ip", "rule", "show")
	if !strings.Contains(rules, "not from all fwmark 0xca6c lookup 51820") || !strings.Contains(rules, "suppress_prefixlength 0") {
		t.Errorf("policy rules:\n%s", rules)
	}
	if dump := na.Run("wg", "show", "twdra", "fwmark"); strings.TrimSpace(dump) != "0xca6c" {
		t.Errorf("wg show fwmark: %q", dump)
	}
	if out, err := tapwireIn(t, na, "down", confA); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if rules := na.Run("ip", "rule", "show"); strings.Contains(rules, "51820") || strings.Contains(rules, "suppress") {
		t.Errorf("rules left after down:\n%s", rules)
	}
}

// TestTapwireGoExitsWhenSocketRemoved: like wireguard-go, tapwire-go stops
// (and its interface goes) when its UAPI socket file is deleted.
func TestTapwireGoExitsWhenSocketRemoved(t *testing.T) {
	ns := nstest.New(t)
	cmd := ns.Command(filepath.Join(binaries(t), "tapwire-go"), "-f", "twsock0")
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	sock := "/var/run/wireguard/twsock0.sock"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tapwire-go made no socket")
		}
	}
	os.Remove(sock)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("tapwire-go exited with %v", err)
		}
		exited <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("tapwire-go still running 5 s after its socket was removed")
	}
	if _, err := ns.Output("ip", "link", "show", "twsock0"); err == nil {
		t.Error("interface still there")
	}
}

// TestUpTap brings up a TAP tunnel with tapwire up: a server side whose tap
// joins a bridge tapwire creates (its address goes on the bridge), with a
// LAN host behind the bridge, and a client in the LAN's subnet.
func TestUpTap(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	na, nb, lan := nstest.New(t), nstest.New(t), nstest.New(t)
	na.Link(nb, "twva", "twvb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	na.Link(lan, "lanport", "lan0", nil, []string{"198.51.100.100/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "192.0.2.1", port: 51011}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51012}
	confA := writeConf(t, dir, "twupa", a, "Mode = tap\nBridge = twbr0\nMACAgeing = 60\nFloodLimit = 500", b)
	confB := writeConf(t, dir, "twupb", b, "Mode = tap", a)
	up(t, na, confA)
	up(t, nb, confB)
	if out := na.Run("ip", "-d", "link", "show", "twupa"); !strings.Contains(out, "master twbr0") || !strings.Contains(out, "tun type tap") {
		t.Errorf("twupa is not a tap in bridge twbr0:\n%s", out)
	}
	if out := na.Run("ip", "addr", "show", "twbr0"); !strings.Contains(out, "198.51.100.1/24") {
		t.Errorf("the address is not on the bridge:\n%s", out)
	}
	if out := nb.Run("ip", "link", "show", "twupb"); !strings.Contains(out, "mtu 1500") {
		t.Errorf("default TAP MTU is not 1500:\n%s", out)
	}
	na.Run("ip", "link", "set", "lanport", "master", "twbr0")
	if out := na.Run("ip", "link", "show", "twbr0"); !strings.Contains(out, "mtu 1500") {
		t.Errorf("the bridge lost its 1500-byte MTU:\n%s", out)
	}
	pingtest.Ping(t, nb, "198.51.100.1", 3, 56)
	// Full-size packets with DF both ways between the LAN host (MTU 1500)
	// and the client, over a 1500-byte path: in fragments inside the tunnel.
	pingtest.PingDF(t, nb, "198.51.100.100", 3, 1472)
	pingtest.PingDF(t, lan, "198.51.100.2", 3, 1472)

	out, err := tapwireIn(t, nb, "status", "twupb")
	if err != nil {
		t.Fatalf("tapwire status: %v\n%s", err, out)
	}
	for _, want := range []string{"interface: twupb", "mode: tap (Ethernet frames up to 1518 bytes, MTU 1500)",
		"peer: " + a.key.PublicKey().String(), "mss clamp: 1380 (IPv4), 1360 (IPv6)", "mac table (", "local (twupb)",
		"path mtu: 1500 (probed", "frames up to 1438 bytes in one datagram, larger ones in fragments"} {
		if !strings.Contains(out, want) {
			t.Errorf("tapwire status lacks %q:\n%s", want, out)
		}
	}
	out, err = tapwireIn(t, na, "status", "--json", "twupa")
	if err != nil {
		t.Fatalf("tapwire status --json: %v\n%s", err, out)
	}
	var infos []struct {
		Mode       string  `json:"mode"`
		AgeingSec  float64 `json:"mac_ageing_seconds"`
		FloodLimit uint32  `json:"flood_limit"`
		TapMAC     string  `json:"tap_mac"`
		MACs       []struct {
			MAC, Peer string
			Pinned    bool
		} `json:"macs"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if in := infos[0]; in.Mode != "tap" || in.AgeingSec != 60 || len(in.MACs) < 2 || in.FloodLimit != 500 {
		t.Errorf("status --json: %+v, want tap, ageing 60, flood limit 500 and the client's and the LAN host's MACs", in)
	}
	// The tap's own address, as the kernel has it, is pinned to it.
	if mac := strings.Fields(na.Run("cat", "/sys/class/net/twupa/address")); len(mac) != 1 || infos[0].TapMAC != mac[0] {
		t.Errorf("tap mac %q, the kernel's %v", infos[0].TapMAC, mac)
	}
	pinned := false
	for _, m := range infos[0].MACs {
		pinned = pinned || m.MAC == infos[0].TapMAC && m.Pinned && m.Peer == ""
	}
	if !pinned {
		t.Errorf("the tap's address is not pinned to it: %+v", infos[0].MACs)
	}
	// wg still sees a WireGuard interface.
	if dump := na.Run("wg", "show", "twupa", "dump"); !strings.Contains(dump, b.key.PublicKey().String()) {
		t.Errorf("wg show dump:\n%s", dump)
	}
	if out, err := tapwireIn(t, na, "down", confA); err != nil {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	if out := na.Run("ip", "addr", "show", "twbr0"); strings.Contains(out, "198.51.100.1/") {
		t.Errorf("tapwire down left its address on the bridge:\n%s", out)
	}
}

func TestKeyFileWarning(t *testing.T) {
	cfg := &config.Config{Interface: config.Interface{PrivateKey: key(t)}}
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		want string // "" for no warning
	}{
		{"/etc/wireguard/wg0.conf", 0o600, ""},
		{"/etc/wireguard/wg0.conf", 0o400, ""},
		{"/etc/wireguard/wg0.conf", 0o700, ""},
		{"/etc/wireguard/wg0.conf", 0o644, "warning: /etc/wireguard/wg0.conf holds a private key and is accessible to its group and all users (mode 0644); make it private with: chmod 600 /etc/wireguard/wg0.conf"},
		{"wg0.conf", 0o640, "is accessible to its group (mode 0640); make it private with: chmod 600 wg0.conf"},
		{"wg0.conf", 0o604, "is accessible to all users (mode 0604)"},
		{"wg0.conf", 0o602, "(mode 0602)"},
		{"/home/me/my vpn/wg0.conf", 0o664, "chmod 600 '/home/me/my vpn/wg0.conf'"},
		{"/tmp/it's/wg0.conf", 0o644, `chmod 600 '/tmp/it'\''s/wg0.conf'`},
	} {
		got := keyFileWarning(tc.path, tc.mode, cfg)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("keyFileWarning(%q, %04o) = %q, want %q", tc.path, tc.mode, got, tc.want)
		}
	}
	if got := keyFileWarning("wg0.conf", 0o644, &config.Config{}); got != "" {
		t.Errorf("a file without a private key: %q", got)
	}
}

// TestUpTableRefused: a Table value ip does not know, or off and auto in
// another case than wg-quick reads, is refused with the file, line and key
// before anything is created.
func TestUpTableRefused(t *testing.T) {
	ns := nstest.New(t)
	dir := t.TempDir()
	for _, table := range []string{"nosuchtable", "Off", "AUTO", "08"} {
		conf := filepath.Join(dir, "twtbl0.conf")
		os.WriteFile(conf, []byte("[Interface]\nPrivateKey = "+key(t).String()+"\nAddress = 198.51.100.1/24\nTable = "+table+"\n"), 0o600)
		out, err := tapwireIn(t, ns, "up", conf)
		if err == nil || !strings.Contains(out, conf+":4: Table: \""+table+"\": ") {
			t.Errorf("Table = %s: %v\n%s", table, err, out)
		}
		if links := ns.Run("ip", "-o", "link"); strings.Contains(links, "twtbl0") {
			t.Errorf("Table = %s left an interface:\n%s", table, links)
		}
	}
}

// processOf returns the pid of the process running the executable exe with
// the argument arg, failing the test when there is none.
func processOf(t *testing.T, exe, arg string) int {
	t.Helper()
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if target, _ := os.Readlink(filepath.Join(filepath.Dir(c), "exe")); target == exe && slices.Contains(args[1:], arg) {
			pid, err := strconv.Atoi(filepath.Base(filepath.Dir(c)))
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no process runs %s %s", exe, arg)
	return 0
}

// TestUpStopOverUAPI asks a running tapwire up to take its interface down
// over its UAPI socket (stop=tapwire, what tapwire down does on Windows):
// it runs PostDown, takes the interface and the socket away and exits, as
// on SIGTERM.
func TestUpStopOverUAPI(t *testing.T) {
	ns := nstest.New(t)
	dir := t.TempDir()
	me := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "192.0.2.1", port: 51031}
	peer := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51032}
	hook := filepath.Join(dir, "hook")
	conf := writeConf(t, dir, "twstop0", me, "PostDown = echo down %i > "+hook, peer)
	up(t, ns, conf)
	rf := lookRunFiles("twstop0")
	if !rf.live {
		t.Fatal("no live tapwire up after tapwire up")
	}
	if err := uapi.RequestStop(uapi.SocketPath("twstop0")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if live, _ := isUpOf(rf.pid, "twstop0", rf.state); !live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still up 10 s after stop=tapwire", rf.pid)
		}
	}
	if b, _ := os.ReadFile(hook); strings.TrimSpace(string(b)) != "down twstop0" {
		t.Errorf("PostDown wrote %q", b)
	}
	if _, err := ns.Output("ip", "link", "show", "twstop0"); err == nil {
		t.Error("interface still there")
	}
	if _, err := os.Stat(uapi.SocketPath("twstop0")); err == nil {
		t.Error("UAPI socket left behind")
	}
}
