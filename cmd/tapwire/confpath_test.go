package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPath: a bare name is looked for in tapwire's directory, then
// wg-quick's; a path is taken as it is.
func TestConfigPath(t *testing.T) {
	t.Parallel()
	tw, wg := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(tw, "both0.conf"), filepath.Join(wg, "both0.conf"), filepath.Join(wg, "wgonly0.conf")} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		arg, want, err string
	}{
		{"both0", filepath.Join(tw, "both0.conf"), ""},
		{"wgonly0", filepath.Join(wg, "wgonly0.conf"), ""},
		{"none0", "", "no configuration for none0: " + filepath.Join(tw, "none0.conf") + " nor " + filepath.Join(wg, "none0.conf") + " not found"},
		{"./none0.conf", "./none0.conf", ""},
		{"none0.conf", "none0.conf", ""},
		{"/etc/wireguard/x/wg0.conf", "/etc/wireguard/x/wg0.conf", ""},
		{"much-too-long-name", "", `"much-too-long-name" is not an interface name`},
		{"..", "", `".." is not an interface name`},
	} {
		got, err := configPath(c.arg, tw, wg)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("configPath(%q) = %q, %v; want %q, %q", c.arg, got, err, c.want, c.err)
		}
	}
}
