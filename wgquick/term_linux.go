package wgquick

import "golang.org/x/sys/unix"

// onTerminal reports whether this process runs on a terminal (its standard
// input, output or error is one).
func onTerminal() bool {
	for _, fd := range []int{0, 1, 2} {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			return true
		}
	}
	return false
}
