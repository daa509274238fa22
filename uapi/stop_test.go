//go:build linux

package uapi

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRequestStop asks a server made WithStop to stop, and one without
// the option, which refuses with EINVAL.
func TestRequestStop(t *testing.T) {
	t.Parallel()
	stopped := make(chan struct{}, 2)
	path := filepath.Join(t.TempDir(), "tw0.sock")
	s, err := ListenPath(path, WithLogger(testLogger(t)), WithStop(func() { stopped <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, newMemBackend())
	if err := RequestStop(path); err != nil {
		t.Fatalf("RequestStop: %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("RequestStop returned before the server called stop")
	}
	// The connection carried one request: the next one is a new stop.
	if err := RequestStop(path); err != nil || len(stopped) != 1 {
		t.Fatalf("second RequestStop: %v, %d calls", err, len(stopped))
	}

	plain := startTemp(t, newMemBackend())
	err = RequestStop(plain.Path())
	if err == nil || !strings.Contains(err.Error(), "errno=-22") {
		t.Errorf("RequestStop of a server without WithStop: %v, want errno=-22", err)
	}
	// A get still works after the refusal: the server is unharmed.
	c, br := dial(t, plain.Path())
	if _, err := c.Write([]byte("get=1\n\n")); err != nil {
		t.Fatal(err)
	}
	if lines := readAnswer(t, br); lines[len(lines)-1] != "errno=0" {
		t.Errorf("get after a refused stop: %q", lines)
	}
}
