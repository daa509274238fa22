package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// procStat returns the state letter (R, S, Z, ...) and the start time of
// process pid, from /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return f[0][0], start, nil
}

// netnsID identifies the network namespace of process pid ("self" for
// this one).
func netnsID(pid string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/proc", pid, "ns", "net"), &st); err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// signalUp sends sig to the tapwire up that rf found live, through a pidfd
// opened before its identity is checked again, so that a process that got
// its pid in between is never signalled.
func signalUp(rf runFiles, name string, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(rf.pid, 0)
	if err != nil {
		if !errors.Is(err, unix.ENOSYS) {
			return err
		}
		// A kernel before 5.3: the check just made has to do.
		return syscall.Kill(rf.pid, sig)
	}
	defer unix.Close(fd)
	if live, why := isUpOf(rf.pid, name, rf.state); !live {
		return errors.New(why)
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}
