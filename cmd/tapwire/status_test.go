//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/tunnel"
	"github.com/tapwire/tapwire/uapi"
)

// fakeInfo is a UAPI backend that answers tapwire's information request
// as an interface would.
type fakeInfo struct{ info tunnel.Info }

func (f fakeInfo) Status() devconf.DeviceStatus     { return devconf.DeviceStatus{} }
func (f fakeInfo) Apply(devconf.DeviceConfig) error { return nil }
func (f fakeInfo) Info() any                        { return f.info }

// openDir returns a new directory that every user may search and list, and
// removes it when the test ends.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "twstatus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveInfo serves a fake tapwire interface on dir/NAME.sock (mode 0600,
// as tapwire up makes it) until the test ends, and returns the socket's path.
func serveInfo(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name+".sock")
	s, err := uapi.ListenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(fakeInfo{tunnel.Info{Name: name, Mode: "tun", MTU: 1420, ListenPort: 51820}})
	t.Cleanup(func() { s.Close() })
	return path
}

// TestStatusInfos reads a socket directory given to it: interfaces that
// answer, stale sockets, names that are not there, and sockets this user
// may not open.
func TestStatusInfos(t *testing.T) {
	dir := openDir(t)
	if infos, err := statusInfos(filepath.Join(dir, "none"), nil); err != nil || len(infos) != 0 {
		t.Errorf("no socket directory: %v, %v; want nothing and no error", infos, err)
	}
	if infos, err := statusInfos(dir, nil); err != nil || len(infos) != 0 {
		t.Errorf("empty socket directory: %v, %v; want nothing and no error", infos, err)
	}
	sock := serveInfo(t, dir, "twst0")
	// A stale socket: nobody listens on it any more.
	stale, err := uapi.ListenPath(filepath.Join(dir, "twstale.sock"))
	if err != nil {
		t.Fatal(err)
	}
	os.Link(filepath.Join(dir, "twstale.sock"), filepath.Join(dir, "twstale2.sock"))
	stale.Close() // removes twstale.sock; twstale2.sock stays, refusing connections
	if infos, err := statusInfos(dir, nil); err != nil || len(infos) != 1 || infos[0].Name != "twst0" {
		t.Errorf("listing: %+v, %v; want twst0 alone and no error", infos, err)
	}
	infos, err := statusInfos(dir, []string{"twst0", "nosuch0", "twstale2"})
	if len(infos) != 1 || err == nil {
		t.Errorf("named: %+v, %v; want twst0 and errors", infos, err)
	} else {
		wantAll(t, "the error", err.Error(), "nosuch0: no such tapwire interface (no "+filepath.Join(dir, "nosuch0.sock")+")",
			filepath.Join(dir, "twstale2.sock"))
	}

	if os.Geteuid() == 0 {
		t.Log("root opens every socket: TestStatusUnprivileged tries as another user")
		return
	}
	// Without root: a socket of ours closed to us is as root's is to us.
	if err := os.Chmod(sock, 0); err != nil {
		t.Fatal(err)
	}
	for _, names := range [][]string{nil, {"twst0"}} {
		infos, err := statusInfos(dir, names)
		if len(infos) != 0 || err == nil {
			t.Errorf("%v: %+v, %v; want a permission error", names, infos, err)
			continue
		}
		wantAll(t, "the error", err.Error(), "cannot open "+sock+" (owner ", ", mode 0000): permission denied",
			"this needs root (or CAP_DAC_OVERRIDE): run it with sudo")
	}
	if err := os.Chmod(dir, 0o300); err != nil { // searchable, not listable
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, err := statusInfos(dir, nil); err == nil || !strings.Contains(err.Error(), "cannot list "+dir+": permission denied; this needs root") {
		t.Errorf("unlistable directory: %v", err)
	}
}

// TestStatusUnprivileged runs tapwire status as nobody against a running
// interface's socket, root's with mode 0600: it must say that it needs root
// and fail, never that nothing runs. The socket directory is a test's own,
// bound over /var/run in a private mount namespace.
func TestStatusUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (to make a mount namespace and to become another user)")
	}
	for _, tool := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	root := openDir(t)
	if err := os.Mkdir(filepath.Join(root, "wireguard"), 0o755); err != nil {
		t.Fatal(err)
	}
	serveInfo(t, filepath.Join(root, "wireguard"), "twst0")
	bind := `mount --bind "$TWSTATUS_RUN" "$(readlink -f /var/run)" && exec `
	asRoot := []string{"unshare", "-m", "--propagation", "private", "sh", "-c", bind + `"$0" "$@"`}
	asNobody := []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		bind + `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$0" "$@"`}
	status := func(wrapper []string, args ...string) (string, string, int) {
		cmd := tapwireCmd(t, wrapper, append([]string{"status"}, args...)...)
		cmd.Env = append(cmd.Env, "TWSTATUS_RUN="+root)
		return runCmd(t, cmd)
	}

	// Root sees the interface (and the test sees that the directory is bound).
	out, errOut, code := status(asRoot)
	if code != 0 || !strings.Contains(out, "interface: twst0") {
		t.Fatalf("as root: exit %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{nil, {"twst0"}, {"--json"}} {
		out, errOut, code := status(asNobody, args...)
		if code != 1 || strings.Contains(out, "no tapwire interfaces") {
			t.Errorf("as nobody, status %v: exit %d, want 1\n%s%s", args, code, out, errOut)
		}
		wantAll(t, "stderr", errOut,
			"tapwire status: cannot open /var/run/wireguard/twst0.sock (owner root, mode 0600): permission denied; "+
				"this needs root (or CAP_DAC_OVERRIDE): run it with sudo")
	}
}

// printInfo shows a TAP hub's protections: the tap's pinned address, the
// flood limit and what it dropped, and the peers that may send from any
// address.
func TestPrintInfoHub(t *testing.T) {
	in := tunnel.Info{Name: "hub0", Mode: "tap", MTU: 1500, MaxFrame: 1518, AgeingSec: 300,
		TapMAC: "02:00:00:00:00:aa", FloodLimit: 1000,
		Peers: []tunnel.PeerInfo{
			{PublicKey: "open=", AnyMAC: true, FloodLimited: 42},
			{PublicKey: "closed=", AllowedMACs: []string{"02:00:00:00:00:01"}},
		},
		MACs:     []tunnel.MACInfo{{MAC: "02:00:00:00:00:aa", Pinned: true}},
		Switch:   &l2switch.Stats{Pinned: 7},
		Counters: map[string]uint64{"flood_limited": 42},
	}
	var b strings.Builder
	printInfo(&b, in, "", time.Now())
	out := b.String()
	wantAll(t, "status", out, "tap mac: 02:00:00:00:00:aa (pinned: no peer may send from it)",
		"flood limit: 1000 frames/s per peer (broadcast, multicast, unknown unicast)",
		"peer: open=\n", "allowed macs: any. WARNING: this peer may send from any address but the tap's",
		"flood limited: 42 frames dropped over the flood limit", "allowed macs: 02:00:00:00:00:01",
		"local (hub0), pinned", "7 from a pinned address", "flood limited 42")
	if strings.Count(out, "WARNING") != 1 {
		t.Errorf("the peer with AllowedMACs is warned about too:\n%s", out)
	}
}
