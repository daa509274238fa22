package main

import (
	"fmt"
	"strconv"
	"strings"
)

// checkIfaceName refuses a name macOS cannot give an interface: its TUN
// devices are utunN, named by the kernel.
func checkIfaceName(name string) error {
	n, ok := strings.CutPrefix(name, "utun")
	if _, err := strconv.ParseUint(n, 10, 32); ok && err == nil {
		return nil
	}
	return fmt.Errorf("%s: macOS names its TUN interfaces utunN: name the file utunN.conf (e.g. /etc/wireguard/utun7.conf), "+
		"or bring it up with wg-quick and tapwire-go (WG_QUICK_USERSPACE_IMPLEMENTATION=tapwire-go wg-quick up %s), which maps %s to a utun", name, name, name)
}
