//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/internal/privdrop"
)

// procCaps returns the status fields about privileges of every thread of
// process pid: "TID: CapEff ..." lines, one per field, and the fields of
// the process itself.
func procCaps(t *testing.T, pid int) (threads []map[string]string, proc map[string]string) {
	t.Helper()
	read := func(p string) map[string]string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{"path": p}
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		return m
	}
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of process %d: %v", pid, err)
	}
	for _, p := range tasks {
		threads = append(threads, read(p))
	}
	return threads, read(filepath.Join("/proc", strconv.Itoa(pid), "status"))
}

// requireCaps fails the test unless every thread of pid has exactly the
// capabilities mask in its permitted, effective and bounding sets, none
// inheritable or ambient, and no_new_privs.
func requireCaps(t *testing.T, pid int, mask uint64) {
	t.Helper()
	threads, _ := procCaps(t, pid)
	want := fmt.Sprintf("%016x", mask)
	for _, f := range threads {
		for k, v := range map[string]string{"CapPrm": want, "CapEff": want, "CapBnd": want, "CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1"} {
			if f[k] != v {
				t.Errorf("%s: %s %s, want %s", f["path"], k, f[k], v)
			}
		}
	}
}

// TestUpDropsPrivileges brings up an interface with tapwire up -f and a
// tapwire peer: once it is up, every thread of the daemon has
// CAP_NET_ADMIN and nothing else, for good, and status says so; then what
// the daemon still does works: wg set (allowed IPs, fwmark), a new
// handshake with the peer restarted, the peer roaming to another address,
// SaveConfig writing the file on down, and tapwire down taking everything
// back.
func TestUpDropsPrivileges(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	nstest.GuardHost(t)
	na, nb := nstest.New(t), nstest.New(t)
	na.Link(nb, "twva", "twvb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "192.0.2.1", port: 51081}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51082}
	name := "twpra"
	confA := writeConf(t, dir, name, a, "SaveConfig = true", b)
	confB := writeConf(t, dir, "twprb", b, "", a)
	up(t, nb, confB)
	u, ready := upForegroundIn(t, na, confA)
	pid := u.cmd.Process.Pid
	requireCaps(t, pid, 1<<privdrop.NetAdmin)
	if !strings.Contains(ready["STATUS"], "privileges: CAP_NET_ADMIN (dropped after start)") {
		t.Errorf("READY=1 status %q does not say what was kept", ready["STATUS"])
	}
	if out, err := tapwireIn(t, na, "status", name); err != nil || !strings.Contains(out, "\n  privileges: CAP_NET_ADMIN (dropped after start)\n") {
		t.Errorf("tapwire status: %v\n%s", err, out)
	}
	if out, err := tapwireIn(t, na, "status", "--json", name); err != nil || !strings.Contains(out, `"privileges": "CAP_NET_ADMIN (dropped after start)"`) {
		t.Errorf("tapwire status --json: %v\n%s", err, out)
	}
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)

	// wg set: allowed IPs, and a fwmark (SO_MARK takes CAP_NET_ADMIN).
	bKey := b.key.PublicKey().String()
	na.Run("wg", "set", name, "fwmark", "0x1234", "peer", bKey, "allowed-ips", "198.51.100.2/32,198.51.100.99/32")
	if out := na.Run("wg", "show", name, "fwmark"); strings.TrimSpace(out) != "0x1234" {
		t.Errorf("wg set fwmark after the drop: wg show says %q", out)
	}
	if out := na.Run("wg", "show", name, "allowed-ips"); !strings.Contains(out, "198.51.100.2/32 198.51.100.99/32") {
		t.Errorf("wg set allowed-ips after the drop:\n%s", out)
	}
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)

	// The peer restarts: it has no session, so the next packets take a
	// new handshake.
	if out, err := tapwireIn(t, nb, "down", confB); err != nil {
		t.Fatalf("tapwire down of the peer: %v\n%s", err, out)
	}
	up(t, nb, confB)
	pingtest.Ping(t, nb, "198.51.100.1", 3, 56)
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)

	// The peer moves to another address: the daemon follows it.
	nb.Run("ip", "addr", "del", "192.0.2.2/24", "dev", "twvb") // first: a primary address takes its secondaries with it
	nb.Run("ip", "addr", "add", "192.0.2.3/24", "dev", "twvb")
	pingtest.Ping(t, nb, "198.51.100.1", 3, 56)
	if out := na.Run("wg", "show", name, "endpoints"); !strings.Contains(out, bKey+"\t192.0.2.3:51082") {
		t.Errorf("the peer roamed to 192.0.2.3, wg show endpoints:\n%s", out)
	}
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)
	requireCaps(t, pid, 1<<privdrop.NetAdmin) // still, after all that

	out, err := tapwireIn(t, na, "down", name)
	if err != nil || !strings.Contains(out, name+" is down") {
		t.Fatalf("tapwire down: %v\n%s", err, out)
	}
	if err := u.wait(t); err != nil {
		t.Errorf("tapwire up -f: %v\n%s", err, u.out)
	}
	requireNothingLeft(t, na, name, "")
	saved, err := config.ParseFile(confA)
	if err != nil {
		t.Fatalf("the file SaveConfig wrote: %v", err)
	}
	if saved.Interface.FwMark != 0x1234 || len(saved.Peers) != 1 || saved.Peers[0].Endpoint != "192.0.2.3:51082" ||
		fmt.Sprint(saved.Peers[0].AllowedIPs) != "[198.51.100.2/32 198.51.100.99/32]" {
		raw, _ := os.ReadFile(confA)
		t.Errorf("SaveConfig after the drop did not write the running configuration:\n%s\nlog:\n%s", raw, u.out)
	}
}

