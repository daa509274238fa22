//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/uapi"
)

// startBystander starts an unrelated process (sh running sleep, with args
// after the script as its $0 and $@) that the test kills when it ends, and
// returns it and a channel closed when it exits.
func startBystander(t *testing.T, args ...string) (*exec.Cmd, chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", "sleep 60; true"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd, exited
}

// TestDownStalePidFile: tapwire down never signals the process a stale pid
// file names (left by a daemon that was killed; the pid has been given to
// another process since): neither one whose command line is something
// else, nor one whose command line looks like tapwire up of the interface
// but that started after the state file's process. The stale files go,
// with a message.
func TestDownStalePidFile(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string // the bystander's $0 and $@
		state bool     // a state file with another start time
		why   string
	}{
		{"another program", nil, false, "is not tapwire"},
		{"same command line, later start", []string{"tapwire", "up", "/etc/wireguard/twstale0.conf"}, true, "another process than the one that wrote it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd, exited := startBystander(t, c.args...)
			pid := cmd.Process.Pid
			if err := os.WriteFile(pidPath("twstale0"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { removeRunFiles("twstale0") })
			if c.state {
				_, start, err := procStat(pid)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(runState{PID: pid, StartTime: start - 1, Config: "/etc/wireguard/twstale0.conf"})
				os.WriteFile(statePath("twstale0"), b, 0o600)
			} else if live, why := isUpOf(pid, "twstale0", nil); live || !strings.Contains(why, c.why) {
				t.Fatalf("isUpOf: %v, %q", live, why)
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), &stdout, &stderr, []string{"down", "twstale0"})
			select {
			case <-exited:
				t.Fatalf("tapwire down signalled process %d, which is not its daemon", pid)
			case <-time.After(100 * time.Millisecond): // a signal is delivered at once; this is slack for a slow machine
			}
			if code != 0 || stdout.String() != "twstale0 is down\n" || !strings.Contains(stderr.String(), "tapwire down: twstale0: removing the stale "+pidPath("twstale0")) ||
				!strings.Contains(stderr.String(), c.why) {
				t.Errorf("tapwire down: exit %d\nstdout: %s\nstderr: %s", code, &stdout, &stderr)
			}
			for _, p := range []string{pidPath("twstale0"), statePath("twstale0")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s left behind", p)
				}
			}
		})
	}
	// Nothing at all: not up, as before.
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), &stdout, &stderr, []string{"down", "twstale0"}); code != 1 || !strings.Contains(stderr.String(), "twstale0 is not up") {
		t.Errorf("tapwire down of nothing: exit %d: %s%s", code, &stdout, &stderr)
	}
}

func TestUpArgsName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"/usr/bin/tapwire", "up", "/etc/wireguard/wg0.conf"}, true},
		{[]string{"tapwire", "up", "-f", "wg0.conf"}, true},
		{[]string{"tapwire", "up", "wg0.conf", "--foreground"}, true},
		{[]string{"tapwire", "up", "wg1.conf"}, false},
		{[]string{"/usr/bin/tapwire", "up", "--foreground", "wg0"}, true},
		{[]string{"tapwire", "up", "wg1"}, false},
		{[]string{"tapwire", "down", "wg0.conf"}, false},
		{[]string{"tapwire", "wg0.conf", "up"}, false},
		{[]string{"sleep", "60"}, false},
		{[]string{"tapwire"}, false},
		{nil, false},
	} {
		if got := upArgsName(c.args, "wg0"); got != c.want {
			t.Errorf("upArgsName(%q) = %v", c.args, got)
		}
	}
}

// daemonPid returns the pid in the pid file of name.
func daemonPid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(pidPath(name))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// kill9 kills the daemon of name with SIGKILL and waits until it is gone.
func kill9(t *testing.T, name string) {
	t.Helper()
	pid := daemonPid(t, name)
	if live, why := isUpOf(pid, name, nil); !live {
		t.Fatalf("the pid file names %d: %s", pid, why)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if state, _, err := procStat(pid); err != nil || state == 'Z' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there after SIGKILL", pid)
		}
	}
}

