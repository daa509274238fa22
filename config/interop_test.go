//go:build linux

package config

// Interoperability with wireguard-tools: wg-quick's own parser, run on the
// same files, must find what Parse finds; `wg-quick strip` must leave what
// WGConf writes; and, where the kernel has WireGuard, `wg setconf` must take
// WGConf and `wg showconf` give it back. The tests skip when the tools (or
// the kernel module) are missing; on Debian: apt-get install wireguard-tools.

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
)

// interopFiles returns the files the interop tests run on: testdata, the
// good cases, and Marshal's output of each of them.
func interopFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	paths, _ := filepath.Glob("testdata/*.conf")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = string(b)
	}
	for _, c := range goodCases() {
		files[c.name] = c.text
	}
	for name, text := range files {
		files[name+" (marshaled)"] = string(mustParse(t, name, text).Marshal())
	}
	return files
}

// wgQuick returns the path of wg-quick and its text, or skips.
func wgQuick(t *testing.T) (string, string) {
	t.Helper()
	path, err := exec.LookPath("wg-quick")
	if err != nil {
		t.Skip("wg-quick is not installed (Debian: apt-get install wireguard-tools)")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	if os.Geteuid() != 0 {
		t.Skip("wg-quick re-runs itself under sudo without root: run as root")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("read wg-quick: %v", err)
	}
	return path, string(b)
}

// writeConf writes text to DIR/wgt.conf, a name wg-quick accepts.
func writeConf(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wgt.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWGQuickStrip compares WGConf with what `wg-quick strip` leaves of the
// same file, both read back with Parse.
func TestWGQuickStrip(t *testing.T) {
	wq, _ := wgQuick(t)
	for name, text := range interopFiles(t) {
		t.Run(name, func(t *testing.T) {
			c := mustParse(t, "in", text)
			cmd := exec.Command(wq, "strip", writeConf(t, text))
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("wg-quick strip: %v", err)
			}
			stripped, err := Parse("stripped", strings.NewReader(string(out)))
			if err != nil {
				t.Fatalf("Parse(wg-quick strip output): %v\n%s", err, out)
			}
			// wg-quick does not know tapwire's keys and leaves them to wg.
			if stripped.Interface.Mode != c.Interface.Mode || stripped.Interface.Bridge != c.Interface.Bridge {
				t.Errorf("wg-quick strip kept Mode %q Bridge %q, want %q %q", stripped.Interface.Mode, stripped.Interface.Bridge, c.Interface.Mode, c.Interface.Bridge)
			}
			stripped.Interface.Mode, stripped.Interface.Bridge = ModeDefault, ""
			stripped.Interface.ClampMSS, stripped.Interface.MACAgeing, stripped.Interface.MaxMACsPerPeer = SwitchDefault, 0, 0
			stripped.Interface.FloodLimit, stripped.Interface.MetricsAddress = 0, netip.AddrPort{}
			for i := range stripped.Peers {
				stripped.Peers[i].AllowedMACs = nil
			}
			ours, err := Parse("wgconf", strings.NewReader(string(c.WGConf())))
			if err != nil {
				t.Fatal(err)
			}
			if a, b := withoutLines(stripped), withoutLines(ours); !reflect.DeepEqual(a.Interface, b.Interface) || !reflect.DeepEqual(a.Peers, b.Peers) {
				t.Errorf("wg-quick strip:\n%+v\nWGConf:\n%+v\n--- strip output:\n%s--- WGConf:\n%s", a, b, out, c.WGConf())
			}
		})
	}
}

// TestWGQuickParse runs wg-quick's own parse_options function (taken from
// the installed wg-quick) on each file and compares what it found for the
// keys it handles with what Parse found.
func TestWGQuickParse(t *testing.T) {
	_, script := wgQuick(t)
	var funcs []string
	for _, fn := range []string{"die", "read_bool", "parse_options"} {
		i := strings.Index(script, "\n"+fn+"() {\n")
		if i < 0 {
			t.Skipf("wg-quick has no %s function: a version this test does not know", fn)
		}
		j := strings.Index(script[i:], "\n}\n")
		funcs = append(funcs, script[i+1:i+j+2])
	}
	// wg-quick before 2025 cut hooks at the first # like any other value.
	hooksKeepHash := strings.Contains(script, "unstripped_value")
	const dump = `
for a in "${ADDRESSES[@]}"; do printf 'Address\t%s\n' "$a"; done
for a in "${DNS[@]}"; do printf 'DNS\t%s\n' "$a"; done
for a in "${DNS_SEARCH[@]}"; do printf 'DNSSearch\t%s\n' "$a"; done
printf 'MTU\t%s\nTable\t%s\nSaveConfig\t%s\nInterface\t%s\n' "$MTU" "$TABLE" "$SAVE_CONFIG" "$INTERFACE"
for a in "${PRE_UP[@]}"; do printf 'PreUp\t%s\n' "$a"; done
for a in "${POST_UP[@]}"; do printf 'PostUp\t%s\n' "$a"; done
for a in "${PRE_DOWN[@]}"; do printf 'PreDown\t%s\n' "$a"; done
for a in "${POST_DOWN[@]}"; do printf 'PostDown\t%s\n' "$a"; done
`
	prog := "set -e -o pipefail\nshopt -s extglob\nexport LC_ALL=C\nPROGRAM=wg-quick\n" +
		"ADDRESSES=( ); MTU=''; DNS=( ); DNS_SEARCH=( ); TABLE=''; PRE_UP=( ); POST_UP=( ); PRE_DOWN=( ); POST_DOWN=( ); SAVE_CONFIG=0\n" +
		strings.Join(funcs, "\n") + "\nparse_options \"$1\" 2>/dev/null\n" + dump

	for name, text := range interopFiles(t) {
		t.Run(name, func(t *testing.T) {
			c := mustParse(t, "in", text)
			out, err := exec.Command("bash", "-c", prog, "bash", writeConf(t, text)).Output()
			if err != nil {
				t.Fatalf("wg-quick parse_options: %v", err)
			}
			got := map[string][]string{}
			for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				k, v, _ := strings.Cut(line, "\t")
				got[k] = append(got[k], v)
			}
			in := c.Interface
			want := map[string][]string{
				"MTU":        {""},
				"Table":      {in.Table.String()},
				"SaveConfig": {"0"},
				"Interface":  {"wgt"},
			}
			if in.MTU != 0 {
				want["MTU"] = []string{strconv.Itoa(in.MTU)}
			}
			if in.SaveConfig {
				want["SaveConfig"] = []string{"1"}
			}
			var addrs []string
			for _, a := range got["Address"] {
				p, err := parseAddress(a) // wg-quick keeps a bare address bare
				if err != nil {
					t.Fatalf("wg-quick found address %q: %v", a, err)
				}
				addrs = append(addrs, p.String())
			}
			got["Address"] = addrs
			for _, p := range in.Addresses {
				want["Address"] = append(want["Address"], p.String())
			}
			for _, d := range in.DNS {
				if _, err := netip.ParseAddr(d); err == nil {
					want["DNS"] = append(want["DNS"], d)
				} else {
					want["DNSSearch"] = append(want["DNSSearch"], d)
				}
			}
			for key, hooks := range map[string][]string{"PreUp": in.PreUp, "PostUp": in.PostUp, "PreDown": in.PreDown, "PostDown": in.PostDown} {
				for _, h := range hooks {
					if !hooksKeepHash {
						h, _, _ = strings.Cut(h, "#")
						h = trimSpace(h)
					}
					want[key] = append(want[key], h)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					want[k] = nil
				}
			}
			for k, w := range want {
				if !slices.Equal(got[k], w) {
					t.Errorf("%s: wg-quick found %q, Parse %q", k, got[k], w)
				}
			}
		})
	}
}

