package main

import (
	"context"
	"flag"
)

// upFlags are the flags of tapwire up.
type upFlags struct {
	foreground bool
}

func upCommand() *command {
	var f upFlags
	return &command{
		name:  "up",
		usage: "[-f|--foreground] FILE",
		short: "bring up a WireGuard interface from a wg-quick file",
		long: `Reads a wg-quick file (the interface is named after it: wg0.conf -> wg0),
creates the device, its addresses and routes, runs the hooks, and goes into
the background. A bad file is refused with its file, line and key before
anything is created. wg show/set work on the interface as on wireguard-go.
Hooks run with bash, as wg-quick runs them. If the interface is not up
within 60 s, tapwire up stops the background process, which takes back
what it did.

With Mode = tap in [Interface] the interface is a TAP device carrying
Ethernet frames: no routes from AllowedIPs; Bridge = br0 attaches it to a
Linux bridge (created if missing; Address then goes on the bridge);
ClampMSS, MACAgeing, MaxMACsPerPeer, FloodLimit and, per peer, AllowedMACs
tune it.

MetricsAddress = 127.0.0.1:9586 in [Interface] serves Prometheus metrics
at http://127.0.0.1:9586/metrics (an IP address and a port; [::]:9586 for
every address): the WireGuard exporters' names and labels, and tapwire's
own. An address in use fails tapwire up before the device is made.

Examples:
  sudo tapwire up /etc/wireguard/wg0.conf
  sudo tapwire up -f ./wg1.conf        # stay in the foreground, log to stderr
  sudo tapwire up /etc/tapwire/lan0.conf   # Mode = tap, Bridge = br0
`,
		flags: func(fs *flag.FlagSet) {
			const usage = "stay in the foreground (log to stderr) instead of going into the background"
			fs.BoolVar(&f.foreground, "f", false, usage)
			fs.BoolVar(&f.foreground, "foreground", false, usage)
		},
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return runUp(ctx, inv.stdout, inv.stderr, f, inv.args)
		},
	}
}
