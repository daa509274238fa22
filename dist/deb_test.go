//go:build linux

package dist

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/doctor"
	"github.com/tapwire/tapwire/internal/nstest"
)

// testVersion is the version of the package the test builds: a package
// named tapwire with "~debtest" in its version was installed by this test
// (a run that was killed before its cleanup), and is purged; any other is
// the machine's own, and the test does not touch it.
const testVersion = "0.0.0~debtest1"

// TestDebianPackage builds the package with deb.sh, checks its contents and
// metadata, installs it with dpkg, runs the installed commands, and purges
// it: nothing of it may be left.
func TestDebianPackage(t *testing.T) {
	requireDpkg(t)
	arch := runtime.GOARCH
	if arch != "amd64" && arch != "arm64" {
		t.Skipf("deb.sh builds for amd64 and arm64, not %s", arch)
	}
	script, err := filepath.Abs("deb.sh")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	build := exec.Command("bash", script, "--version", testVersion, "--out", out)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deb.sh: %v\n%s", err, b)
	}
	deb := filepath.Join(out, "tapwire_"+testVersion+"_"+arch+".deb")
	if _, err := os.Stat(deb); err != nil {
		entries, _ := os.ReadDir(out)
		t.Fatalf("deb.sh made no %s (%v); %s holds %v", filepath.Base(deb), err, out, entries)
	}

	checkMetadata(t, deb, arch)
	checkContents(t, deb)

	// Installed, and purged whatever happens from here on.
	t.Cleanup(func() { purge(t) })
	run(t, "dpkg", "-i", deb)
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(run(t, "dpkg", "-L", "tapwire")), "\n") {
		if fi, err := os.Lstat(f); err == nil && fi.Mode().IsRegular() { // not /usr/bin, nor /lib -> usr/lib
			files = append(files, f)
		}
	}
	for _, want := range []string{"/usr/bin/tapwire", "/usr/bin/tapwire-go", "/lib/systemd/system/tapwire@.service", "/usr/share/doc/tapwire/copyright"} {
		if !slices.Contains(files, want) {
			t.Errorf("dpkg -L tapwire does not list %s: %v", want, files)
		}
	}
	if fi, err := os.Stat("/etc/tapwire"); err != nil {
		t.Error(err)
	} else if fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("/etc/tapwire after install: %v, want a directory of mode 0700", fi.Mode())
	}
	if v := run(t, "/usr/bin/tapwire", "version"); !strings.HasPrefix(v, "tapwire "+testVersion+"\n") {
		t.Errorf("tapwire version does not report the package's version %s:\n%s", testVersion, v)
	}
	if v := run(t, "/usr/bin/tapwire-go", "--version"); !strings.HasPrefix(v, "tapwire-go "+testVersion+" ") {
		t.Errorf("tapwire-go --version does not report the package's version %s:\n%s", testVersion, v)
	}
	checkDoctor(t)

	// The purge, now, so that what it leaves can be checked.
	purge(t)
	for _, f := range files {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after dpkg --purge tapwire (%v)", f, err)
		}
	}
	for _, d := range []string{"/usr/share/doc/tapwire", "/etc/tapwire"} {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after dpkg --purge tapwire (%v)", d, err)
		}
	}
	if b, err := exec.Command("dpkg", "-s", "tapwire").CombinedOutput(); err == nil || !strings.Contains(string(b), "not installed") {
		t.Errorf("dpkg -s tapwire after the purge: %v\n%s", err, b)
	}
}

// requireDpkg skips the test unless it runs as root with dpkg, and no
// tapwire is installed but one this test left; that one is purged.
func requireDpkg(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to install a package with dpkg")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	v, err := exec.Command("dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", "tapwire").Output()
	switch {
	case err != nil: // not known to dpkg
	case strings.Contains(string(v), "~debtest"):
		t.Logf("purging tapwire %s, left by an earlier run of this test", v)
		purge(t)
	case strings.HasSuffix(strings.TrimSpace(string(v)), " not-installed"):
	default:
		t.Skipf("a package named tapwire is installed (%s): the test would replace it", v)
	}
	for _, f := range []string{"/usr/bin/tapwire", "/usr/bin/tapwire-go", "/lib/systemd/system/tapwire@.service"} {
		if _, err := os.Lstat(f); err == nil {
			t.Skipf("%s exists and is not from a tapwire package: the test would replace it", f)
		}
	}
	// A user's configuration directory: the package would take it over
	// and its purge leave it (not empty).
	if _, err := os.Lstat("/etc/tapwire"); err == nil {
		t.Skip("/etc/tapwire exists and is not from a tapwire package: the test would take it over")
	}
}

