package main

import (
	"context"
	"errors"
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

// runCapture is tapwire capture.
func runCapture(ctx context.Context, stdout, stderr io.Writer, cf captureFlags) error {
	set := cf.given
	if set["iface"] && cf.iface == "" {
		return usageError{"--iface needs an interface name"}
	}
	if cf.iface != "" && (set["mode"] || set["addr"] || set["dev"]) {
		return usageError{"--iface watches an existing interface; --mode, --addr and --dev are for a new device: use one or the other"}
	}
	m, err := tun.ParseMode(cf.mode)
	if err != nil {
		return usageError{"--mode: " + err.Error()}
	}
	var prefixes []netip.Prefix
	for _, a := range cf.addrs {
		for s := range strings.SplitSeq(a, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return usageError{fmt.Sprintf("--addr %q: want an address with its prefix length, such as 192.0.2.1/24", s)}
			}
			prefixes = append(prefixes, p)
		}
	}
	if cf.dev == "" || len(cf.dev) > unix.IFNAMSIZ-1 {
		return usageError{fmt.Sprintf("--dev %q: want an interface name of 1 to %d bytes", cf.dev, unix.IFNAMSIZ-1)}
	}
	filter, err := capture.ParseFilter(cf.protos, cf.hosts, cf.ports)
	if err != nil {
		return usageError{err.Error()}
	}
	if cf.count < 0 {
		return usageError{"-c must not be negative"}
	}
	if cf.duration < 0 {
		return usageError{"--duration must not be negative"}
	}

	// The source first: an output file is only made once there is
	// something to capture.
	var src capture.Source
	var what string
	if cf.iface != "" {
		s, err := capture.OpenInterface(cf.iface, cf.netns)
		if errors.Is(err, unix.ENODEV) {
			return captureNoInterface(cf.iface, cf.netns)
		}
		if err != nil {
			return err
		}
		src, what = s, "existing interface, both directions"
	} else {
		s, err := capture.OpenDevice(capture.DeviceConfig{Name: cf.dev, Mode: m, Addrs: prefixes, NetNS: cf.netns})
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

	opts := capture.Options{Count: cf.count, Duration: cf.duration, Filter: filter}
	var file *os.File
	dest := ""
	switch cf.out {
	case "":
		opts.Print = stdout
	case "-":
		dest = "stdout"
		if cf.printLines {
			opts.Print = stderr
		}
	default:
		f, err := os.Create(cf.out)
		if err != nil {
			src.Close()
			return err
		}
		file, dest = f, cf.out
		if cf.printLines {
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
	if cf.netns != "" {
		fmt.Fprintf(&where, " in namespace %s", cf.netns)
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
