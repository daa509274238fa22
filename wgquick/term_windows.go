package wgquick

import (
	"os"

	"golang.org/x/sys/windows"
)

// onTerminal reports whether this process runs on a console (its standard
// input, output or error is one). Nothing depends on it on Windows, where
// hooks get no process group of their own.
func onTerminal() bool {
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		var mode uint32
		if f != nil && windows.GetConsoleMode(windows.Handle(f.Fd()), &mode) == nil {
			return true
		}
	}
	return false
}
