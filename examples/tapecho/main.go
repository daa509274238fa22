// Command tapecho creates a TAP device, gives it addresses, and plays every
// other host of those prefixes on the Ethernet segment behind it, from user
// space, until interrupted: it answers ARP requests and IPv6 neighbour
// solicitations for those addresses with a MAC address of its own, and then
// the ICMP echo requests (ping) the kernel sends to that MAC.
//
// With -addr 192.0.2.1/24 the kernel owns 192.0.2.1; `ping 192.0.2.2` makes
// the kernel ask "who has 192.0.2.2?" on the TAP link, tapecho answers with
// its MAC, and then answers the pings.
//
// Try it in a namespace of its own, so nothing touches the host's network:
//
//	ip netns add echo
//	ip netns exec echo go run ./examples/tapecho -dev tap0 -addr 192.0.2.1/24 -addr6 2001:db8::1/64 &
//	ip netns exec echo ping -c 3 192.0.2.2
//	ip netns exec echo ping -c 3 2001:db8::2
//	kill %1; ip netns del echo
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/responder"
	"github.com/tapwire/tapwire/tun"
)

func main() {
	dev := flag.String("dev", "tap%d", "device name, or a pattern such as tap%d")
	addr := flag.String("addr", "", "IPv4 address and prefix of the device, e.g. 192.0.2.1/24")
	addr6 := flag.String("addr6", "", "IPv6 address and prefix of the device, e.g. 2001:db8::1/64")
	macFlag := flag.String("mac", "", "MAC address tapecho answers with (default: a random locally administered one)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tapecho -dev NAME -addr CIDR [-addr6 CIDR] [-mac MAC]\n\n"+
			"Answers ARP, neighbour solicitation and ping for every other address in the prefixes, from user space.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	prefixes, err := parsePrefixes(*addr, *addr6)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapecho:", err)
		flag.Usage()
		os.Exit(2)
	}
	mac, err := parseMAC(*macFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapecho: -mac:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := options{Dev: *dev, Prefixes: prefixes, MAC: mac, Log: slog.Default()}
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "tapecho:", err)
		os.Exit(1)
	}
}

// parsePrefixes parses the -addr and -addr6 flags; at least one is needed.
func parsePrefixes(addr, addr6 string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range []struct {
		name, val string
		v4        bool
	}{{"-addr", addr, true}, {"-addr6", addr6, false}} {
		if f.val == "" {
			continue
		}
		p, err := netip.ParsePrefix(f.val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if p.Addr().Is4() != f.v4 {
			return nil, fmt.Errorf("%s %s: wrong address family", f.name, f.val)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("give -addr, -addr6 or both")
	}
	return out, nil
}

// parseMAC parses -mac, or makes a random locally administered unicast
// address when it is empty.
func parseMAC(s string) (net.HardwareAddr, error) {
	if s != "" {
		mac, err := net.ParseMAC(s)
		if err == nil && len(mac) != 6 {
			err = errors.New("not a 6-byte Ethernet address")
		}
		return mac, err
	}
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac, nil
}

type options struct {
	Dev      string
	Prefixes []netip.Prefix
	MAC      net.HardwareAddr  // the MAC we answer with, not the tap's own
	NetNS    string            // namespace to work in ("" = this one); used by the tests
	Ready    func(name string) // called once the device is up; used by the tests
	Log      *slog.Logger
}

// run opens the device, configures it, and answers pings until ctx ends.
func run(ctx context.Context, o options) error {
	// 1. Open the TAP device. It disappears again when we close it. The
	// kernel gives the tap a random MAC of its own; ours must differ.
	dev, err := tun.Open(tun.Config{Name: o.Dev, Mode: tun.ModeTAP, NetNS: o.NetNS})
	if err != nil {
		return err
	}
	defer dev.Close()

	// 2. Give it its addresses and bring it up, over netlink.
	nc, err := netconf.Open(o.NetNS)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, p := range o.Prefixes {
		if err := nc.AddAddr(dev.Name(), p, netconf.NoDAD()); err != nil {
			return err
		}
	}
	if err := nc.SetUp(dev.Name()); err != nil {
		return err
	}
	o.Log.Info("answering ARP, ND and ping", "dev", dev.Name(), "prefixes", o.Prefixes, "mac", o.MAC)
	if o.Ready != nil {
		o.Ready(dev.Name())
	}

	// 3. Closing the device is how we stop: it unblocks the read below.
	stop := context.AfterFunc(ctx, func() { dev.Close() })
	defer stop()

	// 4. Read frames in batches, turn ARP requests, neighbour solicitations
	// and echo requests into replies in place, and write the replies back in
	// one batch (see responder.Serve).
	r := &responder.Responder{Prefixes: o.Prefixes, MAC: o.MAC}
	err = r.Serve(dev, tun.ModeTAP)
	if errors.Is(err, tun.ErrClosed) && ctx.Err() != nil {
		return nil // interrupted: a clean stop
	}
	return err
}
