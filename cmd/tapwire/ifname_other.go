//go:build !darwin

package main

// systemIfaceName returns name: Linux, FreeBSD (which renames the new
// interface) and Windows (an adapter's name) take the configuration's name
// as it is.
func systemIfaceName(name string) (string, error) { return name, nil }

// recordIfaceName has nothing to record: the interface is named as its
// configuration.
func recordIfaceName(name, iface string) (remove func(), err error) { return func() {}, nil }

// resolveIface returns name: the interface has the configuration's name.
func resolveIface(name string) string { return name }
