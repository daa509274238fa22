package main

import "testing"

// TestUtunNames checks which configuration names keep their name on macOS
// and that another name gets a utun.
func TestUtunNames(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"utun0": true, "utun12": true, "utun": false, "wg0": false, "utunx": false, "utun-1": false} {
		if got := isUtun(name); got != want {
			t.Errorf("isUtun(%q) = %v, want %v", name, got, want)
		}
	}
	if got, err := systemIfaceName("utun7"); got != "utun7" || err != nil {
		t.Errorf("systemIfaceName(utun7) = %q, %v", got, err)
	}
	if got, err := systemIfaceName("wg0"); !isUtun(got) || err != nil {
		t.Errorf("systemIfaceName(wg0) = %q, %v; want a free utun", got, err)
	}
	if got := resolveIface("nosuchconfig0"); got != "nosuchconfig0" {
		t.Errorf("resolveIface without a name file = %q", got)
	}
}
