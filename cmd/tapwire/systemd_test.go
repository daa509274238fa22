//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/internal/privdrop"
	"golang.org/x/sys/unix"
)

// lockedBuffer is a bytes.Buffer that a running program writes while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fgUp is a tapwire up -f the test runs in a namespace, as systemd runs
// tapwire@.service: NOTIFY_SOCKET is a socket of the test's.
type fgUp struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	notify *net.UnixConn
	exited chan error
}

// upForegroundIn starts tapwire up -f conf (with extra flags before it)
// in ns and waits for its READY=1, which it returns with the process;
// when the test ends it is stopped (SIGTERM) if still running and its
// leftovers taken back by tapwire down.
func upForegroundIn(t *testing.T, ns *nstest.NS, conf string, flags ...string) (*fgUp, map[string]string) {
	t.Helper()
	return upForegroundWith(t, ns, nil, conf, flags...)
}

// upForegroundWith is upForegroundIn with tapwire run by the command
// wrapper (setpriv with its options), if not nil.
func upForegroundWith(t *testing.T, ns *nstest.NS, wrapper []string, conf string, flags ...string) (*fgUp, map[string]string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	args := append(append([]string{filepath.Join(binaries(t), "tapwire"), "up", "-f"}, flags...), conf)
	args = append(slices.Clone(wrapper), args...)
	cmd := ns.Command(args[0], args[1:]...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := &fgUp{cmd: cmd, out: out, notify: c, exited: make(chan error, 1)}
	go func() { u.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		u.stop(t)
		tapwireIn(t, ns, "down", conf)
	})
	ready := u.next(t)
	if ready["READY"] != "1" {
		t.Fatalf("tapwire up -f sent %q first, want READY=1\n%s", ready, out)
	}
	return u, ready
}

// next returns the next message the process sends systemd, as KEY=VALUE.
func (u *fgUp) next(t *testing.T) map[string]string {
	t.Helper()
	type msg struct {
		b   []byte
		err error
	}
	got := make(chan msg, 1)
	go func() {
		b := make([]byte, 4096)
		u.notify.SetReadDeadline(time.Now().Add(2 * time.Minute)) // a hang, not a pace
		n, err := u.notify.Read(b)
		got <- msg{b[:max(n, 0)], err}
	}()
	var m msg
	select {
	case m = <-got:
	case err := <-u.exited:
		u.exited <- err
		t.Fatalf("tapwire up -f exited (%v) before it sent what the test waits for:\n%s", err, u.out)
	}
	if m.err != nil {
		t.Fatalf("no message from tapwire up -f: %v\n%s", m.err, u.out)
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(m.b)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		fields[k] = v
	}
	return fields
}

// stop asks the process to stop (SIGTERM), as systemctl stop does, if it
// is still running, and waits for it to exit.
func (u *fgUp) stop(t *testing.T) {
	t.Helper()
	u.cmd.Process.Signal(syscall.SIGTERM)
	u.wait(t)
}

// wait waits for the process to exit and returns its error.
func (u *fgUp) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-u.exited:
		u.exited <- err
		return err
	case <-time.After(2 * time.Minute):
		u.cmd.Process.Kill()
		t.Fatalf("tapwire up -f still running 2 minutes after it was asked to stop:\n%s", u.out)
	}
	return nil
}

