//go:build !windows

package devconf

import "syscall"

func wireErrno(e syscall.Errno) int { return int(e) }
