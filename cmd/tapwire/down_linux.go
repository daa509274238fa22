package main

import "fmt"

// downForeign stops the userspace interface name that another program
// (tapwire-go, wireguard-go) serves: deleting its TUN device stops it, as
// wg-quick down does. Only a TUN/TAP device is deleted.
func downForeign(name string) error {
	if _, err := findDevice("", name); err != nil {
		return fmt.Errorf("%s is not up", name)
	}
	return delLink(name)
}