// TestUpPrivilegesKept: a PostDown hook keeps root (the daemon's
// capabilities are those it started with, and status says why), and the
// hook runs at down; a ListenPort below 1024 keeps CAP_NET_BIND_SERVICE
// beside CAP_NET_ADMIN, and taking down a default route's policy rules
// needs no more.
func TestUpPrivilegesKept(t *testing.T) {
	nstest.GuardHost(t)
	_, self := procCaps(t, os.Getpid())
	t.Run("PostDown", func(t *testing.T) {
		ns := nstest.New(t)
		dir := t.TempDir()
		marker := filepath.Join(dir, "post-down")
		conf := filepath.Join(dir, "twprh0.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51085\nAddress = 198.51.100.1/24\nPostDown = echo down %%i > %s\n", key(t), marker)), 0o600)
		u, ready := upForegroundIn(t, ns, conf)
		threads, _ := procCaps(t, u.cmd.Process.Pid)
		for _, f := range threads {
			if f["CapEff"] != self["CapEff"] || f["CapBnd"] != self["CapBnd"] || f["NoNewPrivs"] != "0" {
				t.Errorf("%s: CapEff %s CapBnd %s NoNewPrivs %s, want what it started with: %s %s 0", f["path"], f["CapEff"], f["CapBnd"], f["NoNewPrivs"], self["CapEff"], self["CapBnd"])
			}
		}
		const want = "root (kept: PreDown/PostDown hooks)"
		if !strings.Contains(ready["STATUS"], want) {
			t.Errorf("READY=1 status %q, want it to say %q", ready["STATUS"], want)
		}
		if out, err := tapwireIn(t, ns, "status", "twprh0"); err != nil || !strings.Contains(out, "privileges: "+want) {
			t.Errorf("tapwire status: %v\n%s", err, out)
		}
		if out, err := tapwireIn(t, ns, "down", "twprh0"); err != nil {
			t.Fatalf("tapwire down: %v\n%s", err, out)
		}
		u.wait(t)
		if b, _ := os.ReadFile(marker); string(b) != "down twprh0\n" {
			t.Errorf("the PostDown hook wrote %q\n%s", b, u.out)
		}
	})
	t.Run("low port and default route", func(t *testing.T) {
		ns := nstest.New(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "twprl0.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 500\nAddress = 198.51.100.1/24, 2001:db8:2::1/64\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 0.0.0.0/0, ::/0\n",
			key(t), key(t).PublicKey())), 0o600)
		u, ready := upForegroundIn(t, ns, conf)
		requireCaps(t, u.cmd.Process.Pid, 1<<privdrop.NetAdmin|1<<privdrop.NetBindService)
		if want := "privileges: CAP_NET_ADMIN CAP_NET_BIND_SERVICE (dropped after start)"; !strings.Contains(ready["STATUS"], want) {
			t.Errorf("READY=1 status %q, want %q", ready["STATUS"], want)
		}
		if out := ns.Run("wg", "show", "twprl0", "listen-port"); strings.TrimSpace(out) != "500" {
			t.Errorf("listen port %q", out)
		}
		if out := ns.Run("ip", "rule", "show"); !strings.Contains(out, "suppress_prefixlength 0") {
			t.Fatalf("no policy rules for the default route:\n%s", out)
		}
		if out, err := tapwireIn(t, ns, "down", "twprl0"); err != nil {
			t.Fatalf("tapwire down: %v\n%s", err, out)
		}
		if err := u.wait(t); err != nil {
			t.Errorf("tapwire up -f: %v\n%s", err, u.out)
		}
		requireNothingLeft(t, ns, "twprl0", "")
	})
}