// checkMetadata checks the package's control fields and scripts.
func checkMetadata(t *testing.T, deb, arch string) {
	t.Helper()
	for field, want := range map[string]string{
		"Package":      "tapwire",
		"Version":      testVersion,
		"Architecture": arch,
		"Section":      "net",
		"Priority":     "optional",
		"Homepage":     "https://github.com/tapwire/tapwire",
		"Recommends":   "wireguard-tools, iproute2",
		"Suggests":     "openresolv | resolvconf",
		"Depends":      "",
	} {
		if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("%s: %s is %q, want %q", filepath.Base(deb), field, got, want)
		}
	}
	if m := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Maintainer")); !strings.Contains(m, "<") || !strings.HasSuffix(m, ">") {
		t.Errorf("Maintainer %q: want a name and <address>", m)
	}
	desc := run(t, "dpkg-deb", "-f", deb, "Description")
	if lines := strings.Split(strings.TrimSpace(desc), "\n"); len(lines) < 3 || !strings.Contains(lines[0], "WireGuard") {
		t.Errorf("Description: want a summary naming WireGuard and a long description:\n%s", desc)
	}
	info := run(t, "dpkg-deb", "-I", deb)
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if !strings.Contains(info, " "+script+" ") {
			t.Errorf("no %s in the package:\n%s", script, info)
			continue
		}
		// daemon-reload only with systemd running; no unit enabled or started.
		body := run(t, "dpkg-deb", "-I", deb, script)
		if strings.Contains(body, "daemon-reload") && !strings.Contains(body, "[ -d /run/systemd/system ]") {
			t.Errorf("%s reloads systemd without checking that it runs:\n%s", script, body)
		}
		for _, l := range strings.Split(body, "\n") {
			f := strings.Fields(l)
			if i := slices.Index(f, "systemctl"); i >= 0 && !strings.HasPrefix(f[0], "#") {
				if verb := slices.DeleteFunc(f[i+1:], func(s string) bool { return strings.HasPrefix(s, "-") }); len(verb) > 0 && verb[0] != "daemon-reload" && verb[0] != "stop" {
					t.Errorf("%s runs systemctl %s: the package enables and starts nothing:\n%s", script, verb[0], body)
				}
			}
		}
	}
}

// checkContents checks the files in the package, with their modes.
func checkContents(t *testing.T, deb string) {
	t.Helper()
	modes := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: unexpected line %q", l)
		}
		if f[1] != "root/root" {
			t.Errorf("%s belongs to %s, want root/root", f[5], f[1])
		}
		modes[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = f[0]
	}
	for path, mode := range map[string]string{
		"/usr/bin/tapwire":                           "-rwxr-xr-x",
		"/usr/bin/tapwire-go":                        "-rwxr-xr-x",
		"/lib/systemd/system/tapwire@.service":       "-rw-r--r--",
		"/usr/share/doc/tapwire/README.md.gz":        "-rw-r--r--",
		"/usr/share/doc/tapwire/BENCHMARKS.md.gz":    "-rw-r--r--",
		"/usr/share/doc/tapwire/ARCHITECTURE.md.gz":  "-rw-r--r--",
		"/usr/share/doc/tapwire/copyright":           "-rw-r--r--",
		"/usr/share/doc/tapwire/changelog.Debian.gz": "-rw-r--r--",
		"/etc/tapwire":                               "drwx------",
	} {
		if got, ok := modes[path]; !ok {
			t.Errorf("the package has no %s", path)
		} else if got != mode {
			t.Errorf("%s has mode %s, want %s", path, got, mode)
		}
	}
	// The unit and the licence are the repository's.
	for path, src := range map[string]string{
		"/lib/systemd/system/tapwire@.service": "systemd/tapwire@.service",
	} {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if got := extract(t, deb, path); got != string(want) {
			t.Errorf("%s in the package differs from dist/%s", path, src)
		}
	}
	license, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	copyright := extract(t, deb, "/usr/share/doc/tapwire/copyright")
	if !strings.Contains(copyright, string(license)) || !strings.Contains(copyright, "golang.org/x/crypto") {
		t.Errorf("the copyright file lacks tapwire's LICENSE or the licences of the modules linked in:\n%.400s", copyright)
	}
}

// extract returns one file of the package.
func extract(t *testing.T, deb, path string) string {
	t.Helper()
	var b strings.Builder
	cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO "$2"`, "sh", deb, "."+path)
	cmd.Stdout = &b
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s from %s: %v", path, deb, err)
	}
	return b.String()
}

// checkDoctor runs the installed tapwire doctor in a namespace of its own
// (it creates and deletes a TUN and a TAP device): it reports every check
// it is documented to, and its exit status is its verdict.
func checkDoctor(t *testing.T) {
	t.Helper()
	ns := nstest.New(t)
	cmd := ns.Command("/usr/bin/tapwire", "doctor", "--json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	var report struct {
		Usable  bool `json:"usable"`
		Results []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"results"`
	}
	if jerr := json.Unmarshal(b, &report); jerr != nil {
		t.Fatalf("tapwire doctor --json: %v, %v\n%s%s", err, jerr, b, stderr.String())
	}
	var ids []string
	for _, r := range report.Results {
		ids = append(ids, r.ID)
	}
	all := []string{doctor.CheckNode, doctor.CheckCapability, doctor.CheckEnvironment, doctor.CheckDeviceCgroup,
		doctor.CheckKernel, doctor.CheckCreateTUN, doctor.CheckCreateTAP}
	if !slices.Equal(ids, all) {
		t.Errorf("tapwire doctor checked %v, want %v:\n%s", ids, all, b)
	}
	var exit *exec.ExitError
	switch {
	case report.Usable && err != nil:
		t.Errorf("tapwire doctor says TUN/TAP is usable but failed: %v\n%s", err, stderr.String())
	case !report.Usable && !(errors.As(err, &exit) && exit.ExitCode() == 1):
		t.Errorf("tapwire doctor says TUN/TAP is not usable but exited with %v, want status 1", err)
	}
}

// purge removes the package with dpkg --purge, if it is there.
func purge(t *testing.T) {
	t.Helper()
	if b, err := exec.Command("dpkg", "--purge", "tapwire").CombinedOutput(); err != nil {
		t.Errorf("dpkg --purge tapwire: %v\n%s", err, b)
	}
}

// run runs a command and returns its standard output; it fails the test
// if the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, b, stderr.String())
	}
	return string(b)
}
