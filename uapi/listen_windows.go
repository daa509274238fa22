package uapi

import (
	"fmt"
	"log/slog"
	"net"
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
// SYSTEM and Administrators only. A pipe of that name that another process
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
	ln, err := (&namedpipe.ListenConfig{SecurityDescriptor: sd}).Listen(path)
	if err != nil {
		return nil, fmt.Errorf("uapi: listen on %s: %w", path, err)
	}
	s.ln = ln
	s.log.Debug("uapi: listening", "path", path)
	return s, nil
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