// requireNothingLeft fails the test if anything of the interface name
// is left in ns or in the files: device, socket, pid and state file,
// policy rule, route of table 51820, address on the bridge br.
func requireNothingLeft(t *testing.T, ns *nstest.NS, name, br string) {
	t.Helper()
	if out := ns.Run("ip", "-o", "link"); strings.Contains(out, name) {
		t.Errorf("the device is left:\n%s", out)
	}
	for _, p := range []string{filepath.Join(uapi.SocketDir, name+".sock"), pidPath(name), statePath(name)} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left", p)
		}
	}
	for _, v := range []string{"-4", "-6"} {
		if out := ns.Run("ip", v, "rule", "show"); strings.Contains(out, "51820") || strings.Contains(out, "suppress") {
			t.Errorf("ip %s rule: rules are left:\n%s", v, out)
		}
		if out := ns.Run("ip", v, "route", "show", "table", "all"); strings.Contains(out, name) || strings.Contains(out, "table 51820") {
			t.Errorf("ip %s route: routes are left:\n%s", v, out)
		}
	}
	if br != "" {
		if out := ns.Run("ip", "addr", "show", br); strings.Contains(out, "198.51.100.1") || strings.Contains(out, "2001:db8:2::1") {
			t.Errorf("addresses left on %s:\n%s", br, out)
		}
	}
}

// TestKill9Recovers kills a running tapwire up with SIGKILL, which leaves
// its pid file, state, UAPI socket, and the policy rules of a default
// route or the addresses on a bridge (the device goes with the process),
// then runs tapwire up of the same file again, or tapwire down: either
// takes back what was left, and after tapwire down nothing is.
func TestKill9Recovers(t *testing.T) {
	nstest.GuardHost(t)
	for _, kind := range []struct {
		name, extra, allowed, br string
		left                     func(ns *nstest.NS) string // what is left after kill -9
	}{
		{"default route", "", "0.0.0.0/0, ::/0", "", func(ns *nstest.NS) string { return ns.Run("ip", "rule", "show") + ns.Run("ip", "-6", "rule", "show") }},
		{"bridge", "Mode = tap\nBridge = twk9br", "", "twk9br", func(ns *nstest.NS) string { return ns.Run("ip", "addr", "show", "twk9br") }},
	} {
		for _, then := range []string{"up", "down"} {
			t.Run(kind.name+", then "+then, func(t *testing.T) {
				ns := nstest.New(t)
				dir := t.TempDir()
				name := "twk9" + then
				conf := filepath.Join(dir, name+".conf")
				text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51041\nAddress = 198.51.100.1/24, 2001:db8:2::1/64\n%s\n", key(t), kind.extra)
				if kind.allowed != "" {
					text += fmt.Sprintf("\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", key(t).PublicKey(), kind.allowed)
				}
				os.WriteFile(conf, []byte(text), 0o600)
				up(t, ns, conf)
				t.Cleanup(func() { removeRunFiles(name); uapi.RemoveStale(name) })

				kill9(t, name)
				left := kind.left(ns)
				if !strings.Contains(left, "suppress_prefixlength") && !strings.Contains(left, "198.51.100.1/24") {
					t.Fatalf("kill -9 left nothing to clean up (the test is pointless):\n%s", left)
				}
				for _, p := range []string{pidPath(name), statePath(name), filepath.Join(uapi.SocketDir, name+".sock")} {
					if _, err := os.Lstat(p); err != nil {
						t.Errorf("after kill -9: %v", err)
					}
				}

				if then == "up" {
					out, err := tapwireIn(t, ns, "up", conf)
					if err != nil || !strings.Contains(out, name+" is up") {
						t.Fatalf("tapwire up after kill -9: %v\n%s", err, out)
					}
					for _, want := range []string{"tapwire up: " + name + ": removing the stale " + pidPath(name) + ": process ", " is gone",
						"tapwire up: " + name + ": taking back what process ", "removed the stale socket"} {
						if !strings.Contains(out, want) {
							t.Errorf("tapwire up after kill -9 does not say %q:\n%s", want, out)
						}
					}
					if out := ns.Run("ip", "link", "show", name); !strings.Contains(out, "UP") {
						t.Errorf("not up again:\n%s", out)
					}
					if out, err := ns.Output("wg", "show", name); err != nil {
						t.Errorf("wg show after recovery: %v\n%s", err, out)
					}
				}
				out, err := tapwireIn(t, ns, "down", conf)
				if err != nil || !strings.Contains(out, name+" is down") {
					t.Fatalf("tapwire down: %v\n%s", err, out)
				}
				if then == "down" && !strings.Contains(out, "taking back what process ") {
					t.Errorf("tapwire down after kill -9 does not say it took the leftovers back:\n%s", out)
				}
				requireNothingLeft(t, ns, name, kind.br)
			})
		}
	}
}

