//go:build !linux

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestLinuxOnlyCommands runs the commands that need Linux on another
// system: each is listed, fails with status 1 whatever its flags, and says
// it works on Linux only.
func TestLinuxOnlyCommands(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"demo"}, {"device", "list"}, {"doctor", "--json"}, {"capture", "--mode", "tun", "x"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), &stdout, &stderr, args)
		if code != exitFailure || !strings.Contains(stderr.String(), "works on Linux only") {
			t.Errorf("tapwire %s: status %d, stderr %q; want 1 and a Linux-only message", strings.Join(args, " "), code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &stdout, &stderr, nil); code != exitOK || !strings.Contains(stdout.String(), "(Linux only)") {
		t.Errorf("tapwire: status %d, listing %q; want the Linux-only commands marked", code, stdout.String())
	}
}
