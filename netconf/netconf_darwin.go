package netconf

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	goos       = "darwin"
	rtfIfscope = unix.RTF_IFSCOPE // a default route scoped to one interface
)

func layout() bsdLayout { return darwinLayout() }

// socket opens a socket that is closed on exec (macOS has no
// SOCK_CLOEXEC: under ForkLock, as Go's net package does).
func socket(domain, typ, proto int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(domain, typ, proto)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}
