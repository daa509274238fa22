package netconf

import "golang.org/x/sys/unix"

const (
	goos       = "freebsd"
	rtfIfscope = 0 // FreeBSD has no scoped routes
)

func layout() bsdLayout { return freebsdLayout() }

// socket opens a socket that is closed on exec.
func socket(domain, typ, proto int) (int, error) {
	return unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
}
