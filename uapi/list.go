package uapi

import (
	"fmt"
	"slices"
	"strings"
)

// Interfaces returns the names of the userspace interfaces whose UAPI
// sockets are in dir (SocketDir, where wg(8) looks; on Windows the named
// pipes under it, which wg.exe finds by listing \\.\pipe\ as a whole,
// named pipes having no directories), sorted. The error wraps the
// system's: errors.Is(err, fs.ErrNotExist) for a dir that does not exist,
// fs.ErrPermission for one this process may not list.
func Interfaces(dir string) ([]string, error) {
	entries, err := listDir(dir)
	if err != nil {
		return nil, fmt.Errorf("uapi: list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e, SocketSuffix); ok && name != "" && !strings.ContainsRune(name, '\\') {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// pipesUnder returns, of the pipes that \\.\pipe\* lists (their names
// relative to \\.\pipe\, "ProtectedPrefix\Administrators\WireGuard\wg0"),
// the names of those directly under dir (`\\.\pipe\ProtectedPrefix\...`),
// compared as Windows compares file names, without case. ok is false when
// dir is not under \\.\pipe\.
func pipesUnder(pipes []string, dir string) (names []string, ok bool) {
	const root = `\\.\pipe\`
	if len(dir) < len(root) || !strings.EqualFold(dir[:len(root)], root) {
		return nil, false
	}
	prefix := strings.TrimSuffix(dir[len(root):], `\`) + `\`
	for _, p := range pipes {
		if len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix) {
			names = append(names, p[len(prefix):])
		}
	}
	return names, true
}
