//go:build !linux && !windows

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tapwire/tapwire/uapi"
)

// downForeign stops the userspace interface name that another program
// (tapwire-go, wireguard-go) serves, as wg-quick does on macOS and FreeBSD:
// it removes the UAPI socket, and the program, which watches it, exits and
// takes its utun or tun interface with it.
func downForeign(name string) error {
	path := uapi.SocketPath(name)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not up", name)
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s: %s is not a socket: not removing it", name, path)
	}
	return os.Remove(path)
}
