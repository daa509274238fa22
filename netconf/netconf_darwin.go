package netconf

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// macOS's requests.
const (
	goos         = "darwin"
	siocAIFADDR  = unix.SIOCAIFADDR // _IOW('i', 26, struct ifaliasreq)
	siocAIFADDR6 = 0x8080691a       // _IOW('i', 26, struct in6_aliasreq)
	siocDIFADDR6 = 0x81206919       // _IOW('i', 25, struct in6_ifreq)
	rtfIfscope   = unix.RTF_IFSCOPE // a default route scoped to one interface
)

func layout() bsdLayout { return darwinLayout() }

// socket opens a socket that is closed on exec (macOS has no
// SOCK_CLOEXEC: under ForkLock, as Go's net package does).
func socket(domain, typ, proto int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(domain, typ, proto)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}
