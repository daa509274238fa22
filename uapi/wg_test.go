//go:build linux

package uapi

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
)

// wgTool returns the path of wg(8), skipping the test when it cannot run.
func wgTool(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: wg(8) finds userspace interfaces in " + SocketDir)
	}
	wg, err := exec.LookPath("wg")
	if err != nil {
		t.Skip("wg(8) not installed (Debian: apt-get install --no-install-recommends wireguard-tools)")
	}
	return wg
}

type wgRunner struct {
	t    *testing.T
	path string
}

// run runs wg with args and returns its standard output; it fails the test
// if wg fails.
func (w wgRunner) run(args ...string) string {
	w.t.Helper()
	out, errOut, err := w.try(args...)
	if err != nil {
		w.t.Fatalf("wg %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (w wgRunner) try(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(w.path, args...)
	cmd.Env = append(os.Environ(), "WG_HIDE_KEYS=never", "LC_ALL=C")
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		err = errors.New("timed out")
	}
	return o.String(), e.String(), err
}

// version returns wg's release date as a number, like 20210914 (0 if
// unknown).
func (w wgRunner) version() int {
	out, _, _ := w.try("--version")
	for f := range strings.FieldsSeq(out) {
		if v, ok := strings.CutPrefix(f, "v1.0."); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func genKey(t *testing.T) protocol.Key {
	t.Helper()
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dumpLines splits `wg show IFACE dump` into tab-separated fields.
func dumpLines(t *testing.T, out string) [][]string {
	t.Helper()
	var lines [][]string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.Split(l, "\t"))
	}
	return lines
}

func checkFields(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func (m *memBackend) setCounters(k protocol.Key, hs time.Time, rx, tx uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.st.peers[k]
	p.handshake, p.rx, p.tx = hs, rx, tx
}

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// TestWgTool drives a Server with the real wg(8) tool.
func TestWgTool(t *testing.T) {
	w := wgRunner{t, wgTool(t)}
	name := fmt.Sprintf("twuapi%d", os.Getpid())
	if len(name) > 15 {
		name = name[:15]
	}

	priv1, peer1, psk1 := genKey(t), genKey(t).PublicKey(), genKey(t)
	hs := time.Unix(1700000000, 500)

	syncClears := w.version() >= 20250521

	b := newMemBackend()
	b.busyPort = 51998
	if err := b.Apply(devconf.DeviceConfig{PrivateKey: &priv1, ListenPort: ptr(uint16(51820))}); err != nil {
		t.Fatal(err)
	}
	b.addPeer(peer1, memPeer{psk: psk1, endpoint: netip.MustParseAddrPort("[2001:db8::1]:51820"), keepalive: 0,
		handshake: hs, rx: 1234, tx: 5678}, "10.0.0.0/24", "fd00::/64")

	s, err := Listen(name, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(SocketDir, name+".sock")
	t.Cleanup(func() {
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s left after Close: %v", sock, err)
		}
	})
	serve(t, s, b)

	t.Run("show interfaces", func(t *testing.T) {
		if out := w.run("show", "interfaces"); !slices.Contains(strings.Fields(out), name) {
			t.Errorf("wg show interfaces = %q, want %s in it", out, name)
		}
	})

	t.Run("show dump", func(t *testing.T) {
		lines := dumpLines(t, w.run("show", name, "dump"))
		if len(lines) != 2 {
			t.Fatalf("dump has %d lines, want 2: %q", len(lines), lines)
		}
		checkFields(t, "interface", lines[0], []string{priv1.String(), priv1.PublicKey().String(), "51820", "off"})
		checkFields(t, "peer", lines[1], []string{peer1.String(), psk1.String(), "[2001:db8::1]:51820",
			"10.0.0.0/24,fd00::/64", "1700000000", "1234", "5678", "off"})
	})

	t.Run("show", func(t *testing.T) {
		out := w.run("show", name)
		for _, want := range []string{
			"interface: " + name,
			"public key: " + priv1.PublicKey().String(),
			"private key: " + priv1.String(),
			"listening port: 51820",
			"peer: " + peer1.String(),
			"preshared key: " + psk1.String(),
			"endpoint: [2001:db8::1]:51820",
			"allowed ips: 10.0.0.0/24, fd00::/64",
			"latest handshake: ",
			"transfer: 1.21 KiB received, 5.54 KiB sent",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("wg show lacks %q:\n%s", want, out)
			}
		}
	})

	priv2, peer2, psk2 := genKey(t), genKey(t).PublicKey(), genKey(t)
	t.Run("set", func(t *testing.T) {
		w.run("set", name,
			"private-key", writeFile(t, "priv", priv2.String()+"\n"),
			"listen-port", "51999",
			"peer", peer2.String(),
			"allowed-ips", "192.0.2.0/24,2001:db8::/64",
			"endpoint", "127.0.0.1:51820",
			"persistent-keepalive", "25",
			"preshared-key", writeFile(t, "psk", psk2.String()+"\n"))
		st := b.Status()
		if st.PrivateKey != priv2 || st.ListenPort != 51999 {
			t.Errorf("device: key changed %v, port %d", st.PrivateKey == priv2, st.ListenPort)
		}
		p, ok := b.peer(peer2)
		if !ok {
			t.Fatal("peer not added")
		}
		if p.PresharedKey != psk2 || p.Endpoint.String() != "127.0.0.1:51820" || p.PersistentKeepalive != 25 ||
			!slices.Equal(p.AllowedIPs, prefixes("192.0.2.0/24", "2001:db8::/64")) {
			t.Errorf("peer: %+v", p)
		}
		if _, ok := b.peer(peer1); !ok {
			t.Error("wg set removed the other peer")
		}
		lines := dumpLines(t, w.run("show", name, "dump"))
		checkFields(t, "interface", lines[0], []string{priv2.String(), priv2.PublicKey().String(), "51999", "off"})
		if len(lines) != 3 {
			t.Fatalf("dump: %q", lines)
		}
		checkFields(t, "new peer", lines[2], []string{peer2.String(), psk2.String(), "127.0.0.1:51820",
			"192.0.2.0/24,2001:db8::/64", "0", "0", "0", "25"})
	})

	t.Run("set allowed-ips replaces", func(t *testing.T) {
		w.run("set", name, "peer", peer2.String(), "allowed-ips", "198.51.100.0/24")
		if p, _ := b.peer(peer2); !slices.Equal(p.AllowedIPs, prefixes("198.51.100.0/24")) {
			t.Errorf("allowed IPs %v", p.AllowedIPs)
		}
		// A prefix moves from the peer that had it.
		w.run("set", name, "peer", peer2.String(), "allowed-ips", "198.51.100.0/24,10.0.0.0/24")
		if p, _ := b.peer(peer1); !slices.Equal(p.AllowedIPs, prefixes("fd00::/64")) {
			t.Errorf("old owner's allowed IPs %v", p.AllowedIPs)
		}
	})

	t.Run("set errors", func(t *testing.T) {
		before := b.Status()
		_, errOut, err := w.try("set", name, "fwmark", "7", "listen-port", "51998")
		if err == nil {
			t.Fatal("wg set with a port in use succeeded")
		}
		if !strings.Contains(errOut, "Address already in use") {
			t.Errorf("wg said %q, want EADDRINUSE's message", errOut)
		}
		if after := b.Status(); after.FwMark != before.FwMark || after.ListenPort != before.ListenPort {
			t.Errorf("a failed set changed the device: %+v", after)
		}
	})

	t.Run("remove peer", func(t *testing.T) {
		w.run("set", name, "peer", peer2.String(), "remove")
		if _, ok := b.peer(peer2); ok {
			t.Error("peer not removed")
		}
		w.run("set", name, "peer", peer2.String(), "remove") // absent: not an error
		if n := len(dumpLines(t, w.run("show", name, "dump"))); n != 2 {
			t.Errorf("dump has %d lines after remove, want 2", n)
		}
	})

	t.Run("own public key ignored", func(t *testing.T) {
		w.run("set", name, "peer", priv2.PublicKey().String(), "allowed-ips", "10.9.9.0/24")
		if _, ok := b.peer(priv2.PublicKey()); ok {
			t.Error("the device's own public key became a peer")
		}
	})

	priv3, peer3, peer4, peer5, psk3 := genKey(t), genKey(t).PublicKey(), genKey(t).PublicKey(), genKey(t).PublicKey(), genKey(t)
	t.Run("setconf", func(t *testing.T) {
		conf := fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51777
FwMark = 0x1234

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = 10.3.0.0/16
Endpoint = 192.0.2.7:51820
PersistentKeepalive = 25

[Peer]
PublicKey = %s
AllowedIPs = 10.4.0.0/16, 2001:db8:4::/48
`, priv3, peer3, psk3, peer4)
		w.run("setconf", name, writeFile(t, "wg.conf", conf))
		st := b.Status()
		if st.PrivateKey != priv3 || st.ListenPort != 51777 || st.FwMark != 0x1234 {
			t.Errorf("device after setconf: port %d fwmark %#x", st.ListenPort, st.FwMark)
		}
		var keys []protocol.Key
		for _, p := range st.Peers {
			keys = append(keys, p.PublicKey)
		}
		if !slices.Equal(keys, []protocol.Key{peer3, peer4}) {
			t.Fatalf("peers after setconf: %d, want exactly the two of the file", len(keys))
		}
		p3, _ := b.peer(peer3)
		if p3.PresharedKey != psk3 || p3.PersistentKeepalive != 25 || p3.Endpoint.String() != "192.0.2.7:51820" ||
			!slices.Equal(p3.AllowedIPs, prefixes("10.3.0.0/16")) {
			t.Errorf("peer 3: %+v", p3)
		}
		lines := dumpLines(t, w.run("show", name, "dump"))
		checkFields(t, "interface", lines[0], []string{priv3.String(), priv3.PublicKey().String(), "51777", "0x1234"})
	})

	t.Run("syncconf", func(t *testing.T) {
		b.setCounters(peer3, hs, 10, 20)
		conf := fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51777

[Peer]
PublicKey = %s
AllowedIPs = 10.33.0.0/16

[Peer]
PublicKey = %s
AllowedIPs = 10.5.0.0/16
Endpoint = [2001:db8::5]:51820
`, priv3, peer3, peer5)
		w.run("syncconf", name, writeFile(t, "wg.conf", conf))
		if _, ok := b.peer(peer4); ok {
			t.Error("syncconf kept a peer the file does not have")
		}
		p3, ok := b.peer(peer3)
		if !ok {
			t.Fatal("syncconf removed a peer the file has")
		}
		// The endpoint and counters of a kept peer stay. wg from 2025-05
		// on also clears a PSK and keepalive that the file no longer has.
		wantPSK, wantKeepalive := psk3, uint16(25)
		if syncClears {
			wantPSK, wantKeepalive = protocol.Key{}, 0
		}
		if p3.PresharedKey != wantPSK || p3.PersistentKeepalive != wantKeepalive || p3.Endpoint.String() != "192.0.2.7:51820" ||
			!slices.Equal(p3.AllowedIPs, prefixes("10.33.0.0/16")) || p3.RxBytes != 10 || !p3.LastHandshake.Equal(hs) {
			t.Errorf("peer 3 after syncconf (wg clears PSK: %v): %+v", syncClears, p3)
		}
		p5, ok := b.peer(peer5)
		if !ok || p5.Endpoint.String() != "[2001:db8::5]:51820" || !slices.Equal(p5.AllowedIPs, prefixes("10.5.0.0/16")) {
			t.Errorf("peer 5 after syncconf: %+v (present %v)", p5, ok)
		}
		// Like setconf, syncconf sets what the file lacks to zero.
		if st := b.Status(); st.FwMark != 0 || st.ListenPort != 51777 || st.PrivateKey != priv3 {
			t.Errorf("device after syncconf: port %d, fwmark %#x", st.ListenPort, st.FwMark)
		}
	})

	t.Run("showconf", func(t *testing.T) {
		out := w.run("showconf", name)
		want := []string{
			"[Interface]",
			"ListenPort = 51777",
			"PrivateKey = " + priv3.String(),
			"[Peer]",
			"PublicKey = " + peer3.String(),
			"AllowedIPs = 10.33.0.0/16",
			"Endpoint = 192.0.2.7:51820",
			"[Peer]",
			"PublicKey = " + peer5.String(),
			"AllowedIPs = 10.5.0.0/16",
			"Endpoint = [2001:db8::5]:51820",
		}
		if !syncClears {
			want = slices.Insert(want, 5, "PresharedKey = "+psk3.String())
			want = slices.Insert(want, 8, "PersistentKeepalive = 25")
		}
		var got []string
		for l := range strings.SplitSeq(out, "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
		checkFields(t, "showconf", got, want)
		// What showconf prints, setconf takes back unchanged. (Counters
		// and handshakes restart: replace_peers removes every peer.)
		before := b.Status()
		w.run("setconf", name, writeFile(t, "again.conf", out))
		after := b.Status()
		for _, st := range []*devconf.DeviceStatus{&before, &after} {
			for i := range st.Peers {
				p := &st.Peers[i]
				p.LastHandshake, p.RxBytes, p.TxBytes = time.Time{}, 0, 0
			}
		}
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("setconf of showconf changed the device:\n%+v\n%+v", before, after)
		}
	})

	t.Run("dump fields", func(t *testing.T) {
		b.setCounters(peer3, time.Unix(1700000123, 0), 1<<40, 7)
		lines := dumpLines(t, w.run("show", name, "dump"))
		for _, l := range lines[1:] {
			if l[0] != peer3.String() {
				continue
			}
			psk, keepalive := psk3.String(), "25"
			if syncClears {
				psk, keepalive = "(none)", "off"
			}
			checkFields(t, "peer 3", l, []string{peer3.String(), psk, "192.0.2.7:51820", "10.33.0.0/16",
				"1700000123", strconv.FormatUint(1<<40, 10), "7", keepalive})
			return
		}
		t.Errorf("peer 3 missing from dump %q", lines)
	})

	t.Run("listen-port 0 picks a port", func(t *testing.T) {
		w.run("set", name, "listen-port", "0")
		lines := dumpLines(t, w.run("show", name, "dump"))
		if got := lines[0][2]; got != strconv.Itoa(int(b.randPort)) {
			t.Errorf("listen port %s, want the port the backend bound, %d", got, b.randPort)
		}
		w.run("set", name, "listen-port", "51777")
	})

	t.Run("remove private key", func(t *testing.T) {
		w.run("set", name, "private-key", writeFile(t, "zero", protocol.Key{}.String()+"\n"))
		lines := dumpLines(t, w.run("show", name, "dump"))
		checkFields(t, "interface", lines[0], []string{"(none)", "(none)", "51777", "off"})
	})
}

// TestWgSetconfTooLarge: wg setconf of a file over the server's bound
// fails with wg's words for EMSGSIZE, changes nothing, and wg show still
// works.
func TestWgSetconfTooLarge(t *testing.T) {
	w := wgRunner{t, wgTool(t)}
	name := fmt.Sprintf("twbig%d", os.Getpid())
	if len(name) > 15 {
		name = name[:15]
	}
	b := newMemBackend()
	s, err := Listen(name, WithLogger(testLogger(t)), WithMaxSetSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, b)
	var conf strings.Builder
	fmt.Fprintf(&conf, "[Interface]\nPrivateKey = %s\nListenPort = 51820\n", genKey(t))
	for i := range 100 {
		fmt.Fprintf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.%d.0/24\n", genKey(t).PublicKey(), i)
	}
	_, errOut, err := w.try("setconf", name, writeFile(t, "big.conf", conf.String()))
	if err == nil || !strings.Contains(errOut, "Message too long") {
		t.Errorf("wg setconf over the bound: %v\n%s", err, errOut)
	}
	if n := len(b.applies()); n != 0 {
		t.Errorf("%d transactions applied", n)
	}
	if out := w.run("show", name, "dump"); len(dumpLines(t, out)) != 1 {
		t.Errorf("wg show after the refused setconf:\n%s", out)
	}
}
