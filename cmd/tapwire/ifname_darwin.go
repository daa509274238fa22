package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tapwire/tapwire/uapi"
)

// macOS names its TUN interfaces utunN itself. As wg-quick does there, a
// configuration named otherwise (wg0) gets the first free utun, and
// /var/run/wireguard/wg0.name says which: tapwire down wg0 and tapwire
// status wg0 read it, and so do wg-quick's users.

// isUtun reports whether name is a utun interface's name.
func isUtun(name string) bool {
	n, ok := strings.CutPrefix(name, "utun")
	_, err := strconv.ParseUint(n, 10, 16)
	return ok && err == nil
}

// nameFile is where the utun of the configuration name is written.
func nameFile(name string) string { return filepath.Join(uapi.SocketDir, name+".name") }

// systemIfaceName returns the interface to make for the configuration
// name: name itself when it is a utun's, else the first free utunN.
func systemIfaceName(name string) (string, error) {
	if isUtun(name) {
		return name, nil
	}
	for n := 0; n < 256; n++ {
		u := "utun" + strconv.Itoa(n)
		if _, err := net.InterfaceByName(u); err != nil {
			return u, nil
		}
	}
	return "", fmt.Errorf("%s: no free utun interface (utun0 to utun255 exist)", name)
}

// recordIfaceName writes the name file of name when its interface has
// another name, and returns what removes it.
func recordIfaceName(name, iface string) (remove func(), err error) {
	if name == iface {
		return func() {}, nil
	}
	if err := os.MkdirAll(uapi.SocketDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(nameFile(name), []byte(iface+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("%s: record its interface %s: %w", name, iface, err)
	}
	return func() { os.Remove(nameFile(name)) }, nil
}

// resolveIface returns the interface of the configuration name: the utun
// its name file names, or name itself.
func resolveIface(name string) string {
	if isUtun(name) {
		return name
	}
	b, err := os.ReadFile(nameFile(name))
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return name
	}
	if iface := strings.TrimSpace(string(b)); isUtun(iface) {
		return iface
	}
	return name
}
