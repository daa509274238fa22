package netconf_test

import (
	"testing"

	"github.com/tapwire/tapwire/netconf"
)

// createLink makes a fake Ethernet interface (feth), as utun devices go
// with the descriptor that made them.
func createLink(t *testing.T, h *netconf.Handle) string {
	return ifconfigCreate(t, h, "feth")
}
