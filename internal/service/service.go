// Package service runs a tunnel interface the way both tapwire up and
// tapwire-go do: a TUN (or TAP) device, the engine on it, and the UAPI
// socket through which wg configures and reads it.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/tunnel"
	"github.com/tapwire/tapwire/uapi"
)

// DefaultMTU is wireguard-go's default MTU: 1500 less the largest overhead
// of WireGuard over IPv6 (40 + 8 + 32).
const DefaultMTU = 1420

// DefaultTAPMTU is the default MTU of a TAP interface: Ethernet's, so that
// a bridge with 1500-byte LAN ports keeps 1500 and full-size frames (1514
// bytes, 1518 with an 802.1Q tag) cross. A frame too big for one datagram
// on the path to a peer travels in fragments (see package fragment), and
// the MSS clamp keeps bulk TCP out of them.
const DefaultTAPMTU = 1500

// Service is a running interface.
type Service struct {
	Device *tunnel.Device
	uapi   *uapi.Server
	served chan error
	log    *slog.Logger
}

// Options configure Start.
type Options struct {
	Name   string // interface name
	MTU    int    // 0: DefaultMTU, or DefaultTAPMTU for a TAP device
	Log    *slog.Logger
	Timers tunnel.Timers // zero: the whitepaper's
	// Mode is ModeTUN (IP packets, WireGuard) or ModeTAP (Ethernet frames).
	Mode tun.Mode
	// Engine options for TAP mode and MSS clamping (Log and Timers above
	// win over Engine's).
	Engine tunnel.Options
}

// Start opens the TUN device, starts the engine and serves the UAPI socket
// /var/run/wireguard/NAME.sock. On error nothing is left behind.
func Start(o Options) (*Service, error) {
	if o.MTU == 0 {
		o.MTU = DefaultMTU
		if o.Mode == tun.ModeTAP {
			o.MTU = DefaultTAPMTU
		}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	dev, err := tun.Open(tun.Config{Name: o.Name, Mode: o.Mode, MTU: o.MTU})
	if err != nil {
		return nil, err
	}
	eo := o.Engine
	eo.Log, eo.Timers = o.Log, o.Timers
	eng, err := tunnel.New(dev, eo)
	if err != nil {
		dev.Close()
		return nil, err
	}
	srv, err := uapi.Listen(dev.Name(), uapi.WithLogger(o.Log))
	if err != nil {
		eng.Close()
		return nil, fmt.Errorf("UAPI socket for %s: %w", dev.Name(), err)
	}
	s := &Service{Device: eng, uapi: srv, served: make(chan error, 1), log: o.Log}
	go func() { s.served <- srv.Serve(eng) }()
	return s, nil
}

// Wait blocks until ctx ends, the interface disappears (ip link del), or
// its UAPI socket file is deleted (which stops wireguard-go too).
func (s *Service) Wait(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Device.Done():
			s.log.Info("interface removed, exiting")
			return
		case <-tick.C:
			// The socket's identity was taken when it was made, so a
			// removal before Wait started counts too.
			if s.uapi.SocketGone() {
				s.log.Info("UAPI socket removed, exiting", "path", s.uapi.Path())
				return
			}
		}
	}
}

// Close stops serving the UAPI, then the engine, which deletes the device.
func (s *Service) Close() {
	s.uapi.Close()
	<-s.served
	s.Device.Close()
}
