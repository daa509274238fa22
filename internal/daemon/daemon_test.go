//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is its own background child: Background re-runs it with
// the same arguments, and TestMain sends the child to the behaviour the
// test chose in helperEnv, before any test runs.
const helperEnv = "TAPWIRE_DAEMON_TEST_HELPER"

// helperDirEnv names the directory where the child leaves its marks.
const helperDirEnv = "TAPWIRE_DAEMON_TEST_DIR"

func TestMain(m *testing.M) {
	if c := TakeChild(); c != nil {
		os.Exit(helper(c, os.Getenv(helperEnv), os.Getenv(helperDirEnv)))
	}
	os.Exit(m.Run())
}

// helper is the background child's side of each test.
func helper(c *Child, mode, dir string) int {
	mark := func(name, content string) { os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644) }
	switch mode {
	case "hook":
		// What tapwire up does with a hook: start a program, which here
		// tries to report for the child and records whether it believes
		// it is a background child itself.
		hook := exec.Command("sh", "-c", `echo "error: said by the hook" >&3 2>/dev/null; echo "marker=$`+childEnv+`" > "$1"; if [ -e /proc/$$/fd/3 ]; then echo open; else echo closed; fi > "$2"`,
			"hook", filepath.Join(dir, "env"), filepath.Join(dir, "fds"))
		hook.Stdout, hook.Stderr = os.Stderr, os.Stderr
		hook.Run()
		if TakeChild() != nil {
			mark("second", "TakeChild returned a Child twice")
		}
		c.Ready(nil)
		c.Ready(errors.New("said after ready")) // nothing: only the first call speaks
		return 0
	case "stop":
		// A child that takes back what it did when asked to stop.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		mark("armed", "")
		select {
		case <-sig:
			mark("stopped", "")
			c.Ready(errors.New("interrupted, everything taken back"))
		case <-time.After(time.Minute):
		}
		return 1
	case "stubborn":
		// A child that does not stop when asked.
		signal.Ignore(syscall.SIGTERM)
		mark("armed", "")
		time.Sleep(time.Minute)
		return 1
	}
	c.Ready(fmt.Errorf("unknown helper mode %q", mode))
	return 2
}

// background runs Background with the helper in mode, its log in the
// test's output on failure, and returns its error and the helper's folder.
func background(t *testing.T, ctx context.Context, mode string, stopWait time.Duration) (error, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv(helperEnv, mode)
	t.Setenv(helperDirEnv, dir)
	log := filepath.Join(dir, "log")
	err := Background(ctx, log, stopWait)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("the child's log:\n%s", b)
		}
	})
	return err, dir
}

// TestHooksAreNotTheChild: a program the child starts neither inherits the
// readiness pipe (so it cannot report for the child) nor the marker (so a
// tapwire up it runs goes into the background on its own).
func TestHooksAreNotTheChild(t *testing.T) {
	err, dir := background(t, t.Context(), "hook", time.Second)
	if err != nil {
		t.Fatalf("Background: %v, want the child's own verdict (ready)", err)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	if got := strings.TrimSpace(string(env)); got != "marker=" {
		t.Errorf("the hook saw %s, want the marker removed", got)
	}
	if fd3, _ := os.ReadFile(filepath.Join(dir, "fds")); strings.TrimSpace(string(fd3)) != "closed" {
		t.Errorf("the hook's descriptor 3: %q, want closed", fd3)
	}
	if _, err := os.Stat(filepath.Join(dir, "second")); err == nil {
		t.Error("TakeChild returned a Child twice")
	}
}

// waitFor waits until path exists, up to a minute.
func waitFor(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
	}
}

// TestStopAsksFirst: when the parent gives up waiting, it asks the child
// to stop (SIGTERM) and lets it take back what it did, rather than killing
// it at once; the error has the cause and the child's last words.
func TestStopAsksFirst(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		waitFor(t, filepath.Join(dir, "armed"))
		cancel(errors.New("not ready after 60s"))
	}()
	t.Setenv(helperEnv, "stop")
	t.Setenv(helperDirEnv, dir)
	err := Background(ctx, filepath.Join(dir, "log"), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "not ready after 60s") || !strings.Contains(err.Error(), "stopped it (it said: interrupted, everything taken back)") {
		t.Errorf("Background: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "stopped")); serr != nil {
		t.Errorf("the child was not asked to stop: %v", serr)
	}
}

// TestStopThenKill: a child that does not stop when asked is killed once
// stopWait has passed, and Background returns.
func TestStopThenKill(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		waitFor(t, filepath.Join(dir, "armed"))
		cancel(errors.New("interrupted"))
	}()
	t.Setenv(helperEnv, "stubborn")
	t.Setenv(helperDirEnv, dir)
	err := Background(ctx, filepath.Join(dir, "log"), 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed it: it did not stop within 50ms of SIGTERM") {
		t.Errorf("Background: %v", err)
	}
}

// TestChildByHand: with the marker but no pipe on descriptor 3, the
// process is not a background child.
func TestChildByHand(t *testing.T) {
	t.Setenv(childEnv, "1")
	if c := TakeChild(); c != nil {
		// The test binary's descriptor 3, if any, is not a pipe from
		// Background: a Child here would write into it.
		var st syscall.Stat_t
		if syscall.Fstat(readyFD, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
			t.Skip("descriptor 3 of the test binary is a pipe")
		}
		t.Error("TakeChild returned a Child without a pipe on descriptor 3")
	}
	var c *Child
	c.Ready(nil) // a nil Child does nothing
}
