package devconf

import "syscall"

// wireErrno maps the errnos the UAPI reports to Linux's numbers, which
// wg.exe expects (wireguard-go's Windows UAPI reports the same).
func wireErrno(e syscall.Errno) int {
	switch e {
	case syscall.EPERM:
		return 1
	case syscall.ENOENT:
		return 2
	case syscall.EIO:
		return 5
	case syscall.EBADF:
		return 9
	case syscall.ENOMEM:
		return 12
	case syscall.EEXIST:
		return 17
	case syscall.ENODEV:
		return 19
	case syscall.EINVAL:
		return 22
	case syscall.ENOSPC:
		return 28
	case syscall.EPROTO:
		return 71
	case syscall.EMSGSIZE:
		return 90
	case syscall.EADDRINUSE:
		return 98
	}
	if e > 0 && e < 4096 {
		return int(e) // a Linux number already, such as ErrnoUnknown
	}
	return int(ErrnoUnknown)
}
