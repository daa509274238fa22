//go:build !linux && !freebsd

package tunnel

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// setSocketMark fails: this system has no socket marks (FwMark is Linux's
// SO_MARK and FreeBSD's SO_USER_COOKIE).
func setSocketMark(uintptr, uint32) error {
	return fmt.Errorf("fwmark: sockets have no mark on %s: %w", runtime.GOOS, syscall.EINVAL)
}

// setUserTimeout does nothing: the system has no TCP_USER_TIMEOUT.
func setUserTimeout(uintptr, time.Duration) {}
