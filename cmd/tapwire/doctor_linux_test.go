package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/doctor"
)

// helperEnv makes the test binary act as the tapwire command: see
// TestDoctorHelperProcess.
const helperEnv = "TAPWIRE_DOCTOR_TEST_HELPER"

// TestDoctorHelperProcess is not a test: re-executed with helperEnv set, the
// test binary runs "tapwire ARGS..." (the arguments after "--") and exits
// with its status. The real tests run it under unshare and setpriv.
func TestDoctorHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(context.Background(), os.Stdout, os.Stderr, args))
}

// tapwireCmd returns a command running "tapwire ARGS..." (this test binary
// in helper mode), behind the wrapper command line, if any.
func tapwireCmd(t *testing.T, wrapper []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append(append([]string{}, wrapper...), exe, "-test.run=^TestDoctorHelperProcess$", "--"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	return cmd
}

// runCmd runs cmd and returns its stdout, stderr and exit status.
func runCmd(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("%v: %v", cmd.Args, err)
	return "", "", -1
}

func wantAll(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("%s lacks %q:\n%s", what, s, text)
		}
	}
}

// requireUsableRoot skips the test unless it runs as root on a host where
// TUN/TAP works, the ground the real tests take away piece by piece.
func requireUsableRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	if r := doctor.Diagnose(doctor.Gather()); !r.Usable {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Skipf("TUN/TAP does not work on this host to begin with:\n%s", b.String())
	}
}

// nodeState is what must not change on the real host: /dev/net/tun and
// the mounts at /dev/net.
func nodeState(t *testing.T) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(doctor.NodePath, &st); err != nil {
		t.Fatalf("stat %s: %v", doctor.NodePath, err)
	}
	mounts := 0
	info, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/dev/net" {
			mounts++
		}
	}
	return fmt.Sprintf("%d mounts on /dev/net; node c %d:%d inode %d mode %o",
		mounts, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Ino, st.Mode)
}

// hideNode runs the command in a private mount namespace where /dev/net is
// an empty tmpfs: /dev/net/tun is missing there and only there.
var hideNode = []string{"unshare", "-m", "--propagation", "private", "sh", "-c", `mount -t tmpfs tmpfs /dev/net && exec "$0" "$@"`}

func TestDoctorMissingNode(t *testing.T) {
	requireUsableRoot(t, "unshare")
	before := nodeState(t)

	out, errOut, code := runCmd(t, tapwireCmd(t, hideNode, "doctor"))
	if code != 1 {
		t.Errorf("exit status %d, want 1\n%s%s", code, out, errOut)
	}
	wantAll(t, "output", out,
		"FAIL  device-node    /dev/net/tun does not exist",
		"mknod /dev/net/tun c 10 200",
		"chmod 0666 /dev/net/tun",
		"tapwire doctor --fix",
		"FAIL  create-tun",
		"(ENOENT)",
		"verdict: TUN/TAP is NOT usable here: the device node /dev/net/tun is missing")
	wantAll(t, "stderr", errOut, "tapwire doctor: TUN/TAP is not usable on this host")

	out, errOut, code = runCmd(t, tapwireCmd(t, hideNode, "doctor", "--fix"))
	if code != 0 {
		t.Errorf("--fix: exit status %d, want 0\n%s%s", code, out, errOut)
	}
	wantAll(t, "--fix output", out,
		"fixed  created /dev/net/tun (character device 10:200, mode 0666)",
		"ok    device-node    /dev/net/tun: character device 10:200, mode 0666",
		"ok    create-tun     created and removed TUN device",
		"ok    create-tap     created and removed TAP device",
		"verdict: TUN/TAP is usable here")

	// Nothing leaked into the real /dev/net.
	if after := nodeState(t); after != before {
		t.Errorf("the real /dev/net changed: %q, was %q", after, before)
	}
}

func TestDoctorNoNetAdmin(t *testing.T) {
	requireUsableRoot(t, "setpriv")
	// As root, a dropped bounding-set bit is what keeps the capability away
	// after exec: root's permitted set is the bounding set.
	dropCap := []string{"setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"}
	if out, err := exec.Command(dropCap[0], append(dropCap[1:], "true")...).CombinedOutput(); err != nil {
		t.Skipf("setpriv cannot drop CAP_NET_ADMIN here: %v: %s", err, out)
	}

	out, errOut, code := runCmd(t, tapwireCmd(t, dropCap, "doctor"))
	if code != 1 {
		t.Errorf("exit status %d, want 1\n%s%s", code, out, errOut)
	}
	wantAll(t, "output", out,
		"FAIL  capability     CAP_NET_ADMIN is not effective (uid 0",
		"cause: no CAP_NET_ADMIN",
		"(EPERM)",
		"verdict: TUN/TAP is NOT usable here: no CAP_NET_ADMIN")
	// The fix depends on the environment: setcap on a host, --cap-add in
	// Docker or Podman, the container's own setting elsewhere.
	capFix := fixOf(out, "capability")
	if !strings.Contains(capFix, "setcap cap_net_admin+ep") && !strings.Contains(capFix, "--cap-add NET_ADMIN") &&
		!strings.Contains(strings.ToLower(capFix), "net_admin") {
		t.Errorf("the capability check's fix names no way to get CAP_NET_ADMIN:\n%s\n%s", capFix, out)
	}

	// The same as JSON.
	out, errOut, code = runCmd(t, tapwireCmd(t, dropCap, "doctor", "--json"))
	if code != 1 {
		t.Errorf("--json: exit status %d, want 1\n%s%s", code, out, errOut)
	}
	r := parseReport(t, out)
	if r.Usable {
		t.Error("usable without CAP_NET_ADMIN")
	}
	if c := r.Result(doctor.CheckCapability); c.Status != doctor.Fail || !strings.Contains(c.Cause, "no CAP_NET_ADMIN") {
		t.Errorf("capability: %+v", c)
	}
	if c := r.Result(doctor.CheckCreateTUN); c.Status != doctor.Fail || !strings.Contains(c.Cause, "no CAP_NET_ADMIN") {
		t.Errorf("create-tun: %+v", c)
	}
}

