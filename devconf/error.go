package devconf

import (
	"fmt"
	"syscall"
)

// Error is a failed transaction's error carrying the errno to report, as
// the UAPI does to wg(8). Errno is positive (syscall.EINVAL is 22);
// negative values, as wireguard-go's constants are, mean the same errno,
// and 0 means ErrnoUnknown (Linux's ENOANO), what wireguard-go reports for
// an error without one.
type Error struct {
	Errno int
	Err   error
}

// Errorf returns an *Error with the given errno and a formatted message;
// %w wraps as in fmt.Errorf.
func Errorf(errno syscall.Errno, format string, args ...any) *Error {
	return &Error{Errno: int(errno), Err: fmt.Errorf(format, args...)}
}

// Error returns the message followed by the errno's number and name.
func (e *Error) Error() string {
	code := e.Code()
	if e.Err == nil {
		return fmt.Sprintf("errno %d (%s)", int(code), code.Error())
	}
	return fmt.Sprintf("%v (errno %d, %s)", e.Err, int(code), code.Error())
}

// Unwrap returns the error e carries.
func (e *Error) Unwrap() error { return e.Err }

// Code returns the errno to report: Errno made positive, or ErrnoUnknown
// when it is 0.
func (e *Error) Code() syscall.Errno {
	switch {
	case e.Errno > 0:
		return syscall.Errno(e.Errno)
	case e.Errno < 0:
		return syscall.Errno(-e.Errno)
	}
	return ErrnoUnknown
}

// ErrnoUnknown is the errno reported for an error that carries none: 55,
// Linux's ENOANO, which wireguard-go reports on every system (macOS and
// FreeBSD have no ENOANO; Windows' wg.exe reads Linux's numbers).
const ErrnoUnknown = syscall.Errno(55)

// WireErrno returns the number the UAPI reports for e: e itself on Unix
// systems, where wg(8) reads it with the system's strerror; on Windows,
// whose syscall package invents its own numbers for the Unix errnos, the
// Linux number (EINVAL 22, EIO 5, EPROTO 71, ...), as wireguard-go's
// Windows UAPI reports.
func WireErrno(e syscall.Errno) int { return wireErrno(e) }
