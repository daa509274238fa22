package tunnel

import (
	"time"

	"golang.org/x/sys/unix"
)

// setSocketMark sets SO_USER_COOKIE, FreeBSD's socket mark, which ipfw and
// pf can match (wireguard-go uses it as its fwmark there).
func setSocketMark(fd uintptr, mark uint32) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_USER_COOKIE, int(mark))
}

// setUserTimeout does nothing: FreeBSD has no TCP_USER_TIMEOUT; its
// keepalives end a dead stream instead.
func setUserTimeout(uintptr, time.Duration) {}
