package main

import (
	"context"
	"flag"
	"strings"

	"github.com/tapwire/tapwire/internal/logging"
)

// upFlags are the flags of tapwire up.
type upFlags struct {
	foreground     bool
	keepPrivileges bool
	logFormat      string // logging.Text or logging.JSON
	logLevel       string // a logging.ParseLevel name
	workers        int    // from TAPWIRE_WORKERS (0: the engine's default)
}

func upCommand() *command {
	var f upFlags
	return &command{
		name:  "up",
		usage: "[-f|--foreground] [--keep-privileges] [--log-format text|json] [--log-level LEVEL] FILE|INTERFACE",
		short: "bring up a WireGuard interface from a wg-quick file",
		long: `Reads a wg-quick file (the interface is named after it: wg0.conf -> wg0),
creates the device, its addresses and routes, runs the hooks, and goes into
the background. Given a bare interface name (wg0), it reads
/etc/tapwire/wg0.conf, or else /etc/wireguard/wg0.conf, as wg-quick does.
A bad file is refused with its file, line and key before anything is
created. wg show/set work on the interface as on wireguard-go. Hooks run
with bash, as wg-quick runs them. If the interface is not up within 60 s,
tapwire up stops the background process, which takes back what it did.

Once the interface is up, the process drops every privilege but
CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE for a ListenPort or ListenTCP below
1024), unless PreDown/PostDown hooks or DNS need root to take it down;
tapwire status shows what it kept. SIGHUP makes it read the file again and
apply it as wg syncconf does (key, port, fwmark, peers; not addresses,
routes, MTU, DNS or hooks); a bad file is refused and changes nothing.
Under systemd (Type=notify, see tapwire@.service) it tells systemd when it
is ready, reloading and stopping.

With Mode = tap in [Interface] the interface is a TAP device carrying
Ethernet frames: no routes from AllowedIPs; Bridge = br0 attaches it to a
Linux bridge (created if missing; Address then goes on the bridge);
ClampMSS, MACAgeing, MaxMACsPerPeer, FloodLimit and, per peer, AllowedMACs
tune it.

MetricsAddress = 127.0.0.1:9586 in [Interface] serves Prometheus metrics
at http://127.0.0.1:9586/metrics (an IP address and a port; [::]:9586 for
every address): the WireGuard exporters' names and labels, and tapwire's
own. An address in use fails tapwire up before the device is made.

The log (stderr with -f, else /var/run/tapwire/NAME.log) is text
(key=value) or, with --log-format json, one JSON object a line; the hooks'
own output is passed through as it is. --log-level debug adds each
handshake and the UAPI's set requests. No level logs a private or
preshared key.

Examples:
  sudo tapwire up /etc/wireguard/wg0.conf
  sudo tapwire up wg0                  # /etc/tapwire/wg0.conf or /etc/wireguard/wg0.conf
  sudo kill -HUP $(cat /var/run/tapwire/wg0.pid)   # reload wg0.conf
  sudo tapwire up -f ./wg1.conf        # stay in the foreground, log to stderr
  sudo tapwire up /etc/tapwire/lan0.conf   # Mode = tap, Bridge = br0
  sudo tapwire up -f --log-format json --log-level debug ./wg1.conf
`,
		flags: func(fs *flag.FlagSet) {
			const usage = "stay in the foreground (log to stderr) instead of going into the background"
			fs.BoolVar(&f.foreground, "f", false, usage)
			fs.BoolVar(&f.foreground, "foreground", false, usage)
			fs.BoolVar(&f.keepPrivileges, "keep-privileges", false, "keep root's privileges once the interface is up (by default all but CAP_NET_ADMIN are dropped when no PreDown/PostDown hook or DNS needs them)")
			fs.StringVar(&f.logFormat, "log-format", logging.Text, "the log's format, `text|json`: key=value text, or one JSON object a line")
			fs.StringVar(&f.logLevel, "log-level", "info", "log from `LEVEL` up: "+strings.ReplaceAll(logging.Levels, "|", ", "))
		},
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return runUp(ctx, inv.stdout, inv.stderr, f, inv.args)
		},
	}
}
