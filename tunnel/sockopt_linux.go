package tunnel

import (
	"time"

	"golang.org/x/sys/unix"
)

// setSocketMark sets SO_MARK, the fwmark policy routing matches.
func setSocketMark(fd uintptr, mark uint32) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
}

// setUserTimeout bounds how long sent data may stay unacknowledged before
// the connection is dropped (TCP_USER_TIMEOUT).
func setUserTimeout(fd uintptr, d time.Duration) {
	unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
}
