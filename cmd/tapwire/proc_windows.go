package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/tapwire/tapwire/uapi"
	"golang.org/x/sys/windows"
)

// procStat returns 'S' and the creation time of process pid (100 ns
// units since 1601), or an error when there is no such process.
func procStat(pid int) (state byte, start uint64, err error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err == nil && code != 259 { // STILL_ACTIVE
		return 'Z', 0, nil
	}
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return 'S', uint64(created.HighDateTime)<<32 | uint64(created.LowDateTime), nil
}

// netnsID returns "": network namespaces are Linux's.
func netnsID(string) string { return "" }

// signalUp asks the tapwire up that rf found live, once its identity is
// checked again, to take its interface down: Windows has no SIGTERM for a
// process on another console, so the request goes over the interface's
// UAPI pipe (uapi.RequestStop), and the process runs PreDown, SaveConfig
// and PostDown and takes back its routes and addresses as on SIGTERM. A
// process that does not answer is terminated, and its Wintun adapter goes
// with it, addresses and routes included, but no hook runs.
func signalUp(rf runFiles, name string, sig syscall.Signal) error {
	if live, why := isUpOf(rf.pid, name, rf.state); !live {
		return errors.New(why)
	}
	if err := uapi.RequestStop(uapi.SocketPath(name)); err == nil {
		return nil
	}
	p, err := os.FindProcess(rf.pid) // on Windows a process handle
	if err != nil {
		return err
	}
	defer p.Release()
	return p.Kill()
}
