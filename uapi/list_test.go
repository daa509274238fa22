package uapi

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPipesUnder picks the interfaces' pipes out of every pipe, as wg.exe
// does: named pipes have no directories to list.
func TestPipesUnder(t *testing.T) {
	t.Parallel()
	pipes := []string{`InitShutdown`, `ProtectedPrefix\Administrators\WireGuard\wg0`,
		`protectedprefix\administrators\wireguard\Office`, `ProtectedPrefix\Administrators\WireGuardX\no`,
		`ProtectedPrefix\Administrators\WireGuard\`, `ProtectedPrefix\Administrators\Other\wg1`}
	got, ok := pipesUnder(pipes, `\\.\pipe\ProtectedPrefix\Administrators\WireGuard`)
	if !ok || !slices.Equal(got, []string{"wg0", "Office"}) {
		t.Errorf("pipes under WireGuard: %q, %v", got, ok)
	}
	if got, ok := pipesUnder(pipes, `\\.\PIPE\ProtectedPrefix\Administrators\WireGuard\`); !ok || len(got) != 2 {
		t.Errorf("with a trailing \\ and another case: %q, %v", got, ok)
	}
	if _, ok := pipesUnder(pipes, `C:\ProgramData\tapwire`); ok {
		t.Error("a directory not under \\\\.\\pipe\\ taken as pipes")
	}
}

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
	if SocketSuffix != "" {
		os.WriteFile(filepath.Join(dir, "wg0.name"), nil, 0o600)
	}
	got, err := Interfaces(dir)
	if err != nil || !slices.Equal(got, []string{"wg0", "wg1"}) {
		t.Errorf("Interfaces = %q, %v", got, err)
	}
	if _, err := Interfaces(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing directory: %v", err)
	}
}
