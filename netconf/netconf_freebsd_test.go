package netconf_test

import (
	"testing"

	"github.com/tapwire/tapwire/netconf"
)

// createLink makes a tun interface, point-to-point as tapwire's are.
func createLink(t *testing.T, h *netconf.Handle) string {
	return ifconfigCreate(t, h, "tun")
}
