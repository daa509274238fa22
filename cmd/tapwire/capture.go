package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/capture"
	"github.com/tapwire/tapwire/tun"
)

const captureSynopsis = "(--mode tun|tap [--addr CIDR]... [--dev NAME] | --iface NAME) [--netns NS]\n" +
	"                       [-w FILE|- [--print]] [--proto P] [--host ADDR] [--port N] [-c COUNT] [--duration D]"

const captureHelp = `
Shows what crosses a TUN/TAP interface: as pcapng, which Wireshark and tshark
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
`

// captureList is a flag that can be repeated; each value may be a comma list,
// which the consumer splits.
type captureList []string

func (l *captureList) String() string     { return strings.Join(*l, ",") }
func (l *captureList) Set(v string) error { *l = append(*l, v); return nil }

func runCapture(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("capture", captureSynopsis, stderr)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, captureHelp) }
	var addrs, protos, hosts, ports captureList
	mode := fs.String("mode", "tun", "make the new device `tun|tap`: for IP packets or for Ethernet frames")
	fs.Var(&addrs, "addr", "give the new device this address and prefix length (`CIDR`), such as 192.0.2.1/24 (repeatable)")
	dev := fs.String("dev", capture.DefaultDeviceName, "`NAME` of the new device; %d is replaced by the first free number")
	iface := fs.String("iface", "", "capture on the existing interface `NAME` instead of a new device")
	netns := fs.String("netns", "", "work in the network namespace `NS`: a name (ip netns add) or a path")
	out := fs.String("w", "", "write pcapng to `FILE`, or to stdout with -")
	printLines := fs.Bool("print", false, "with -w, also print one line per packet (on stderr with -w -)")
	fs.Var(&protos, "proto", "keep only the protocol `P`: "+capture.ProtocolNames+" (repeatable, or a comma list)")
	fs.Var(&hosts, "host", "keep only packets from or to `ADDR` (an address or a prefix; repeatable, or a comma list)")
	fs.Var(&ports, "port", "keep only TCP and UDP packets from or to port `N` (repeatable, or a comma list)")
	count := fs.Int("c", 0, "stop after `COUNT` kept packets (0: no limit)")
	duration := fs.Duration("duration", 0, "stop after the duration `D`, such as 10s or 1m (0: no limit)")
	if err := parse(fs, args); err != nil {
		return err
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["iface"] && *iface == "" {
		return usageError{"--iface needs an interface name"}
	}
	if *iface != "" && (set["mode"] || set["addr"] || set["dev"]) {
		return usageError{"--iface watches an existing interface; --mode, --addr and --dev are for a new device: use one or the other"}
	}
	m, err := tun.ParseMode(*mode)
	if err != nil {
		return usageError{"--mode: " + err.Error()}
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		for s := range strings.SplitSeq(a, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return usageError{fmt.Sprintf("--addr %q: want an address with its prefix length, such as 192.0.2.1/24", s)}
			}
			prefixes = append(prefixes, p)
		}
	}
	if *dev == "" || len(*dev) > unix.IFNAMSIZ-1 {
		return usageError{fmt.Sprintf("--dev %q: want an interface name of 1 to %d bytes", *dev, unix.IFNAMSIZ-1)}
	}
	filter, err := capture.ParseFilter(protos, hosts, ports)
	if err != nil {
		return usageError{err.Error()}
	}
	if *count < 0 {
		return usageError{"-c must not be negative"}
	}
	if *duration < 0 {
		return usageError{"--duration must not be negative"}
	}

	// The source first: an output file is only made once there is
	// something to capture.
	var src capture.Source
	var what string
	if *iface != "" {
		s, err := capture.OpenInterface(*iface, *netns)
		if errors.Is(err, unix.ENODEV) {
			return captureNoInterface(*iface, *netns)
		}
		if err != nil {
			return err
		}
		src, what = s, "existing interface, both directions"
	} else {
		s, err := capture.OpenDevice(capture.DeviceConfig{Name: *dev, Mode: m, Addrs: prefixes, NetNS: *netns})
		if err != nil {
			if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%w; to watch an existing interface, use --iface", err)
			}
			return err
		}
		src, what = s, "new "+strings.ToUpper(m.String())+" device"
		if len(prefixes) > 0 {
			what += " with " + captureJoinPrefixes(prefixes)
		}
	}

	opts := capture.Options{Count: *count, Duration: *duration, Filter: filter}
	var file *os.File
	dest := ""
	switch *out {
	case "":
		opts.Print = stdout
	case "-":
		dest = "stdout"
		if *printLines {
			opts.Print = stderr
		}
	default:
		f, err := os.Create(*out)
		if err != nil {
			src.Close()
			return err
		}
		file, dest = f, *out
		if *printLines {
			opts.Print = stdout
		}
	}
	if dest != "" {
		var w io.Writer = stdout
		if file != nil {
			w = file
		}
		opts.Writer, err = capture.NewWriter(w, src.Name(), src.LinkType(), filter.String())
		if err != nil {
			src.Close()
			if file != nil {
				file.Close()
			}
			return err
		}
	}

	var where strings.Builder
	fmt.Fprintf(&where, "capturing on %s (%s)", src.Name(), what)
	if *netns != "" {
		fmt.Fprintf(&where, " in namespace %s", *netns)
	}
	fmt.Fprintf(&where, ", link-type %s", capture.LinkTypeName(src.LinkType()))
	if !filter.IsEmpty() {
		fmt.Fprintf(&where, ", filter %q", filter.String())
	}
	if dest != "" {
		fmt.Fprintf(&where, ", writing to %s", dest)
	}
	fmt.Fprintf(stderr, "tapwire capture: %s; Ctrl-C to stop\n", where.String())

	start := time.Now()
	stats, err := capture.Run(ctx, src, opts)
	if file != nil {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	summary := fmt.Sprintf("%d %s captured", stats.Captured, capturePlural(stats.Captured, "packet"))
	if dest != "" {
		summary += fmt.Sprintf(", %d written to %s", stats.Kept, dest)
	} else {
		summary += fmt.Sprintf(", %d printed", stats.Kept)
	}
	fmt.Fprintf(stderr, "tapwire capture: %s in %s\n", summary, time.Since(start).Round(time.Millisecond))
	return err
}

// captureNoInterface says that the namespace searched, ns ("": this one),
// has no interface name, and how to list those it has, as device del does.
func captureNoInterface(name, ns string) error {
	if ns == "" {
		return fmt.Errorf("no interface %q in this network namespace (ip link lists its interfaces, "+
			"tapwire device list its TUN/TAP devices; --netns NS looks in another namespace)", name)
	}
	ipLink := "ip -n " + shellQuote(ns) + " link"
	if strings.Contains(ns, "/") { // a path, not a name ip netns knows
		ipLink = "nsenter --net=" + shellQuote(ns) + " ip link"
	}
	return fmt.Errorf("no interface %q in network namespace %s (%s lists its interfaces, "+
		"tapwire device list --netns %s its TUN/TAP devices)", name, ns, ipLink, shellQuote(ns))
}

func captureJoinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func capturePlural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
