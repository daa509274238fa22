package uapi

import (
	"net"
	"strconv"
	"syscall"
)

// connID names a connection in logs: the peer's pid when the kernel says.
func connID(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return "?"
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return "?"
	}
	id := "?"
	raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			id = "pid " + strconv.Itoa(int(cred.Pid))
		}
	})
	return id
}
