//go:build !windows

package uapi

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestInterfaces lists the sockets of a directory, sorted, without what
// is not a socket name.
func TestInterfaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"wg1" + SocketSuffix, "wg0" + SocketSuffix, SocketSuffix} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "wg0.name"), nil, 0o600)
	got, err := Interfaces(dir)
	if err != nil || !slices.Equal(got, []string{"wg0", "wg1"}) {
		t.Errorf("Interfaces = %q, %v", got, err)
	}
	if _, err := Interfaces(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing directory: %v", err)
	}
}