// TestUpNotifyAndReload runs tapwire up -f as tapwire@.service does, with
// NOTIFY_SOCKET: READY=1 (with its pid and a status) comes once the
// interface exists; SIGHUP after an edit that adds a peer and changes
// another's allowed IPs applies it (RELOADING=1 with the time, READY=1),
// the new peer is reached and wg show has the new allowed IPs; an edit
// with a mistake is refused with its file:line:key and changes nothing;
// SIGTERM sends STOPPING=1 and takes everything back.
func TestUpNotifyAndReload(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	nstest.GuardHost(t)
	na, nb := nstest.New(t), nstest.New(t)
	na.Link(nb, "twva", "twvb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "192.0.2.1", port: 51071}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51072}
	c := wgEnd{key: key(t), addr: []string{"198.51.100.3/24"}, under: "192.0.2.3", port: 51073} // never up
	up(t, nb, writeConf(t, dir, "twrlb", b, "", a))
	name := "twrla"
	confA := writeConf(t, dir, name, a, "", c)
	u, ready := upForegroundIn(t, na, confA)
	if ready["MAINPID"] != strconv.Itoa(u.cmd.Process.Pid) || !strings.Contains(ready["STATUS"], name+" up: 1 peers") {
		t.Errorf("READY=1 with %q, want MAINPID %d and a status", ready, u.cmd.Process.Pid)
	}
	if out, err := na.Output("ip", "link", "show", name); err != nil || !strings.Contains(out, "UP") {
		t.Errorf("READY=1 sent before the interface is up: %v\n%s", err, out)
	}

	// B added, C's allowed IPs changed.
	withB := writeConf(t, dir, name, a, "", c, b)
	text, _ := os.ReadFile(withB)
	os.WriteFile(confA, []byte(strings.Replace(string(text), "AllowedIPs = 198.51.100.3/32", "AllowedIPs = 198.51.100.3/32, 203.0.113.0/24", 1)), 0o600)
	monoBefore := monotonicNow(t)
	u.cmd.Process.Signal(syscall.SIGHUP)
	m := u.next(t)
	usec, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
	if m["RELOADING"] != "1" || err != nil || usec < monoBefore {
		t.Errorf("on SIGHUP: %q, want RELOADING=1 and MONOTONIC_USEC after %d", m, monoBefore)
	}
	if m := u.next(t); m["READY"] != "1" || !strings.Contains(m["STATUS"], "reloaded") {
		t.Errorf("after the reload: %q, want READY=1 and a status saying so\n%s", m, u.out)
	}
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)
	dump := na.Run("wg", "show", name, "allowed-ips")
	for _, want := range []string{b.key.PublicKey().String() + "\t198.51.100.2/32", c.key.PublicKey().String() + "\t198.51.100.3/32 203.0.113.0/24"} {
		if !strings.Contains(dump, want) {
			t.Errorf("wg show allowed-ips after the reload lacks %q:\n%s", want, dump)
		}
	}

	// A mistake on line 3: refused, the running configuration stays.
	good, _ := os.ReadFile(confA)
	lines := strings.Split(string(good), "\n")
	if !strings.HasPrefix(lines[2], "ListenPort") {
		t.Fatalf("line 3 is %q", lines[2])
	}
	lines[2] = "ListenPort = 99999"
	lines = append(lines, "[Peer]", "PublicKey = "+key(t).PublicKey().String(), "AllowedIPs = 198.51.100.9/32")
	os.WriteFile(confA, []byte(strings.Join(lines, "\n")), 0o600)
	u.cmd.Process.Signal(syscall.SIGHUP)
	if m := u.next(t); m["RELOADING"] != "1" {
		t.Errorf("on SIGHUP: %q", m)
	}
	if m := u.next(t); m["READY"] != "1" || !strings.Contains(m["STATUS"], "reload refused: "+confA+":3: ListenPort") {
		t.Errorf("after a bad reload: %q, want READY=1 and the refusal\n%s", m, u.out)
	}
	if after := na.Run("wg", "show", name, "allowed-ips"); after != dump {
		t.Errorf("a refused reload changed the peers:\n%s\nwas\n%s", after, dump)
	}
	if port := na.Run("wg", "show", name, "listen-port"); strings.TrimSpace(port) != "51071" {
		t.Errorf("a refused reload changed the port: %s", port)
	}
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)

	u.cmd.Process.Signal(syscall.SIGTERM)
	if m := u.next(t); m["STOPPING"] != "1" {
		t.Errorf("on SIGTERM: %q, want STOPPING=1", m)
	}
	if err := u.wait(t); err != nil {
		t.Errorf("tapwire up -f after SIGTERM: %v\n%s", err, u.out)
	}
	requireNothingLeft(t, na, name, "")
	// The log, whole once the process is gone.
	log := u.out.String()
	if !strings.Contains(log, "changed in the file, applied only by taking the interface down and up again") ||
		!strings.Contains(log, "AllowedIPs (no route yet: 203.0.113.0/24)") {
		t.Errorf("no warning that the new allowed IPs got no route:\n%s", log)
	}
	if !strings.Contains(log, "reload refused; the running configuration stays") || !strings.Contains(log, confA+":3: ListenPort") {
		t.Errorf("the log does not name the mistake %s:3: ListenPort:\n%s", confA, log)
	}
}

