package main

import (
	"context"
	"flag"
)

// demoFlags are the flags of tapwire demo.
type demoFlags struct {
	mode           string
	count, seconds int
	echo           bool
}

func demoCommand() *command {
	var f demoFlags
	return &command{
		name:  "demo",
		usage: "[--count N] [--seconds N] [--mode tun|tap|both] [--echo]",
		short: "ping and measure encrypted tunnels between two throw-away namespaces",
		long: `Builds two network namespaces joined by a veth, runs encrypted tapwire
tunnels between them (WireGuard over TUN, then Ethernet frames over TAP),
shows the handshake, a ping, the MAC table and a throughput figure, and
removes everything. Needs root.

Examples:
  sudo tapwire demo                # both tunnels
  sudo tapwire demo --mode tap     # only the Ethernet (TAP) tunnel
  sudo tapwire demo --seconds 10   # measure longer
  sudo tapwire demo --echo         # just a TUN device answering ping from user space
`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.mode, "mode", "both", "which tunnel to show, `tun|tap|both`: tun (WireGuard, IP packets), tap (Ethernet frames) or both")
			fs.IntVar(&f.count, "count", 3, "send `N` echo requests, 1 to 1000")
			fs.IntVar(&f.seconds, "seconds", 3, "measure throughput through the tunnel for `N` seconds, 0 to 60")
			fs.BoolVar(&f.echo, "echo", false, "instead: one TUN device whose pings are answered from user space (no tunnel)")
		},
		run: func(ctx context.Context, inv *invocation) error {
			return runDemo(ctx, inv.stdout, f)
		},
	}
}
