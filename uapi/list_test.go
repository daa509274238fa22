package uapi

import (
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
