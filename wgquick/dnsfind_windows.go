package wgquick

import (
	"fmt"
	"os/exec"
)

// findDNSTool finds netsh, which sets DNS servers on the tunnel's
// interface.
func findDNSTool() (DNSTool, error) {
	p, err := exec.LookPath("netsh")
	if err != nil {
		return DNSTool{}, fmt.Errorf("netsh is not in %%PATH%%: remove DNS and set it in a PostUp hook")
	}
	return DNSTool{Netsh, p}, nil
}

// readDNSServices has nothing to read: only macOS has network services.
func readDNSServices(DNSTool) []DNSService { return nil }
