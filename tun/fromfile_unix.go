//go:build linux || darwin || freebsd

package tun

import (
	"os"

	"golang.org/x/sys/unix"
)

// FromFile is FromFD on a duplicate of f's descriptor; f stays the caller's.
func FromFile(f *os.File) (*Device, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, &OpError{Op: "wrap file", Name: f.Name(), Err: err}
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, &OpError{Op: "wrap file", Name: f.Name(), Err: err}
	}
	if derr != nil {
		return nil, &OpError{Op: "duplicate descriptor of", Name: f.Name(), Err: derr}
	}
	dev, err := FromFD(nfd)
	if err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return dev, nil
}
