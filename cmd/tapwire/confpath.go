package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tapwire/tapwire/config"
)

// isBareName reports whether the argument of tapwire up or down names an
// interface (wg0) rather than a file: no '/' and no .conf.
func isBareName(arg string) bool {
	return !strings.Contains(arg, "/") && !strings.HasSuffix(arg, ".conf")
}

// configPath returns the file tapwire up brings up for its argument: the
// argument itself when it is a file, or, for a bare interface name,
// NAME.conf in the first of dirs that has one (a file there that cannot be
// looked at, for want of permission, counts: reading it says why).
func configPath(arg string, dirs ...string) (string, error) {
	if !isBareName(arg) {
		return arg, nil
	}
	if _, err := config.InterfaceName(arg + ".conf"); err != nil {
		return "", fmt.Errorf("%q is not an interface name: 1 to 15 of a-z A-Z 0-9 _ = + . - (or give a file: a path, or NAME.conf)", arg)
	}
	var tried []string
	for _, d := range slices.Compact(dirs) {
		p := filepath.Join(d, arg+".conf")
		if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("no configuration for %s: %s not found", arg, strings.Join(tried, " nor "))
}