// TestPrivilegesToKeep: what a file keeps, in memory.
func TestPrivilegesToKeep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "wg0.conf")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		// Another user's file and directories: root without
		// CAP_DAC_OVERRIDE reaches them through everyone's bits.
		for _, p := range []string{path, dir, filepath.Dir(dir)} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name string
		in   config.Interface
		flag bool
		keep string
		why  string
	}{
		{"plain", config.Interface{ListenPort: 51820}, false, "CAP_NET_ADMIN", ""},
		{"random port", config.Interface{}, false, "CAP_NET_ADMIN", ""},
		{"low port", config.Interface{ListenPort: 443}, false, "CAP_NET_ADMIN CAP_NET_BIND_SERVICE", ""},
		{"low TCP port", config.Interface{ListenPort: 51820, ListenTCP: 443}, false, "CAP_NET_ADMIN CAP_NET_BIND_SERVICE", ""},
		{"PostUp only", config.Interface{PostUp: []string{"true"}, PreUp: []string{"true"}}, false, "CAP_NET_ADMIN", ""},
		{"PreDown", config.Interface{PreDown: []string{"true"}}, false, "none", "PreDown/PostDown hooks"},
		{"PostDown", config.Interface{PostDown: []string{"true"}}, false, "none", "PreDown/PostDown hooks"},
		{"DNS", config.Interface{DNS: []string{"192.0.2.53"}}, false, "none", "DNS, which taking the interface down resets"},
		{"flag", config.Interface{}, true, "none", "--keep-privileges"},
	} {
		keep, why := privilegesToKeep(&config.Config{Interface: c.in}, path, c.flag)
		if got := privdrop.Names(keep); got != c.keep || c.why == "" && why != "" || !strings.Contains(why, c.why) {
			t.Errorf("%s: keep %s (%q), want %s (%q)", c.name, got, why, c.keep, c.why)
		}
	}
}

// TestFileNeedsOverride: a file root reads, and a directory root writes,
// only through its owner's bits once CAP_DAC_OVERRIDE is gone.
func TestFileNeedsOverride(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it gives files to another user")
	}
	const other = 65534 // nobody
	mk := func(t *testing.T, dirUID, dirMode, fileUID, fileMode int) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "d")
		os.Mkdir(dir, 0o700)
		path := filepath.Join(dir, "wg0.conf")
		os.WriteFile(path, nil, 0o600)
		for _, f := range []struct {
			p         string
			uid, mode int
		}{{path, fileUID, fileMode}, {dir, dirUID, dirMode}} {
			if err := os.Chown(f.p, f.uid, f.uid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f.p, os.FileMode(f.mode&0o777)|map[bool]os.FileMode{true: os.ModeSticky}[f.mode&0o1000 != 0]); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	for _, c := range []struct {
		name                               string
		dirUID, dirMode, fileUID, fileMode int
		save                               bool
		want                               string
	}{
		{"root's", 0, 0o700, 0, 0o600, true, ""},
		{"another's, private", 0, 0o755, other, 0o600, false, "is not readable by its owner root (owner uid 65534, mode 0600)"},
		{"another's, readable", 0, 0o755, other, 0o644, false, ""},
		{"another's directory", other, 0o755, 0, 0o600, true, "SaveConfig writes"},
		{"another's directory, no SaveConfig", other, 0o755, 0, 0o600, false, ""},
		{"sticky, another's file", 0o0, 0o1777, other, 0o644, true, ""},
		{"sticky, another's file and directory", other, 0o1777, other, 0o644, true, "SaveConfig writes"},
		{"root's file, closed to its owner", 0, 0o700, 0, 0o044, false, "is not readable"},
		{"root's file in another's closed directory", other, 0o700, 0, 0o600, false, "which root may search only with CAP_DAC_OVERRIDE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := mk(t, c.dirUID, c.dirMode, c.fileUID, c.fileMode)
			got := fileNeedsOverride(path, c.save)
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Errorf("fileNeedsOverride = %q, want %q", got, c.want)
			}
		})
	}
}
