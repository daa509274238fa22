// Command tunecho creates a TUN device, gives it addresses, and answers ICMP
// echo requests (ping) sent to any other address in those prefixes, from user
// space, until interrupted.
//
// With -addr 192.0.2.1/24 the kernel owns 192.0.2.1 and routes the rest of
// 192.0.2.0/24 into the device; tunecho reads those packets and writes the
// replies back, so `ping 192.0.2.2` (or .3, .200...) is answered by this
// program, not by the kernel.
//
// Try it in a namespace of its own, so nothing touches the host's network:
//
//	ip netns add echo
//	ip netns exec echo go run ./examples/tunecho -dev tun0 -addr 192.0.2.1/24 -addr6 2001:db8::1/64 &
//	ip netns exec echo ping -c 3 192.0.2.2
//	ip netns exec echo ping -c 3 2001:db8::2
//	kill %1; ip netns del echo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/responder"
	"github.com/tapwire/tapwire/tun"
)

func main() {
	dev := flag.String("dev", "tun%d", "device name, or a pattern such as tun%d")
	addr := flag.String("addr", "", "IPv4 address and prefix of the device, e.g. 192.0.2.1/24")
	addr6 := flag.String("addr6", "", "IPv6 address and prefix of the device, e.g. 2001:db8::1/64")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tunecho -dev NAME -addr CIDR [-addr6 CIDR]\n\n"+
			"Answers ping to every other address in the prefixes, from user space.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	prefixes, err := parsePrefixes(*addr, *addr6)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunecho:", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := options{Dev: *dev, Prefixes: prefixes, Log: slog.Default()}
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "tunecho:", err)
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

type options struct {
	Dev      string
	Prefixes []netip.Prefix
	NetNS    string            // namespace to work in ("" = this one); used by the tests
	Ready    func(name string) // called once the device is up; used by the tests
	Log      *slog.Logger
}

// run opens the device, configures it, and answers pings until ctx ends.
func run(ctx context.Context, o options) error {
	// 1. Open the TUN device. It disappears again when we close it.
	dev, err := tun.Open(tun.Config{Name: o.Dev, NetNS: o.NetNS})
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
	o.Log.Info("answering ping", "dev", dev.Name(), "prefixes", o.Prefixes)
	if o.Ready != nil {
		o.Ready(dev.Name())
	}

	// 3. Closing the device is how we stop: it unblocks the read below.
	stop := context.AfterFunc(ctx, func() { dev.Close() })
	defer stop()

	// 4. Read packets in batches, turn echo requests into replies in place,
	// and write the replies back in one batch (see responder.Serve).
	r := &responder.Responder{Prefixes: o.Prefixes}
	err = r.Serve(dev, tun.ModeTUN)
	if errors.Is(err, tun.ErrClosed) && ctx.Err() != nil {
		return nil // interrupted: a clean stop
	}
	return err
}
