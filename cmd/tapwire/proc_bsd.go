//go:build darwin || freebsd

package main

import (
	"errors"
	"fmt"
	"syscall"
)

// procStat returns 'S' for a process that exists and an error for one
// that does not. There is no /proc: the start time is 0, so a process that
// took the pid of a tapwire up that died is not told apart (tapwire down
// still checks the state file first).
func procStat(pid int) (state byte, start uint64, err error) {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return 'S', 0, nil
}

// netnsID returns "": network namespaces are Linux's.
func netnsID(string) string { return "" }

// signalUp sends sig to the tapwire up that rf found live, once its
// identity is checked again.
func signalUp(rf runFiles, name string, sig syscall.Signal) error {
	if live, why := isUpOf(rf.pid, name, rf.state); !live {
		return errors.New(why)
	}
	return syscall.Kill(rf.pid, sig)
}
