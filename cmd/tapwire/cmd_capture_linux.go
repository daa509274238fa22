package main

import (
	"context"
	"flag"
	"strings"
	"time"

	"github.com/tapwire/tapwire/capture"
)

// captureFlags are the flags of tapwire capture.
type captureFlags struct {
	mode, dev, iface, netns, out string
	addrs, protos, hosts, ports  captureList
	printLines                   bool
	count                        int
	duration                     time.Duration
	given                        map[string]bool // the flags on the command line, by name
}

// captureList is a flag that can be repeated; each value may be a comma list,
// which the consumer splits.
type captureList []string

func (l *captureList) String() string     { return strings.Join(*l, ",") }
func (l *captureList) Set(v string) error { *l = append(*l, v); return nil }

func captureCommand() *command {
	f := captureFlags{given: map[string]bool{}}
	return &command{
		name: "capture",
		usage: "(--mode tun|tap [--addr CIDR]... [--dev NAME] | --iface NAME) [--netns NS]\n" +
			"[-w FILE|- [--print]] [--proto P] [--host ADDR] [--port N] [-c COUNT] [--duration D]",
		short: "capture packets crossing a TUN/TAP device to pcapng, or print them",
		long: `Shows what crosses a TUN/TAP interface: as pcapng, which Wireshark and tshark
open, or as one line per packet, like tcpdump -n.

Where the packets come from (one of):
  --mode tun|tap   a new device (named after --dev) with the --addr prefixes,
                   up: what the kernel routes into it is captured. Nothing
                   answers, so pings through it get no reply.
  --iface NAME     an existing interface (a device another program holds, a
                   veth, a bridge), in both directions, with a packet socket.
With --netns both work inside that network namespace (a name made by
ip netns add, or a path such as /proc/PID/ns/net).

Output: without -w, one line per packet on stdout. -w FILE writes pcapng with
link type RAW (raw IP: TUN and other interfaces without a link header) or
EN10MB (Ethernet: TAP, veth); -w - writes it to stdout, and --print then
prints the lines on stderr. The file is complete whenever the capture stops,
at -c, at --duration or at Ctrl-C. A summary goes to stderr at the end.

Filter: --proto (` + capture.ProtocolNames + `), --host (an address
or a prefix) and --port (TCP or UDP) can be repeated or take comma lists; a
packet is kept when it matches one value of every kind given. -c counts kept
packets.

Examples:
  # what does the kernel send to 10.9.0.0/24 through a TUN device?
  sudo tapwire capture --mode tun --addr 10.9.0.1/24
  # a TAP device: ARP and neighbour discovery; stop after 10 packets
  sudo tapwire capture --mode tap --addr 192.0.2.1/24 --addr 2001:db8::1/64 -c 10
  # 30 seconds of an existing device, saved for Wireshark
  sudo tapwire capture --iface tun0 --duration 30s -w tun0.pcapng
  # live in Wireshark
  sudo tapwire capture --iface tap0 -w - | wireshark -k -i -
  # ICMP to or from one host, in a namespace, saved and printed
  sudo tapwire capture --netns blue --iface veth0 --proto icmp,icmp6 --host 192.0.2.2 -w ping.pcapng --print
`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.mode, "mode", "tun", "make the new device `tun|tap`: for IP packets or for Ethernet frames")
			fs.Var(&f.addrs, "addr", "give the new device this address and prefix length (`CIDR`), such as 192.0.2.1/24 (repeatable)")
			fs.StringVar(&f.dev, "dev", capture.DefaultDeviceName, "`NAME` of the new device; %d is replaced by the first free number")
			fs.StringVar(&f.iface, "iface", "", "capture on the existing interface `NAME` instead of a new device")
			fs.StringVar(&f.netns, "netns", "", "work in the network namespace `NS`: a name (ip netns add) or a path")
			fs.StringVar(&f.out, "w", "", "write pcapng to `FILE`, or to stdout with -")
			fs.BoolVar(&f.printLines, "print", false, "with -w, also print one line per packet (on stderr with -w -)")
			fs.Var(&f.protos, "proto", "keep only the protocol `P`: "+capture.ProtocolNames+" (repeatable, or a comma list)")
			fs.Var(&f.hosts, "host", "keep only packets from or to `ADDR` (an address or a prefix; repeatable, or a comma list)")
			fs.Var(&f.ports, "port", "keep only TCP and UDP packets from or to port `N` (repeatable, or a comma list)")
			fs.IntVar(&f.count, "c", 0, "stop after `COUNT` kept packets (0: no limit)")
			fs.DurationVar(&f.duration, "duration", 0, "stop after the duration `D`, such as 10s or 1m (0: no limit)")
		},
		run: func(ctx context.Context, inv *invocation) error {
			inv.flags.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
			return runCapture(ctx, inv.stdout, inv.stderr, f)
		},
	}
}