// TestWGSetconf loads WGConf into a kernel WireGuard interface in a
// throw-away network namespace with `wg setconf` and reads it back with
// `wg showconf`. It needs root, wg, and the wireguard kernel module.
func TestWGSetconf(t *testing.T) {
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("wg is not installed (Debian: apt-get install wireguard-tools)")
	}
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	if out, err := ns.Output("ip", "link", "add", "wgt0", "type", "wireguard"); err != nil {
		t.Skipf("no WireGuard in this kernel: %v", strings.TrimSpace(out))
	}
	// Files whose endpoints are IP addresses without zones: wg would
	// resolve names, and showconf prints addresses.
	for _, name := range []string{"server.conf", "crlf.conf"} {
		t.Run(name, func(t *testing.T) {
			c, err := ParseFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			path := writeConf(t, string(c.WGConf()))
			ns.Run("wg", "setconf", "wgt0", path)
			out := ns.Run("wg", "showconf", "wgt0")
			back, err := Parse("showconf", strings.NewReader(out))
			if err != nil {
				t.Fatalf("Parse(wg showconf): %v\n%s", err, out)
			}
			want := wgPart(c)
			want.Peers = slices.Clone(want.Peers)
			for _, cc := range []*Config{back, want} {
				cc.Path = ""
				for i := range cc.Peers {
					cc.Peers[i].Line = 0
					slices.SortFunc(cc.Peers[i].AllowedIPs, netip.Prefix.Compare) // the kernel's order
				}
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("wg showconf after setconf of WGConf:\n got %+v\nwant %+v\n%s", back, want, out)
			}
		})
	}
}
