package uapi

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// TestListenPipeOwnedBySystem checks what wg.exe checks of a userspace
// interface's pipe: that it lives under SocketDir and is owned by SYSTEM.
// It needs an elevated prompt (or SYSTEM) and skips otherwise.
func TestListenPipeOwnedBySystem(t *testing.T) {
	name := fmt.Sprintf("twtest%d", os.Getpid()%100000) // at most 15 bytes, as wg(8) takes
	s, err := Listen(name)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD) {
		t.Skipf("needs Administrator: %v", err)
	}
	if errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
		t.Skipf("no ProtectedPrefix pipe namespace (wine?): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := s.Path(), SocketDir+`\`+name; got != want {
		t.Fatalf("path %q, want %q", got, want)
	}
	c, err := dialUAPI(s.Path(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	path, err := windows.UTF16PtrFromString(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	// A second client handle, as wg.exe opens it, to read the owner.
	h, err := windows.CreateFile(path, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, 0, 0)
	if errors.Is(err, windows.ERROR_PIPE_BUSY) {
		t.Skip("no free pipe instance for a second client")
	}
	if err != nil {
		t.Fatalf("open %s: %v", s.Path(), err)
	}
	defer windows.CloseHandle(h)
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("owner of %s: %v", s.Path(), err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		t.Fatal(err)
	}
	if !owner.IsWellKnown(windows.WinLocalSystemSid) {
		t.Errorf("pipe owner is %v, want SYSTEM (S-1-5-18): wg.exe refuses it", owner)
	}
}

// TestListenPathDial listens on a plain pipe name, through the same
// impersonating listen as Listen, and connects to it.
func TestListenPathDial(t *testing.T) {
	path := fmt.Sprintf(`\\.\pipe\tapwire-test-plain-%d`, os.Getpid())
	s, err := ListenPath(path)
	if errors.Is(err, windows.ERROR_INVALID_OWNER) || errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Skipf("needs Administrator or SYSTEM: %v", err)
	}
	if errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
		t.Skipf("the named pipe file system is not there (wine cannot create pipes as namedpipe does): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := ListenPath(path); err == nil {
		t.Error("a second ListenPath on a served pipe succeeded")
	}
	c, err := dialUAPI(path, 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
}
