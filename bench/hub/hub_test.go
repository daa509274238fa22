//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/packet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

func testLayout(t *testing.T, n int) layout {
	t.Helper()
	l, err := newLayout(n, defaultNet4, defaultNet6, defaultSource)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A seed gives every client and the hub a key of their own, the same each
// time, clamped as wg prints keys.
func TestKeysDeterministic(t *testing.T) {
	t.Parallel()
	seen := map[protocol.Key]string{}
	for _, seed := range []string{"a", "b"} {
		for i := range 100 {
			k := clientKey(seed, i)
			if k != clientKey(seed, i) {
				t.Fatalf("client %d of seed %q: two keys", i, seed)
			}
			if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
				t.Fatalf("client %d of seed %q: key %s not clamped", i, seed, k)
			}
			if who, dup := seen[k]; dup {
				t.Fatalf("client %d of seed %q has the key of %s", i, seed, who)
			}
			seen[k] = fmt.Sprintf("client %d of seed %q", i, seed)
		}
		h := hubKey(seed)
		if who, dup := seen[h]; dup {
			t.Fatalf("the hub of seed %q has the key of %s", seed, who)
		}
		seen[h] = "hub of " + seed
	}
	var out bytes.Buffer
	if err := keyCmd(&out, []string{"-seed", "a", "-pub"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != hubKey("a").PublicKey().String() {
		t.Errorf("hub key -pub printed %q, want %s", got, hubKey("a").PublicKey())
	}
}

// What conf writes, tapwire's own parser reads back: the hub's key and
// port, and each client's public key with its /32 and /128, in order.
func TestConfRoundTrip(t *testing.T) {
	t.Parallel()
	const n = 300
	var out bytes.Buffer
	if err := confCmd(&out, []string{"-n", fmt.Sprint(n), "-seed", "round", "-port", "51999"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("hub.conf", &out)
	if err != nil {
		t.Fatal(err)
	}
	l := testLayout(t, n)
	if c.Interface.PrivateKey != hubKey("round") || c.Interface.ListenPort != 51999 {
		t.Errorf("interface: key %s port %d, want %s 51999", c.Interface.PrivateKey, c.Interface.ListenPort, hubKey("round"))
	}
	if len(c.Peers) != n {
		t.Fatalf("%d peers, want %d", len(c.Peers), n)
	}
	allowed := map[netip.Prefix]bool{}
	for i, p := range c.Peers {
		want := []netip.Prefix{netip.PrefixFrom(l.inner4(i), 32), netip.PrefixFrom(l.inner6(i), 128)}
		if p.PublicKey != clientKey("round", i).PublicKey() || len(p.AllowedIPs) != 2 || p.AllowedIPs[0] != want[0] || p.AllowedIPs[1] != want[1] {
			t.Fatalf("peer %d: %s %v, want %s %v", i, p.PublicKey, p.AllowedIPs, clientKey("round", i).PublicKey(), want)
		}
		for _, a := range p.AllowedIPs {
			if allowed[a] || a.Contains(l.hub4()) || a.Contains(l.hub6()) {
				t.Fatalf("peer %d: %v is the hub's or another peer's", i, a)
			}
			allowed[a] = true
		}
	}

	// A hub with a key of its own: no PrivateKey line.
	out.Reset()
	if err := confCmd(&out, []string{"-n", "2", "-hub-key", hubKey("x").PublicKey().String()}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "PrivateKey") {
		t.Errorf("conf -hub-key wrote a private key:\n%s", out.String())
	}
	if got := strings.Count(out.String(), "[Peer]"); got != 2 {
		t.Errorf("conf -hub-key -n 2 wrote %d peers", got)
	}
}

// Clients' source addresses are distinct loopback addresses, never a .0 or
// a .255, and a layout that does not fit is refused.
func TestLayout(t *testing.T) {
	t.Parallel()
	l := testLayout(t, 1000)
	seen := map[netip.Addr]bool{}
	for i := range 1000 {
		a := l.src(i).As4()
		if a[0] != 127 || a[3] == 0 || a[3] == 255 || seen[l.src(i)] {
			t.Fatalf("client %d: source %v", i, l.src(i))
		}
		seen[l.src(i)] = true
	}
	if l.hub4() != netip.MustParseAddr("10.96.0.1") || l.inner4(0) != netip.MustParseAddr("10.96.0.2") || l.inner6(999) != netip.MustParseAddr("fd00:7a9::3e9") {
		t.Errorf("hub %v, client 0 %v, client 999 %v", l.hub4(), l.inner4(0), l.inner6(999))
	}
	if _, err := newLayout(maxClients, defaultNet4, defaultNet6, defaultSource); err != nil {
		t.Errorf("the most clients do not fit the defaults: %v", err)
	}
	for _, bad := range []struct {
		n                  int
		net4, net6, source string
	}{
		{0, defaultNet4, defaultNet6, defaultSource},
		{maxClients + 1, defaultNet4, defaultNet6, defaultSource},
		{254, "10.0.0.0/24", defaultNet6, defaultSource},        // hub, 254 clients and the broadcast address
		{300, defaultNet4, "fd00::/120", defaultSource},         // 300 in 256
		{10, defaultNet4, defaultNet6, "127.0.0.1"},             // not a /24's first address
		{10, defaultNet4, defaultNet6, "10.0.0.0"},              // not loopback
		{100000, defaultNet4, defaultNet6, "127.255.0.0"},       // runs out of 127/8
		{10, "fd00::/64", defaultNet6, defaultSource},           // not IPv4
		{10, defaultNet4, "10.0.0.0/8", defaultSource},          // not IPv6
		{10, "10.96.0.0/33", defaultNet6, defaultSource},        // not a prefix
		{10, defaultNet4, defaultNet6, "127.16.0.0/24"},         // not an address
		{10, defaultNet4, "::ffff:10.0.0.0/104", defaultSource}, // IPv4 in IPv6
	} {
		if _, err := newLayout(bad.n, bad.net4, bad.net6, bad.source); err == nil {
			t.Errorf("%d clients in %s %s from %s: no error", bad.n, bad.net4, bad.net6, bad.source)
		}
	}
	if _, err := newLayout(253, "10.0.0.0/24", defaultNet6, defaultSource); err != nil {
		t.Errorf("253 clients in a /24: %v", err)
	}
}

// The echo request is a valid IPv4 ICMP packet; the reply a kernel makes
// of it is recognised, and other packets are not.
func TestEcho(t *testing.T) {
	t.Parallel()
	src, dst := netip.MustParseAddr("10.96.0.9"), netip.MustParseAddr("10.96.0.1")
	b := make([]byte, 128)
	n := echoRequest(b, src, dst, 7)
	pkt := b[:n]
	if packet.Checksum(pkt[:20], 0) != 0 || packet.Checksum(pkt[20:], 0) != 0 {
		t.Fatal("bad IPv4 or ICMP checksum")
	}
	if h, err := ipv4.ParseHeader(pkt); err != nil || h.TotalLen != n || h.Protocol != 1 {
		t.Fatalf("header %+v: %v", h, err)
	}
	// The reply, as a kernel makes it: addresses swapped, type 0.
	reply := bytes.Clone(pkt)
	copy(reply[12:16], pkt[16:20])
	copy(reply[16:20], pkt[12:16])
	body, err := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 7, Seq: 1, Data: echoPayload}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(reply[20:], body)
	if !isEchoReply(reply, dst, src, 7) {
		t.Error("the reply is not recognised")
	}
	if isEchoReply(reply, dst, src, 8) || isEchoReply(reply, src, dst, 7) || isEchoReply(pkt, dst, src, 7) || isEchoReply(reply[:27], dst, src, 7) {
		t.Error("a packet that is not the reply is taken for it")
	}
}

func TestIndex(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		i       int
		attempt uint16
	}{{0, 1}, {maxClients, 1}, {12345, 19}, {maxClients, 4095}} {
		if i, a := unindex(index(c.i, c.attempt)); i != c.i || a != c.attempt {
			t.Errorf("index(%d, %d) comes back as %d, %d", c.i, c.attempt, i, a)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"conf"}, // no -n
		{"conf", "-n", "10", "-port", "0"},
		{"conf", "-n", "10", "-hub-key", "nope"},
		{"conf", "-n", "10", "extra"},
		{"key", "-pub", "extra"},
		{"run", "-n", "10", "-to", "192.0.2.1:51820"}, // not loopback
		{"run", "-n", "10", "-to", "[::1]:51820"},     // not IPv4
		{"run", "-n", "10", "-to", "127.0.0.1:0"},
		{"run", "-n", "10", "-rate", "0"},
		{"run", "-n", "10", "-timeout", "2h"},
		{"run", "-n", "10", "-linger", "-1s"},
		{"run", "-n", "10", "-workers", "0"},
		{"run", "-n", "10", "-to", "127.16.0.5:51820"}, // a client's source address
		{"run", "-n", "0"},
	} {
		err := dispatch(ctx, args)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// slowClock stands still until start, then runs five times slower than
// the system's time: the engine's first second after start lasts 5 s of
// the test's, so the thousand handshake messages that put it under load
// fall in one of its seconds however slowly the machine handles them.
type slowClock struct {
	base    time.Time // the engine's time until start: the start of a second
	started atomic.Pointer[time.Time]
}

func newSlowClock() *slowClock { return &slowClock{base: time.Now().Truncate(time.Second)} }

func (c *slowClock) start() { now := time.Now(); c.started.Store(&now) }

func (c *slowClock) Now() time.Time {
	s := c.started.Load()
	if s == nil {
		return c.base
	}
	return c.base.Add(time.Since(*s) / 5)
}

func (c *slowClock) Every(d time.Duration, fn func(now time.Time)) func() {
	t := time.NewTicker(d)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fn(c.Now())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { t.Stop(); close(quit) })
		<-done
	}
}

// startHub runs tapwire's engine as tapwire-go does (a TUN device named
// name in ns, the UAPI socket), configures it with wg setconf from conf,
// and gives it the layout's hub addresses. It returns a function that
// stops it (also called by t.Cleanup).
func startHub(t *testing.T, ns *nstest.NS, name, conf string, l layout, clock tunnel.Clock) (stop func()) {
	t.Helper()
	var s *service.Service
	err := ns.Do(func() error {
		var err error
		s, err = service.Start(service.Options{Name: name, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Engine: tunnel.Options{NetNS: ns.Path(), Clock: clock}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(s.Close) }
	t.Cleanup(stop)
	ns.Run("wg", "setconf", name, conf)
	ns.Run("ip", "addr", "add", l.hubPrefix4().String(), "dev", name)
	ns.Run("ip", "addr", "add", l.hubPrefix6().String(), "dev", name, "nodad")
	ns.Run("ip", "link", "set", name, "up")
	return stop
}

// run runs the clients of cfg inside ns.
func runIn(t *testing.T, ns *nstest.NS, cfg runConfig) *report {
	t.Helper()
	var rep *report
	if err := ns.Do(func() error {
		var err error
		rep, err = runClients(context.Background(), cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rep
}

// hubSessions counts the peers wg show dump lists with a handshake.
func hubSessions(t *testing.T, ns *nstest.NS, name string) (peers, sessions int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(ns.Run("wg", "show", name, "dump")), "\n")
	for _, line := range lines[1:] {
		if f := strings.Split(line, "\t"); len(f) > 4 && f[4] != "0" {
			sessions++
		}
	}
	return len(lines) - 1, sessions
}

// Clients handshake with tapwire's engine for real, on loopback in a
// namespace: configured by wg setconf from conf's file, all of them come
// up, pass data both ways, and those the hub asks for a cookie get in with
// it. Then the hub restarts and a herd of them comes back.
func TestClientsAgainstEngine(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("needs wg (Debian package wireguard-tools)")
	}
	nstest.GuardHost(t)
	ns := nstest.New(t)
	// More than the 2000 handshake messages a second that put the engine
	// under load: at least the last 100 need a cookie to get in.
	const n = 2100
	l := testLayout(t, n)
	conf := filepath.Join(t.TempDir(), "hub.conf")
	f, err := os.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeConf(f, confOptions{seed: "engine", lay: l, port: 51820}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	const name = "hbt0"
	clock := newSlowClock()
	stop := startHub(t, ns, name, conf, l, clock)

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := runConfig{hub: netip.MustParseAddrPort("127.0.0.1:51820"), hubPub: hubKey("engine").PublicKey(), seed: "engine",
		lay: l, rate: 2000, timeout: time.Minute, linger: 5 * time.Second, workers: 2,
		// Retries sooner than WireGuard's 5 s (the engine's 20 ms between a
		// peer's initiations is 100 ms here).
		rekeyTimeout: time.Second, jitter: 100 * time.Millisecond, attemptTime: 45 * time.Second, log: quiet,
		onStart: clock.start}
	rep := runIn(t, ns, cfg)
	t.Logf("wave: %+v", *rep)
	if !rep.AllUp || rep.Established != n || rep.TimedOut {
		t.Fatalf("%d of %d clients up, %d failed, %d pending", rep.Established, n, rep.Failed, rep.Pending)
	}
	if rep.CookieReplies < n-2000 || rep.CookieErrors != 0 || rep.BadResponses != 0 || rep.Retries < rep.CookieReplies {
		t.Errorf("%d cookie replies (%d errors), %d retries, %d bad responses; want %d cookie replies or more, each retried, and no errors",
			rep.CookieReplies, rep.CookieErrors, rep.Retries, rep.BadResponses, n-2000)
	}
	if rep.DataSent != n || rep.DataReplies != n || rep.KeepalivesSent != n || rep.BadTransport != 0 || rep.SendErrors != 0 {
		t.Errorf("data: %d sent, %d replies, %d keepalives, %d bad, %d send errors (%s); want %d each and no errors",
			rep.DataSent, rep.DataReplies, rep.KeepalivesSent, rep.BadTransport, rep.SendErrors, rep.FirstError, n)
	}
	if rep.HandshakeWindowS == nil || rep.HandshakesPerS <= 0 || rep.UpMs.Max < rep.UpMs.P50 {
		t.Errorf("window %v, %v handshakes/s, up %+v", rep.HandshakeWindowS, rep.HandshakesPerS, rep.UpMs)
	}
	if peers, sessions := hubSessions(t, ns, name); peers != n || sessions != n {
		t.Errorf("wg show dump: %d peers, %d with a handshake; want %d", peers, sessions, n)
	}

	// The hub restarts (its sessions lost) with the same configuration;
	// every client initiates at once.
	stop()
	startHub(t, ns, name, conf, l, nil)
	const herd = 400
	cfg.lay, cfg.herd, cfg.onStart = testLayout(t, herd), true, nil
	rep = runIn(t, ns, cfg)
	t.Logf("herd: %+v", *rep)
	if !rep.AllUp || rep.DataReplies != herd || rep.CookieErrors != 0 || rep.Initiations != herd+rep.Retries {
		t.Errorf("herd: %d of %d up, %d data replies, %d cookie errors, %d initiations and %d retries",
			rep.Established, herd, rep.DataReplies, rep.CookieErrors, rep.Initiations, rep.Retries)
	}
	if _, sessions := hubSessions(t, ns, name); sessions != herd {
		t.Errorf("wg show dump after the herd: %d peers with a handshake, want %d", sessions, herd)
	}
}
