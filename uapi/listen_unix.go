//go:build !windows

package uapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketDir is where wg(8) looks for userspace interfaces' sockets.
const SocketDir = "/var/run/wireguard"

// SocketSuffix ends the name of an interface's UAPI socket in SocketDir.
const SocketSuffix = ".sock"

// SocketPath returns where the UAPI socket of iface is: SocketDir/IFACE.sock.
func SocketPath(iface string) string { return filepath.Join(SocketDir, iface+".sock") }

// Listen creates SocketDir (mode 0755) and listens on SocketDir/IFACE.sock,
// where wg(8) finds userspace interfaces. See ListenPath.
func Listen(iface string, opts ...Option) (*Server, error) {
	if err := checkName(iface); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(SocketDir, 0o755); err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	return ListenPath(filepath.Join(SocketDir, iface+".sock"), opts...)
}

// ListenPath listens on the unix socket path, whose directory must exist.
// The socket is created with mode 0600 (as wireguard-go's umask 077 makes
// it) and appears at path fully set up. A socket file left by a process that
// is gone is replaced; if a live process listens on path, or path is not a
// socket, ListenPath fails and changes nothing.
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
	if err := s.checkFree(path); err != nil {
		return nil, err
	}

	// Bind in a private directory, set the mode, then rename into place:
	// no moment where the socket is reachable with a wider mode, and no
	// process-wide umask change.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".uapi-")
	if err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpSock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("uapi: listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the file moves; Close removes it itself
	fail := func(err error) (*Server, error) {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(tmpSock, 0o600); err != nil {
		return fail(fmt.Errorf("uapi: %w", err))
	}
	if err := s.checkFree(path); err != nil { // again, just before taking it
		return fail(err)
	}
	if err := os.Rename(tmpSock, path); err != nil {
		return fail(fmt.Errorf("uapi: listen on %s: %w", path, err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("uapi: %w", err))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	}
	s.ln = ln
	s.log.Debug("uapi: listening", "path", path)
	return s, nil
}

// checkFree returns nil if nothing is at path or only a stale socket (which
// it removes), and an error if path is not a socket or a live process
// accepts connections on it.
func (s *Server) checkFree(path string) error {
	removed, err := removeStale(path)
	if removed {
		s.log.Info("uapi: removed a stale socket left by a process that is gone", "path", path)
	}
	return err
}

// RemoveStale removes SocketDir/IFACE.sock when it is a socket that no
// process accepts connections on, as a process that was killed leaves it
// (wg(8) would list the interface and fail to reach it), and reports
// whether it removed it. Nothing there is no error; a live socket, or a
// file that is not a socket, stays, with an error that says so.
func RemoveStale(iface string) (bool, error) {
	if err := checkName(iface); err != nil {
		return false, err
	}
	return removeStale(filepath.Join(SocketDir, iface+".sock"))
}

func removeStale(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("uapi: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return false, fmt.Errorf("uapi: %s exists and is not a socket (%v): not replacing it", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return false, fmt.Errorf("uapi: %s is in use: another process serves this interface", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("uapi: %s exists and may be in use: %w", path, err)
	}
	// Nobody listens: a socket left by a process that died. wg(8) removes
	// such sockets too.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("uapi: remove stale socket: %w", err)
	}
	return true, nil
}

// SocketGone reports whether the socket file this server created no longer
// exists at Path (deleted, or replaced by another file): wireguard-go
// exits then, and so do tapwire's services.
func (s *Server) SocketGone() bool {
	fi, err := os.Stat(s.path)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && s.ino != 0 && (uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino)
}

// removeOwn removes the socket file if it is still the one Listen created.
func (s *Server) removeOwn() error {
	fi, err := os.Lstat(s.path)
	if err != nil {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint64(st.Dev) == s.dev && uint64(st.Ino) == s.ino {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// dialUAPI connects to the UAPI socket at path.
func dialUAPI(path string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("unix", path, timeout)
}

// listDir returns the names of the files in dir.
func listDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}
