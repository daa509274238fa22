//go:build !darwin && !windows

package wgquick

// findDNSTool finds resolvconf, or resolvectl with systemd-resolved
// running (Linux, FreeBSD).
func findDNSTool() (DNSTool, error) { return findUnixDNSTool() }

// readDNSServices has nothing to read: only macOS has network services.
func readDNSServices(DNSTool) []DNSService { return nil }
