package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tapwire/tapwire/internal/inns"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/responder"
	"github.com/tapwire/tapwire/tun"
)

// The demo's addresses: documentation prefixes, only ever inside the demo's
// own namespace.
var (
	demoPrefix4 = netip.MustParsePrefix("192.0.2.1/24")
	demoPrefix6 = netip.MustParsePrefix("2001:db8::1/64")
)

// runDemo is tapwire demo.
func runDemo(ctx context.Context, stdout io.Writer, f demoFlags) error {
	if f.count < 1 || f.count > 1000 {
		return usageError{"--count must be between 1 and 1000"}
	}
	if f.seconds < 0 || f.seconds > 60 {
		return usageError{"--seconds must be between 0 and 60"}
	}
	o := demoOptions{Count: f.count, Namespace: fmt.Sprintf("tapwire-demo-%d", os.Getpid()), Duration: time.Duration(f.seconds) * time.Second}
	switch f.mode {
	case "tun":
		o.Modes = []tun.Mode{tun.ModeTUN}
	case "tap":
		o.Modes = []tun.Mode{tun.ModeTAP}
	case "both":
	default:
		return usageError{"--mode must be tun, tap or both"}
	}
	if f.echo {
		return echoDemo(ctx, stdout, o)
	}
	return tunnelDemo(ctx, stdout, o)
}

type demoOptions struct {
	Count     int
	Namespace string        // the demo's namespace, or the prefix of its two
	Interval  time.Duration // between echo requests; 0 = 200 ms
	Duration  time.Duration // of the throughput measurement
	Modes     []tun.Mode    // the tunnels to show, in order; nil: TUN then TAP
}

// echoDemo makes a namespace with a TUN device in it, answers pings to the
// device's prefixes from user space, pings them, and removes everything.
func echoDemo(ctx context.Context, out io.Writer, o demoOptions) (err error) {
	if o.Interval == 0 {
		o.Interval = 200 * time.Millisecond
	}
	fmt.Fprintln(out, "tapwire demo: a TUN device whose pings are answered from user space")
	fmt.Fprintln(out)

	// 1. A network namespace of our own: nothing touches the host's network.
	if err := inns.Create(o.Namespace); err != nil {
		return fmt.Errorf("%w (the demo needs root: try sudo)", err)
	}
	defer func() {
		if derr := inns.Delete(o.Namespace); derr != nil && err == nil {
			err = derr
		}
		fmt.Fprintf(out, "\ncleaned up: device closed, namespace %s deleted\n", o.Namespace)
	}()
	fmt.Fprintf(out, "  namespace  %s (new, empty)\n", o.Namespace)

	// 2. A TUN device in it, with an IPv4 and an IPv6 prefix.
	dev, err := tun.Open(tun.Config{Name: "tapwire0", NetNS: o.Namespace})
	if err != nil {
		return err
	}
	defer dev.Close()
	nc, err := netconf.Open(o.Namespace)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, p := range []netip.Prefix{demoPrefix4, demoPrefix6} {
		if err := nc.AddAddr(dev.Name(), p, netconf.NoDAD()); err != nil {
			return err
		}
	}
	for _, link := range []string{"lo", dev.Name()} {
		if err := nc.SetUp(link); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "  device     %s (TUN) with %s and %s\n", dev.Name(), demoPrefix4, demoPrefix6)

	// 3. The responder: reads what the kernel routes into the device and
	// writes back an echo reply for every other address in the prefixes.
	r := &responder.Responder{Prefixes: []netip.Prefix{demoPrefix4, demoPrefix6}}
	served := make(chan error, 1)
	go func() { served <- r.Serve(dev, tun.ModeTUN) }()
	stopServing := sync.OnceFunc(func() {
		dev.Close() // unblocks Serve's read
		<-served
	})
	defer stopServing()
	fmt.Fprintf(out, "  responder  pid %d answers ping for every other address in those prefixes\n\n", os.Getpid())

	// 4. Ping two addresses behind the device, as a program inside the
	// namespace would.
	lost := 0
	for _, dst := range []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")} {
		n, err := pingFrom(ctx, out, o.Namespace, o, dst)
		if err != nil {
			return err
		}
		lost += o.Count - n
	}
	stopServing() // the responder's counters are its goroutine's until then
	fmt.Fprintf(out, "\nthe responder answered %d echo requests (IPv4 and IPv6) from user space\n", r.EchoReplies)
	if lost > 0 {
		return fmt.Errorf("%d echo requests were not answered", lost)
	}
	return nil
}

// pingFrom sends o.Count echo requests to dst from inside the namespace and
// prints a line per reply, as ping does. It returns the number of replies.
func pingFrom(ctx context.Context, out io.Writer, ns string, o demoOptions, dst netip.Addr) (int, error) {
	if o.Interval == 0 {
		o.Interval = 200 * time.Millisecond
	}
	network, proto := "ip4:icmp", 1
	var reqType, repType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, proto = "ip6:ipv6-icmp", 58
		reqType, repType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var conn *icmp.PacketConn
	err := inns.Do(ns, func() error {
		var err error
		conn, err = icmp.ListenPacket(network, "")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("open ICMP socket in %s: %w", ns, err)
	}
	defer conn.Close()

	fmt.Fprintf(out, "PING %s, %d requests\n", dst, o.Count)
	id := os.Getpid() & 0xffff
	payload := []byte(strings.Repeat("tapwire!", 7)) // 56 bytes, as ping sends
	buf := make([]byte, 1500)
	got := 0
	for seq := 1; seq <= o.Count; seq++ {
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		msg, _ := (&icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}).Marshal(nil)
		start := time.Now()
		if _, err := conn.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return got, fmt.Errorf("send echo request to %s: %w", dst, err)
		}
		// The first request may wait for a handshake: give it longer.
		deadline := start.Add(time.Second)
		if seq == 1 {
			deadline = start.Add(5 * time.Second)
		}
		conn.SetReadDeadline(deadline)
		answered := false
		for !answered {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return got, fmt.Errorf("read echo reply: %w", err)
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != repType {
				continue // our own request, or other ICMP
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
				answered = true
				got++
				fmt.Fprintf(out, "  %d bytes from %s: seq=%d time=%.3f ms\n",
					len(e.Data)+8, from, seq, float64(time.Since(start).Microseconds())/1000)
			}
		}
		if !answered {
			fmt.Fprintf(out, "  seq=%d: no reply within %v\n", seq, deadline.Sub(start))
		}
		if seq < o.Count {
			select {
			case <-time.After(time.Until(start.Add(o.Interval))):
			case <-ctx.Done():
			}
		}
	}
	fmt.Fprintf(out, "  %d sent, %d answered, %d lost\n", o.Count, got, o.Count-got)
	return got, nil
}