// TestHookRunsTapwireUp: a PostUp hook that brings up a second interface
// with tapwire up completes (it hung: the hook believed it was the
// background child), and both interfaces come up.
func TestHookRunsTapwireUp(t *testing.T) {
	nstest.GuardHost(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	second := filepath.Join(dir, "twhook1.conf")
	os.WriteFile(second, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51052\nAddress = 198.51.100.11/24\n", key(t))), 0o600)
	first := filepath.Join(dir, "twhook0.conf")
	done := filepath.Join(dir, "hook-returned")
	os.WriteFile(first, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51051\nAddress = 198.51.100.10/24\nPostUp = %s up %s\nPostUp = touch %s\n",
		key(t), filepath.Join(binaries(t), "tapwire"), second, done)), 0o600)
	t.Cleanup(func() { tapwireIn(t, ns, "down", second) })
	up(t, ns, first)
	// Ready comes after the PostUp hooks: the first one returned.
	if _, err := os.Stat(done); err != nil {
		t.Errorf("the hook that runs tapwire up did not return: %v", err)
	}
	for _, name := range []string{"twhook0", "twhook1"} {
		if out := ns.Run("ip", "link", "show", name); !strings.Contains(out, "UP") {
			t.Errorf("%s is not up:\n%s", name, out)
		}
		if live, why := isUpOf(daemonPid(t, name), name, nil); !live {
			t.Errorf("%s: %s", name, why)
		}
	}
}

