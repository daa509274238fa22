//go:build linux

package tunnel_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/tunnel"
	"github.com/tapwire/tapwire/uapi"
)

// wireguardGoVersion is the wireguard-go the interop tests run against.
const wireguardGoVersion = "v0.0.0-20260522210424-ecfc5a8d5446"

// host is one end of a test tunnel: a namespace with an underlay address on
// a veth, and a tunnel interface with an inner address.
type host struct {
	ns     *nstest.NS
	name   string // tunnel interface
	key    protocol.Key
	port   uint16
	under  netip.Addr // underlay address (IPv4 or IPv6)
	inner  []netip.Prefix
	dev    *tunnel.Device // nil for wireguard-go
	tunDev *tun.Device    // the engine's device, for its offload counters
	srv    *uapi.Server   // its UAPI socket (tapwire)
	wgProc *exec.Cmd
}

func (h *host) pub() protocol.Key { return h.key.PublicKey() }

// innerAddr returns the host's inner address of the family of v6.
func (h *host) innerAddr(v6 bool) netip.Addr {
	for _, p := range h.inner {
		if p.Addr().Is6() == v6 {
			return p.Addr()
		}
	}
	panic("no inner address of that family")
}

// wire makes two namespaces joined by a veth, with IPv4 and IPv6 underlay
// addresses, and returns them.
func wire(t testing.TB) (a, b *nstest.NS) {
	a, b = nstest.New(t), nstest.New(t)
	a.Link(b, "twva", "twvb", []string{"192.0.2.1/24", "2001:db8:1::1/64"}, []string{"192.0.2.2/24", "2001:db8:1::2/64"})
	return a, b
}

// pair makes two tapwire hosts over a fresh wire, IPv4 underlay and inner
// addresses, each the other's peer (no preshared key, no keepalive).
func pair(t testing.TB) (a, b *host) {
	na, nb := wire(t)
	ua, ub := underlay(false)
	a = startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b = startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	peer(t, a, b, protocol.Key{}, 0, false)
	peer(t, b, a, protocol.Key{}, 0, false)
	return a, b
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("TAPWIRE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newKey(t testing.TB) protocol.Key {
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startTapwire runs a tapwire engine in ns with the inner addresses, and its
// UAPI socket so wg can look at it.
func startTapwire(t testing.TB, ns *nstest.NS, name string, under netip.Addr, port uint16, timers tunnel.Timers, inner ...netip.Prefix) *host {
	t.Helper()
	return startEngine(t, ns, name, under, port, tun.ModeTUN, tunnel.Options{Timers: timers}, inner...)
}

// startEngine is startTapwire for a TUN or TAP device (MTU 1420 or 1500,
// the defaults) with opts (Log and NetNS are filled in).
func startEngine(t testing.TB, ns *nstest.NS, name string, under netip.Addr, port uint16, mode tun.Mode, opts tunnel.Options, inner ...netip.Prefix) *host {
	t.Helper()
	mtu := 1420
	if mode == tun.ModeTAP {
		mtu = 1500
	}
	return startEngineMTU(t, ns, name, under, port, mode, mtu, opts, inner...)
}

// startEngineMTU is startEngine with a device of the given MTU.
func startEngineMTU(t testing.TB, ns *nstest.NS, name string, under netip.Addr, port uint16, mode tun.Mode, mtu int, opts tunnel.Options, inner ...netip.Prefix) *host {
	t.Helper()
	return startEngineKey(t, ns, name, newKey(t), under, port, mode, mtu, opts, inner...)
}

// restart closes h's engine (its device goes with it) and starts a new one
// with the same name, key, port and inner addresses, without peers: a
// daemon restarted.
func restart(t testing.TB, h *host) *host {
	t.Helper()
	mtu, err := h.tunDev.MTU()
	if err != nil {
		mtu = 1420
	}
	h.srv.Close()
	h.dev.Close()
	return startEngineKey(t, h.ns, h.name, h.key, h.under, h.port, h.dev.Mode(), mtu, tunnel.Options{}, h.inner...)
}

// startEngineKey is startEngineMTU with the given private key.
func startEngineKey(t testing.TB, ns *nstest.NS, name string, key protocol.Key, under netip.Addr, port uint16, mode tun.Mode, mtu int, opts tunnel.Options, inner ...netip.Prefix) *host {
	t.Helper()
	h := &host{ns: ns, name: name, key: key, port: port, under: under, inner: inner}
	dev, err := tun.Open(tun.Config{Name: name, Mode: mode, NetNS: ns.Name, MTU: mtu})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	opts.NetNS = ns.Name
	if opts.Workers == 0 {
		opts.Workers = 4 // the pipelines with writers (the memory tests run the other ways)
	}
	eng, err := tunnel.New(dev, opts)
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	h.dev, h.tunDev = eng, dev
	if err := eng.Apply(devconf.DeviceConfig{PrivateKey: &key, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	srv, err := uapi.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(eng)
	h.srv = srv
	t.Cleanup(func() { srv.Close() })
	configureInner(t, ns, name, inner)
	return h
}

func configureInner(t testing.TB, ns *nstest.NS, name string, inner []netip.Prefix) {
	t.Helper()
	nc, err := netconf.Open(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, p := range inner {
		if err := nc.AddAddr(name, p, netconf.NoDAD()); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.SetUp(name); err != nil {
		t.Fatal(err)
	}
}

var buildWG sync.Once
var wgPath string
var wgErr error

// wireguardGo returns the path of a wireguard-go binary built from the Go
// module proxy at wireguardGoVersion (once per machine: it is cached).
func wireguardGo(t testing.TB) string {
	t.Helper()
	nstest.RequireRoot(t) // wireguard-go is for namespace tests: no build without root
	buildWG.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "tapwire-test", "wireguard-go-"+wireguardGoVersion)
		wgPath = filepath.Join(dir, "wireguard")
		if _, err := os.Stat(wgPath); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "golang.zx2c4.com/wireguard@"+wireguardGoVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			wgErr = fmt.Errorf("go install wireguard-go: %v: %s", err, out)
		}
	})
	if wgErr != nil {
		t.Fatal(wgErr)
	}
	return wgPath
}

func requireWG(t testing.TB) {
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("needs wg (Debian package wireguard-tools; the README's test command installs it)")
	}
}

// startWireguardGo runs wireguard-go in ns and configures it with wg.
func startWireguardGo(t testing.TB, ns *nstest.NS, name string, under netip.Addr, port uint16, inner ...netip.Prefix) *host {
	t.Helper()
	requireWG(t)
	h := &host{ns: ns, name: name, key: newKey(t), port: port, under: under, inner: inner}
	cmd := ns.Command(wireguardGo(t), "-f", name)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.wgProc = cmd
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove("/var/run/wireguard/" + name + ".sock")
	})
	sock := "/var/run/wireguard/" + name + ".sock"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go did not create %s", sock)
		}
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(h.key.String()), 0o600)
	ns.Run("wg", "set", name, "private-key", keyFile, "listen-port", fmt.Sprint(port))
	configureInner(t, ns, name, inner)
	return h
}

