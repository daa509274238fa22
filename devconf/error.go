package devconf

import (
	"fmt"
	"syscall"
)

// Error is a failed transaction's error carrying the errno to report, as
// the UAPI does to wg(8). Errno is positive (syscall.EINVAL is 22);
// negative values, as wireguard-go's constants are, mean the same errno,
// and 0 means ENOANO, what wireguard-go reports for an error without one.
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

// Code returns the errno to report: Errno made positive, or ENOANO when it
// is 0.
func (e *Error) Code() syscall.Errno {
	switch {
	case e.Errno > 0:
		return syscall.Errno(e.Errno)
	case e.Errno < 0:
		return syscall.Errno(-e.Errno)
	}
	return syscall.ENOANO
}
