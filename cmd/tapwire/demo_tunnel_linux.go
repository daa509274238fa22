package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/inns"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/tunnel"
)

// demoSide is one of the tunnel demo's two hosts, with one tunnel.
type demoSide struct {
	ns      string
	under   netip.Prefix // on the veth
	inner   netip.Prefix // on the tunnel
	port    uint16
	key     protocol.Key
	dev     *tunnel.Device
	devName string
	mode    tun.Mode
}

// tunnelDemo builds two namespaces joined by a veth, runs an encrypted
// tapwire tunnel between them (WireGuard over TUN, then Ethernet over TAP,
// or the one o.Modes asks for), and shows the handshake, a ping and a short
// throughput figure, then removes everything.
func tunnelDemo(ctx context.Context, out io.Writer, o demoOptions) (err error) {
	if len(o.Modes) == 0 {
		o.Modes = []tun.Mode{tun.ModeTUN, tun.ModeTAP}
	}
	fmt.Fprintln(out, "tapwire demo: encrypted tunnels between two network namespaces")
	fmt.Fprintln(out)
	a := &demoSide{ns: o.Namespace + "-a", under: netip.MustParsePrefix("192.0.2.1/24")}
	b := &demoSide{ns: o.Namespace + "-b", under: netip.MustParsePrefix("192.0.2.2/24")}

	// 1. Two hosts: namespaces joined by a veth, the "wire".
	for _, s := range []*demoSide{a, b} {
		if err := inns.Create(s.ns); err != nil {
			return fmt.Errorf("%w (the demo needs root: try sudo)", err)
		}
		defer func(ns string) {
			if derr := inns.Delete(ns); derr != nil && err == nil {
				err = derr
			}
		}(s.ns)
	}
	defer fmt.Fprintf(out, "\ncleaned up: tunnels closed, namespaces %s and %s deleted\n", a.ns, b.ns)
	nca, err := netconf.Open(a.ns)
	if err != nil {
		return err
	}
	defer nca.Close()
	if err := nca.AddVeth("wire0", "wire0", b.ns); err != nil {
		return err
	}
	fmt.Fprintf(out, "  hosts      %s and %s, joined by a veth: %s <-> %s\n", a.ns, b.ns, a.under.Addr(), b.under.Addr())
	for _, s := range []*demoSide{a, b} {
		if err := s.wire(); err != nil {
			return err
		}
	}
	for i, mode := range o.Modes {
		a.mode, b.mode = mode, mode
		a.port, b.port = 51820+uint16(i), 51820+uint16(i)
		if mode == tun.ModeTAP {
			a.devName, b.devName = "tapwire-tap", "tapwire-tap"
			a.inner, b.inner = netip.MustParsePrefix("203.0.113.1/24"), netip.MustParsePrefix("203.0.113.2/24")
		} else {
			a.devName, b.devName = "tapwire0", "tapwire0"
			a.inner, b.inner = netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.2/24")
		}
		if err := demoLeg(ctx, out, o, a, b); err != nil {
			return err
		}
	}
	return nil
}

// demoLeg runs one tunnel between a and b (in a.mode) and shows it working.
func demoLeg(ctx context.Context, out io.Writer, o demoOptions, a, b *demoSide) error {
	if a.mode == tun.ModeTAP {
		fmt.Fprintln(out, "\nTAP mode: Ethernet frames through the same encryption, one layer-2 segment")
	} else {
		fmt.Fprintln(out, "\nTUN mode: WireGuard, IP packets (wg and wireguard-go peers work with it)")
	}
	// 2. A tapwire interface on each, with its own key.
	for _, s := range []*demoSide{a, b} {
		if err := s.start(); err != nil {
			return err
		}
		defer s.dev.Close()
	}
	for _, pair := range [][2]*demoSide{{a, b}, {b, a}} {
		if err := pair[0].addPeer(pair[1]); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "  tunnel     %s %s (key %s...) <-> %s %s (key %s...), UDP port %d\n",
		a.devName, a.inner, a.key.PublicKey().String()[:8], b.devName, b.inner, b.key.PublicKey().String()[:8], a.port)

	// 3. The first packet starts the handshake; ping shows the tunnel up.
	n, err := pingFrom(ctx, out, a.ns, o, b.inner.Addr())
	if err != nil {
		return err
	}
	st := a.dev.Status().Peers[0]
	if st.LastHandshake.IsZero() {
		return errors.New("no handshake: the tunnel did not come up")
	}
	fmt.Fprintf(out, "  handshake  completed %s ago (Noise_IKpsk2, Curve25519, ChaCha20-Poly1305); endpoint %s\n",
		time.Since(st.LastHandshake).Round(time.Millisecond), st.Endpoint)
	if n < o.Count {
		return fmt.Errorf("%d of %d echo requests were not answered", o.Count-n, o.Count)
	}
	if a.mode == tun.ModeTAP {
		// ARP found the other end's MAC through the tunnel, and the
		// switch learned where each MAC is.
		in := a.dev.Info().(tunnel.Info)
		fmt.Fprintf(out, "  switch     %s learned %d MACs:", a.devName, len(in.MACs))
		for _, m := range in.MACs {
			where := "here"
			if m.Peer != "" {
				where = "behind peer " + m.Peer[:8] + "..."
			}
			fmt.Fprintf(out, " %s (%s)", m.MAC, where)
		}
		fmt.Fprintln(out)
	}

	// 4. Bulk data through the tunnel, with live progress.
	if o.Duration > 0 {
		fmt.Fprintf(out, "\nTCP %s -> %s through the tunnel for %v:\n", a.inner.Addr(), b.inner.Addr(), o.Duration)
		if err := demoThroughput(ctx, out, a, b, o.Duration); err != nil {
			return err
		}
	}
	st = a.dev.Status().Peers[0]
	fmt.Fprintf(out, "\n  counters   %s sent %s and received %s over the wire (encrypted)\n", a.devName, bytesString(st.TxBytes), bytesString(st.RxBytes))
	return nil
}

