//go:build !darwin

package main

// checkIfaceName accepts every name the configuration's file name gives:
// Linux, FreeBSD (which renames the new interface) and Windows (an
// adapter's name) take it as it is.
func checkIfaceName(string) error { return nil }
