package main

import (
	"fmt"

	"github.com/tapwire/tapwire/uapi"
)

// downForeign cannot stop a userspace interface that another program
// serves on Windows: its named pipe goes only with it. It says so.
func downForeign(name string) error {
	return fmt.Errorf("%s is not a tapwire up of this machine's; stop the program that serves %s", name, uapi.SocketPath(name))
}