// wire brings up the host's loopback and veth, with its address.
func (s *demoSide) wire() error {
	nc, err := netconf.Open(s.ns)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, l := range []string{"lo", "wire0"} {
		if err := nc.SetUp(l); err != nil {
			return err
		}
	}
	return nc.AddAddr("wire0", s.under)
}

// start opens the host's tunnel interface with a new key.
func (s *demoSide) start() error {
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		return err
	}
	s.key = k
	nc, err := netconf.Open(s.ns)
	if err != nil {
		return err
	}
	defer nc.Close()
	mtu := service.DefaultMTU
	if s.mode == tun.ModeTAP {
		mtu = service.DefaultTAPMTU
	}
	dev, err := tun.Open(tun.Config{Name: s.devName, Mode: s.mode, NetNS: s.ns, MTU: mtu})
	if err != nil {
		return err
	}
	s.dev, err = tunnel.New(dev, tunnel.Options{NetNS: s.ns, ClampMSS: s.mode == tun.ModeTAP,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		dev.Close()
		return err
	}
	if err := s.dev.Apply(devconf.DeviceConfig{PrivateKey: &k, ListenPort: &s.port}); err != nil {
		return err
	}
	if err := nc.AddAddr(s.devName, s.inner); err != nil {
		return err
	}
	return nc.SetUp(s.devName)
}

func (s *demoSide) addPeer(o *demoSide) error {
	ep := netip.AddrPortFrom(o.under.Addr(), o.port)
	pc := devconf.PeerConfig{PublicKey: o.key.PublicKey(), Endpoint: &ep}
	if s.mode == tun.ModeTUN {
		pc.AllowedIPs = []netip.Prefix{netip.PrefixFrom(o.inner.Addr(), 32)} // TAP switches by MAC
	}
	return s.dev.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{pc}})
}

// demoThroughput sends data over TCP from a to b for d and prints the rate
// every half second.
func demoThroughput(ctx context.Context, out io.Writer, a, b *demoSide, d time.Duration) error {
	var ln net.Listener
	if err := inns.Do(b.ns, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(b.inner.Addr(), 5201).String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- 0
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		received <- n
	}()
	var c net.Conn
	if err := inns.Do(a.ns, func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		return err
	}
	buf := make([]byte, 128<<10)
	rand.Read(buf)
	start := time.Now()
	var sent, lastSent int64
	last := start
	for time.Since(start) < d && ctx.Err() == nil {
		c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.Close()
			return err
		}
		if now := time.Now(); now.Sub(last) >= 500*time.Millisecond {
			fmt.Fprintf(out, "  %4.1fs  %8.0f Mbit/s\n", now.Sub(start).Seconds(), float64(sent-lastSent)*8/now.Sub(last).Seconds()/1e6)
			last, lastSent = now, sent
		}
	}
	c.Close()
	got := <-received
	el := time.Since(start)
	fmt.Fprintf(out, "  total: %s in %.1fs = %.0f Mbit/s, all of it received\n", bytesString(uint64(got)), el.Seconds(), float64(got)*8/el.Seconds()/1e6)
	if got != sent {
		return fmt.Errorf("sent %d bytes, received %d", sent, got)
	}
	return nil
}