// monotonicNow is CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC.
func monotonicNow(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// unitFile is the systemd unit in the repository.
const unitFile = "../../dist/systemd/tapwire@.service"

// TestUnitVerify checks dist/systemd/tapwire@.service with systemd-analyze
// verify, as an instance whose ExecStart runs the tapwire built for the
// test (verify wants an executable there): any complaint about the unit
// fails the test.
func TestUnitVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("needs systemd-analyze (Debian package systemd)")
	}
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if !strings.Contains(text, "\nExecStart=/usr/bin/tapwire up --foreground %i\n") {
		t.Fatalf("%s: ExecStart is not /usr/bin/tapwire up --foreground %%i", unitFile)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "tapwire@twsd0.service")
	text = strings.ReplaceAll(text, "/usr/bin/tapwire ", filepath.Join(binaries(t), "tapwire")+" ")
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", unit)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		// Other units' complaints (this host's) are not ours.
		if strings.Contains(line, unit) || strings.Contains(line, "tapwire@") {
			t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(line))
		}
	}
	// What the unit must say, and what it must not.
	for _, want := range []string{"\nType=notify\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", "\nRestart=on-failure\n",
		"\nAfter=network-online.target nss-lookup.target\n", "\nWants=network-online.target nss-lookup.target\n",
		"\nDeviceAllow=/dev/net/tun rw\n", "\nProtectHome=yes\n", "\nWantedBy=multi-user.target\n"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("%s lacks %q", unitFile, strings.TrimSpace(want))
		}
	}
	if strings.Contains(string(raw), "\nProtectKernelTunables=yes") {
		t.Errorf("%s: ProtectKernelTunables=yes keeps a default route from setting src_valid_mark", unitFile)
	}
}

// unitBoundingSet returns the capabilities of the unit's
// CapabilityBoundingSet, as setpriv names them (net_admin).
func unitBoundingSet(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CapabilityBoundingSet="); ok {
			var caps []string
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			return caps
		}
	}
	t.Fatalf("%s has no CapabilityBoundingSet", unitFile)
	return nil
}

// TestUnitCapabilities runs tapwire up -f with the bounding set of
// tapwire@.service and nothing inheritable (setpriv), as systemd would: it
// comes up (its device's netlink needs no CAP_SYS_ADMIN), limits the
// device's GSO segments, drops to CAP_NET_ADMIN, and takes the interface
// down again.
func TestUnitCapabilities(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (Debian package util-linux)")
	}
	nstest.GuardHost(t)
	ns := nstest.New(t)
	caps := unitBoundingSet(t)
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + c
	}
	conf := filepath.Join(t.TempDir(), "twunit0.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51091\nAddress = 198.51.100.1/24\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.51.100.2/32, 203.0.113.0/24\n", key(t), key(t).PublicKey())), 0o600)
	u, ready := upForegroundWith(t, ns, []string{setpriv, "--bounding-set", bounding, "--inh-caps=-all"}, conf)
	if !strings.Contains(ready["STATUS"], "privileges: CAP_NET_ADMIN (dropped after start)") {
		t.Errorf("READY=1 status %q", ready["STATUS"])
	}
	requireCaps(t, u.cmd.Process.Pid, 1<<privdrop.NetAdmin)
	if out := ns.Run("ip", "-d", "link", "show", "twunit0"); !strings.Contains(out, "gso_max_segs 128 ") {
		t.Errorf("the device's GSO segments are not limited to what a read splits:\n%s", out)
	}
	if out := ns.Run("ip", "route", "show", "203.0.113.0/24"); !strings.Contains(out, "dev twunit0") {
		t.Errorf("no route for the peer's allowed IPs: %q", out)
	}
	if out, err := tapwireIn(t, ns, "down", "twunit0"); err != nil {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	if err := u.wait(t); err != nil {
		t.Errorf("tapwire up -f: %v\n%s", err, u.out)
	}
	requireNothingLeft(t, ns, "twunit0", "")
}