// TestHookCannotDecide: a hook that writes to descriptor 3 (the pipe on
// which the background process tells tapwire up its verdict, in the hook's
// parent) reaches nothing: an injected error does not fail a good up, and
// an injected "ready" does not make a failing up succeed.
func TestHookCannotDecide(t *testing.T) {
	nstest.GuardHost(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	write := func(name, hooks string) string {
		conf := filepath.Join(dir, name+".conf")
		os.WriteFile(conf, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 198.51.100.20/24\n%s\n", key(t), hooks)), 0o600)
		return conf
	}
	good := write("twfd0", `PreUp = { echo "error: injected by a hook" >&3; } 2>/dev/null || true`)
	out := up(t, ns, good)
	if strings.Contains(out, "injected") {
		t.Errorf("the hook's words reached tapwire up:\n%s", out)
	}
	bad := write("twfd1", `PostUp = { echo ready >&3; } 2>/dev/null || true; exit 3`)
	t.Cleanup(func() { tapwireIn(t, ns, "down", bad) })
	out, err := tapwireIn(t, ns, "up", bad)
	if err == nil || strings.Contains(out, "is up") || !strings.Contains(out, "PostUp hook") || !strings.Contains(out, "exit status 3") {
		t.Errorf("tapwire up with a failing PostUp that wrote ready: %v\n%s", err, out)
	}
	if links := ns.Run("ip", "-o", "link"); strings.Contains(links, "twfd1") {
		t.Errorf("the failed up left its interface:\n%s", links)
	}
}

// TestUpConfigErrorsCreateNothing: a file with a bad value of any kind is
// refused by tapwire up with its file, line and key, and nothing is
// created: no hook runs, no device, no socket, no pid, state or log file.
func TestUpConfigErrorsCreateNothing(t *testing.T) {
	nstest.GuardHost(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "hook-ran")
	peerKey := key(t).PublicKey().String()
	// Lines 1-3; the bad line is line 4 ([Peer] sections start at 4).
	head := "[Interface]\nPrivateKey = " + key(t).String() + "\nPreUp = touch " + marker + "\n"
	peer := "[Peer]\nPublicKey = " + peerKey + "\n"
	for _, c := range []struct {
		name, text string
		line       int
		key        string
	}{
		{"private key", "[Interface]\nPreUp = touch " + marker + "\nAddress = 198.51.100.1/24\nPrivateKey = nope\n", 4, "PrivateKey"},
		{"no private key", "[Interface]\nPreUp = touch " + marker + "\n", 1, "PrivateKey"},
		{"listen port", head + "ListenPort = 70000\n", 4, "ListenPort"},
		{"fwmark", head + "FwMark = 0x1ffffffff\n", 4, "FwMark"},
		{"address", head + "Address = 198.51.100.1/33\n", 4, "Address"},
		{"dns", head + "DNS = 192.0.2.300\n", 4, "DNS"},
		{"mtu", head + "MTU = 10\n", 4, "MTU"},
		{"table name", head + "Table = nosuchtable\n", 4, "Table"},
		{"table number", head + "Table = 08\n", 4, "Table"},
		{"save config", head + "SaveConfig = maybe\n", 4, "SaveConfig"},
		{"mode", head + "Mode = ethernet\n", 4, "Mode"},
		{"bridge without tap", head + "Bridge = twbr9\n", 4, "Bridge"},
		{"clamp mss", head + "ClampMSS = perhaps\n", 4, "ClampMSS"},
		{"mac ageing", head + "MACAgeing = 5m\nMode = tap\n", 4, "MACAgeing"},
		{"max macs", head + "MaxMACsPerPeer = many\nMode = tap\n", 4, "MaxMACsPerPeer"},
		{"flood limit", head + "FloodLimit = 1000/s\nMode = tap\n", 4, "FloodLimit"},
		{"flood limit without tap", head + "FloodLimit = 1000\n", 4, "FloodLimit"},
		{"unknown key", head + "PostUpp = true\n", 4, "PostUpp"},
		{"no equals", head + "ListenPort 51820\n", 4, "ListenPort 51820"},
		{"unknown section", head + "[Peers]\n", 4, "[Peers]"},
		{"public key", head + "[Peer]\nPublicKey = short\n", 5, "PublicKey"},
		{"preshared key", head + peer + "PresharedKey = short\n", 6, "PresharedKey"},
		{"allowed ips", head + peer + "AllowedIPs = 10.0.0.0/8 10.1.0.0/16\n", 6, "AllowedIPs"},
		{"endpoint", head + peer + "Endpoint = 192.0.2.1\n", 6, "Endpoint"},
		{"keepalive", head + peer + "PersistentKeepalive = 70000\n", 6, "PersistentKeepalive"},
		{"allowed macs", head + "Mode = tap\n" + peer + "AllowedMACs = ff:ff:ff:ff:ff:ff\n", 7, "AllowedMACs"},
		{"interface key in peer", head + peer + "ListenPort = 1\n", 6, "ListenPort"},
		{"duplicate peer", head + peer + peer, 7, "PublicKey"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "twbadcfg0"
			conf := filepath.Join(dir, name+".conf")
			if err := os.WriteFile(conf, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := tapwireIn(t, ns, "up", conf)
			if want := fmt.Sprintf("%s:%d: %s: ", conf, c.line, c.key); err == nil || !strings.Contains(out, want) {
				t.Errorf("tapwire up: %v, want an error starting %q:\n%s", err, want, out)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the PreUp hook ran")
				os.Remove(marker)
			}
			if links := ns.Run("ip", "-o", "link"); strings.Contains(links, name) {
				t.Errorf("a device is left:\n%s", links)
			}
			for _, p := range []string{pidPath(name), statePath(name), filepath.Join(runDir(), name+".log"), filepath.Join(uapi.SocketDir, name+".sock")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
	// A file whose name is no interface name: refused before it is read.
	conf := filepath.Join(dir, "not an interface name.conf")
	os.WriteFile(conf, []byte(head), 0o600)
	if out, err := tapwireIn(t, ns, "up", conf); err == nil || !strings.Contains(out, conf) {
		t.Errorf("tapwire up %q: %v\n%s", conf, err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the PreUp hook ran")
	}
}

// TestStateFile: the state a running tapwire up keeps names it (its pid
// and start time, so that isUpOf finds it live) and its leftovers.
func TestStateFile(t *testing.T) {
	t.Parallel()
	st, err := newRunState("wg0.conf")
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.StartTime == 0 || st.NetNS == "" || !filepath.IsAbs(st.Config) {
		t.Errorf("newRunState: %+v", st)
	}
	if live, why := isUpOf(os.Getpid(), "wg0", st); !live {
		t.Errorf("isUpOf(self, its own state): %s", why)
	}
	st.StartTime++
	if live, _ := isUpOf(os.Getpid(), "wg0", st); live {
		t.Error("isUpOf with another start time: live")
	}
	if live, _ := isUpOf(os.Getpid(), "wg0", nil); live {
		t.Error("isUpOf(the test binary, no state): live")
	}
}

// TestUpInterruptedTakesBack interrupts tapwire up while a PostUp hook
// hangs, as the ready timeout does after 60 s: its background process is
// asked to stop, kills the hook and takes back the policy rules it added,
// rather than being killed with them left behind.
func TestUpInterruptedTakesBack(t *testing.T) {
	nstest.GuardHost(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	name := "twintr0"
	conf := filepath.Join(dir, name+".conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 198.51.100.1/24\nPostUp = sleep 600\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 0.0.0.0/0, ::/0\n",
		key(t), key(t).PublicKey())), 0o600)
	cmd := ns.Command(filepath.Join(binaries(t), "tapwire"), "up", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		tapwireIn(t, ns, "down", name)
	})
	for deadline := time.Now().Add(time.Minute); !strings.Contains(ns.Run("ip", "-6", "rule", "show"), "suppress_prefixlength"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no policy rules after a minute; tapwire up says:\n%s", &out)
		}
	}
	// ip netns exec runs tapwire in its own process: the interrupt is its.
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(out.String(), "stopped it (it said: PostUp hook \"sleep 600\": stopped: ") {
			t.Errorf("tapwire up interrupted: %v\n%s", err, &out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("tapwire up still running a minute after the interrupt:\n%s", &out)
	}
	requireNothingLeft(t, ns, name, "")
}

// TestUpUAPIHostileClients sends a running tapwire up junk, an oversized
// set and requests it never finishes on its UAPI socket: the daemon keeps
// serving wg show, and the oversized set changed nothing.
func TestUpUAPIHostileClients(t *testing.T) {
	requireWGTool(t)
	nstest.GuardHost(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	name := "twuapih0"
	peer := key(t).PublicKey()
	conf := filepath.Join(dir, name+".conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51061\nAddress = 198.51.100.30/24\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.51.100.31/32\n",
		key(t), peer)), 0o600)
	up(t, ns, conf)
	sock := filepath.Join(uapi.SocketDir, name+".sock")
	dial := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(time.Minute))
		return c
	}
	for range 20 {
		dial() // idle
	}
	io.WriteString(dial(), "set=1\nlisten_port=1\npublic_key=") // stops in a line
	junk := dial()
	junk.Write([]byte("\x00\xff\x01 garbage\n"))
	big := dial()
	line := "allowed_ip=10.1.2.3/32\n"
	go io.WriteString(big, "set=1\npublic_key="+hex.EncodeToString(peer[:])+"\n"+strings.Repeat(line, uapi.DefaultMaxSetSize/len(line)+1)+"\n")
	for _, c := range []struct {
		conn net.Conn
		want string
	}{{junk, "errno=-22"}, {big, "errno=-90"}} {
		answer, err := bufio.NewReader(c.conn).ReadString('\n')
		if strings.TrimSpace(answer) != c.want {
			t.Errorf("answer %q (%v), want %s", answer, err, c.want)
		}
	}
	dump, err := ns.Output("wg", "show", name, "dump")
	if err != nil {
		t.Fatalf("wg show beside hostile clients: %v\n%s", err, dump)
	}
	if lines := strings.Split(strings.TrimSpace(dump), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "\t198.51.100.31/32\t") || !strings.Contains(lines[0], "\t51061\t") {
		t.Errorf("wg show dump after the oversized set:\n%s", dump)
	}
}

// Two tapwire ups of one interface started together: the second finds the
// run lock taken and stops before it writes or runs anything; the lock
// file goes with the first.
func TestRunLock(t *testing.T) {
	unlock, err := lockRun("twlock0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockRun("twlock0"); err == nil || !strings.Contains(err.Error(), "another tapwire up") {
		t.Errorf("a second lock of twlock0: %v, want refused", err)
	}
	unlock()
	if _, err := os.Stat(filepath.Join(runDir(), "twlock0.lock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lock file stayed: %v", err)
	}
	unlock2, err := lockRun("twlock0")
	if err != nil {
		t.Fatalf("the lock after unlock: %v", err)
	}
	unlock2()
}

// A bad TAPWIRE_WORKERS is refused, naming the variable, before anything
// is made (the configuration file is not even read).
func TestUpBadWorkers(t *testing.T) {
	t.Setenv("TAPWIRE_WORKERS", "lots")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), &stdout, &stderr, []string{"up", "-f", filepath.Join(t.TempDir(), "twbad0.conf")})
	if code == 0 || !strings.Contains(stderr.String(), `TAPWIRE_WORKERS "lots": want a number of workers`) {
		t.Errorf("tapwire up with TAPWIRE_WORKERS=lots: exit %d\nstdout: %s\nstderr: %s", code, &stdout, &stderr)
	}
}
