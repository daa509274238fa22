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
	case syscall.ESRCH:
		return 3
	case syscall.EINTR:
		return 4
	case syscall.EIO:
		return 5
	case syscall.ENXIO:
		return 6
	case syscall.E2BIG:
		return 7
	case syscall.EBADF:
		return 9
	case syscall.EAGAIN:
		return 11
	case syscall.ENOMEM:
		return 12
	case syscall.EACCES:
		return 13
	case syscall.EFAULT:
		return 14
	case syscall.EBUSY:
		return 16
	case syscall.EEXIST:
		return 17
	case syscall.ENODEV:
		return 19
	case syscall.ENOTDIR:
		return 20
	case syscall.EISDIR:
		return 21
	case syscall.EINVAL:
		return 22
	case syscall.ENFILE:
		return 23
	case syscall.EMFILE:
		return 24
	case syscall.ENOSPC:
		return 28
	case syscall.EPIPE:
		return 32
	case syscall.ERANGE:
		return 34
	case syscall.ENOSYS:
		return 38
	case syscall.EPROTO:
		return 71
	case syscall.EMSGSIZE:
		return 90
	case syscall.EOPNOTSUPP:
		return 95
	case syscall.EAFNOSUPPORT:
		return 97
	case syscall.EADDRINUSE:
		return 98
	case syscall.EADDRNOTAVAIL:
		return 99
	case syscall.ENETUNREACH:
		return 101
	case syscall.ECONNRESET:
		return 104
	case syscall.ENOBUFS:
		return 105
	case syscall.ETIMEDOUT:
		return 110
	case syscall.ECONNREFUSED:
		return 111
	case syscall.EHOSTUNREACH:
		return 113
	}
	if e > 0 && e < 4096 {
		return int(e) // a Linux number already, such as ErrnoUnknown
	}
	return int(ErrnoUnknown)
}