// peer makes b a peer of a (with b's inner addresses as allowed IPs and its
// underlay address as endpoint, unless noEndpoint).
func peer(t testing.TB, a, b *host, psk protocol.Key, keepalive uint16, noEndpoint bool) {
	t.Helper()
	var allowed []netip.Prefix
	for _, p := range b.inner {
		allowed = append(allowed, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	ep := netip.AddrPortFrom(b.under, b.port)
	if a.dev != nil {
		pc := devconf.PeerConfig{PublicKey: b.pub(), PresharedKey: &psk, AllowedIPs: allowed, ReplaceAllowedIPs: true,
			PersistentKeepalive: &keepalive}
		if !noEndpoint {
			pc.Endpoint = &ep
		}
		if err := a.dev.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{pc}}); err != nil {
			t.Fatal(err)
		}
		return
	}
	args := []string{"set", a.name, "peer", b.pub().String()}
	var ips []string
	for _, p := range allowed {
		ips = append(ips, p.String())
	}
	args = append(args, "allowed-ips", strings.Join(ips, ","), "persistent-keepalive", fmt.Sprint(keepalive))
	if !psk.IsZero() {
		f := filepath.Join(t.TempDir(), "psk")
		os.WriteFile(f, []byte(psk.String()), 0o600)
		args = append(args, "preshared-key", f)
	}
	if !noEndpoint {
		args = append(args, "endpoint", ep.String())
	}
	a.ns.Run("wg", args...)
}

// transfer sends size random bytes over TCP from host from to host to
// through the tunnel and checks they arrive intact.
func transfer(t testing.TB, from, to *host, v6 bool, size int) {
	t.Helper()
	dst := to.innerAddr(v6)
	var ln net.Listener
	if err := to.ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, size)
	rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		data, _ := io.ReadAll(c)
		got <- data
	}()
	var c net.Conn
	err := from.ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 20*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("%s -> %s: dial %s: %v", from.name, to.name, ln.Addr(), err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(want); err != nil {
		t.Fatalf("%s -> %s: write: %v", from.name, to.name, err)
	}
	c.Close()
	if data := <-got; !bytes.Equal(data, want) {
		t.Fatalf("%s -> %s over %s: received %d bytes, not the %d sent", from.name, to.name, dst, len(data), len(want))
	}
}

// wgDump runs `wg show NAME dump` in h's namespace and returns its peer
// lines, by public key.
func wgDump(t testing.TB, h *host) map[string][]string {
	t.Helper()
	out := h.ns.Run("wg", "show", h.name, "dump")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	peers := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		peers[f[0]] = f
	}
	return peers
}
