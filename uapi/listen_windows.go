package uapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wireguard/ipc/namedpipe"
)

// SocketDir is where wg.exe looks for userspace interfaces on Windows: the
// named pipes under \\.\pipe\ProtectedPrefix\Administrators\WireGuard\,
// which only Administrators and SYSTEM can create (wireguard-go's path).
const SocketDir = `\\.\pipe\ProtectedPrefix\Administrators\WireGuard`

// pipeSDDL is the pipe's security descriptor, wireguard-go's: owner SYSTEM,
// full access to SYSTEM and Administrators only, and a high mandatory
// integrity label so that a low or medium integrity process cannot
// connect.
const pipeSDDL = "O:SYD:P(A;;GA;;;SY)(A;;GA;;;BA)S:(ML;;NWNRNX;;;HI)"

// SocketSuffix ends the name of an interface's pipe in SocketDir: nothing,
// the pipe is named as the interface.
const SocketSuffix = ""

// SocketPath returns the named pipe of iface: SocketDir\IFACE.
func SocketPath(iface string) string { return SocketDir + `\` + iface }

// Listen listens on the named pipe SocketPath(iface), where wg.exe finds
// userspace interfaces. See ListenPath.
func Listen(iface string, opts ...Option) (*Server, error) {
	if err := checkName(iface); err != nil {
		return nil, err
	}
	if strings.ContainsRune(iface, '\\') {
		return nil, fmt.Errorf("uapi: interface name %q contains '\\'", iface)
	}
	return ListenPath(SocketPath(iface), opts...)
}

// ListenPath listens on the named pipe path, readable and writable by
// SYSTEM and Administrators only, and owned by SYSTEM, as wg.exe requires
// of a userspace interface's pipe (it refuses one of another owner). A
// process that is not SYSTEM may name SYSTEM as an object's owner only
// with the restore privilege enabled: an elevated Administrator holds it,
// and ListenPath enables it for the call on its own thread only. A pipe of that name that another process
// serves makes it fail (Windows removes a pipe with its last handle, so
// nothing stale is ever left).
func ListenPath(path string, opts ...Option) (*Server, error) {
	s := &Server{
		log:    slog.New(slog.DiscardHandler),
		maxSet: DefaultMaxSetSize,
		path:   path,
		conns:  make(map[net.Conn]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	sd, err := windows.SecurityDescriptorFromString(pipeSDDL)
	if err != nil {
		return nil, fmt.Errorf("uapi: security descriptor: %w", err)
	}
	ln, err := listenOwnedBySystem(path, sd)
	if err != nil {
		err = fmt.Errorf("uapi: listen on %s: %w", path, err)
		if errors.Is(err, windows.ERROR_INVALID_OWNER) || errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
			errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD) {
			err = fmt.Errorf("%w (the pipe is made for Administrators and owned by SYSTEM, as wg.exe checks: run elevated, or as SYSTEM)", err)
		}
		return nil, err
	}
	s.ln = ln
	s.log.Debug("uapi: listening", "path", path)
	return s, nil
}

// listenOwnedBySystem creates the pipe's first instance, which alone takes
// the security descriptor, with SeRestorePrivilege enabled so that its
// owner may be SYSTEM: wireguard-go's descriptor fails with
// ERROR_INVALID_OWNER for an elevated Administrator otherwise (wgctrl-go
// issue 108). The privilege is enabled in a copy of the process token
// that only this locked thread impersonates, never in the process's own.
// A thread that cannot stop impersonating is not given back to the Go
// scheduler: its goroutine ends with it locked, which ends the thread.
func listenOwnedBySystem(path string, sd *windows.SECURITY_DESCRIPTOR) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := windows.ImpersonateSelf(windows.SecurityImpersonation); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("impersonate self: %w", err)}
			return
		}
		// Best effort: SYSTEM needs no privilege to own its objects, and
		// without it the listen below says what is missing.
		enableRestorePrivilege()
		ln, err := (&namedpipe.ListenConfig{SecurityDescriptor: sd}).Listen(path)
		if windows.RevertToSelf() == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}

// enableRestorePrivilege enables SeRestorePrivilege in the token the
// calling thread impersonates, if the token holds it.
func enableRestorePrivilege() {
	var tok windows.Token
	if err := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_ADJUST_PRIVILEGES, false, &tok); err != nil {
		return
	}
	defer tok.Close()
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	tp.Privileges[0].Attributes = windows.SE_PRIVILEGE_ENABLED
	name, err := windows.UTF16PtrFromString("SeRestorePrivilege")
	if err != nil || windows.LookupPrivilegeValue(nil, name, &tp.Privileges[0].Luid) != nil {
		return
	}
	_ = windows.AdjustTokenPrivileges(tok, false, &tp, 0, nil, nil)
}

// RemoveStale reports false: a named pipe goes with the last process that
// holds it, so none is ever stale.
func RemoveStale(iface string) (bool, error) {
	return false, checkName(iface)
}

// SocketGone reports false: nobody can delete a named pipe its server holds.
func (s *Server) SocketGone() bool { return false }

// removeOwn does nothing: the pipe goes with its listener.
func (s *Server) removeOwn() error { return nil }

// dialUAPI connects to the UAPI pipe at path.
func dialUAPI(path string, timeout time.Duration) (net.Conn, error) {
	return namedpipe.DialTimeout(path, timeout)
}

// listDir returns the names of the pipes under dir, a directory under
// \\.\pipe\ (SocketDir), by listing every pipe as wg.exe does; of any
// other dir, the names of its files.
func listDir(dir string) ([]string, error) {
	var pipes []string
	if _, ok := pipesUnder(nil, dir); !ok {
		entries, err := os.ReadDir(dir)
		for _, e := range entries {
			pipes = append(pipes, e.Name())
		}
		return pipes, err
	}
	pattern, err := windows.UTF16PtrFromString(`\\.\pipe\*`)
	if err != nil {
		return nil, err
	}
	var fd windows.Win32finddata
	h, err := windows.FindFirstFile(pattern, &fd)
	if err != nil {
		return nil, err
	}
	defer windows.FindClose(h)
	for {
		pipes = append(pipes, windows.UTF16ToString(fd.FileName[:]))
		if err := windows.FindNextFile(h, &fd); err != nil {
			if errors.Is(err, windows.ERROR_NO_MORE_FILES) {
				break
			}
			return nil, err
		}
	}
	names, _ := pipesUnder(pipes, dir)
	return names, nil
}