// TestDoctorDeviceCgroup runs the doctor in a cgroup v1 devices cgroup that
// denies c 10:200. Such a cgroup lists only "a *:* rwm", hiding the deny, so
// the doctor must infer it from EPERM on opening a good node.
func TestDoctorDeviceCgroup(t *testing.T) {
	requireUsableRoot(t)
	base := "/sys/fs/cgroup/devices"
	if _, err := os.Stat(filepath.Join(base, "devices.deny")); err != nil {
		t.Skip("no cgroup v1 devices controller at " + base)
	}
	cg := filepath.Join(base, fmt.Sprintf("twdoc-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot make a devices cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			t.Errorf("removing %s: %v", cg, err)
		}
	})
	if err := os.WriteFile(filepath.Join(cg, "devices.deny"), []byte("c 10:200 rwm"), 0); err != nil {
		t.Skipf("cannot deny c 10:200 in %s: %v", cg, err)
	}
	enter := []string{"sh", "-c", `echo $$ > "` + cg + `/cgroup.procs" && exec "$0" "$@"`}
	out, errOut, code := runCmd(t, tapwireCmd(t, enter, "doctor"))
	if code != 1 {
		t.Errorf("exit status %d, want 1\n%s%s", code, out, errOut)
	}
	wantAll(t, "output", out,
		"FAIL  device-cgroup",
		"inferred",
		"devices cgroup forbids c 10:200",
		"(EPERM)",
		"verdict: TUN/TAP is NOT usable here: the devices cgroup forbids c 10:200")
}

// fixOf returns the fix lines printed under a check in the text output.
func fixOf(out, id string) string {
	var b strings.Builder
	in, fix := false, false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case len(line) > 6 && line[:6] != "      ":
			in = strings.HasPrefix(line[6:], id+" ")
			fix = false
		case in && strings.HasPrefix(line, "      fix:"):
			fix = true
			b.WriteString(line + "\n")
		case in && fix && strings.HasPrefix(line, "             "):
			b.WriteString(line + "\n")
		default:
			fix = false
		}
	}
	return b.String()
}

func parseReport(t *testing.T, out string) doctor.Report {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if _, ok := raw["usable"].(bool); !ok {
		t.Errorf("no boolean usable: %s", out)
	}
	results, _ := raw["results"].([]any)
	if len(results) != 7 {
		t.Fatalf("%d results, want 7:\n%s", len(results), out)
	}
	for _, x := range results {
		m, _ := x.(map[string]any)
		for _, k := range []string{"id", "status", "summary", "cause", "fix"} {
			if _, ok := m[k].(string); !ok {
				t.Errorf("result lacks string %q: %v", k, m)
			}
		}
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDoctorJSON runs on any host, root or not: the report must parse, and
// the exit status must agree with "usable".
func TestDoctorJSON(t *testing.T) {
	for _, flag := range []string{"--json", "-json"} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), &stdout, &stderr, []string{"doctor", flag})
		r := parseReport(t, stdout.String())
		if r.Usable != (code == 0) {
			t.Errorf("%s: usable %v but exit status %d\n%s", flag, r.Usable, code, stderr.String())
		}
		if code != 0 && code != 1 {
			t.Errorf("%s: exit status %d", flag, code)
		}
		var ids []string
		for _, res := range r.Results {
			ids = append(ids, res.ID)
		}
		if got := strings.Join(ids, " "); got != "device-node capability environment device-cgroup kernel create-tun create-tap" {
			t.Errorf("checks %s", got)
		}
		if r.Kernel == "" || r.Environment == "" {
			t.Errorf("kernel %q, environment %q", r.Kernel, r.Environment)
		}
	}
}

// TestDoctorHost runs the human form on this host as it is.
func TestDoctorHost(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &stdout, &stderr, []string{"doctor"})
	out := stdout.String()
	t.Logf("tapwire doctor (exit %d):\n%s%s", code, out, stderr.String())
	wantAll(t, "output", out, "device-node", "capability", "environment", "device-cgroup", "kernel", "create-tun", "create-tap", "verdict: ")
	switch code {
	case 0:
		wantAll(t, "output", out, "verdict: TUN/TAP is usable here")
	case 1:
		wantAll(t, "output", out, "verdict: TUN/TAP is NOT usable here")
		wantAll(t, "stderr", stderr.String(), "tapwire doctor: TUN/TAP is not usable on this host")
	default:
		t.Errorf("exit status %d", code)
	}
}

func TestDoctorUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"doctor", "-h"}, 0, "Usage: tapwire doctor [--json] [--fix]"},
		{[]string{"help", "doctor"}, 0, "sudo tapwire doctor --fix"},
		{[]string{"doctor", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"doctor", "extra"}, 2, "unexpected argument"},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), &out, &out, tc.args); code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("tapwire %v: exit %d, want %d; output lacks %q?\n%s", tc.args, code, tc.code, tc.out, out.String())
		}
	}
}
