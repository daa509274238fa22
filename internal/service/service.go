// Package service runs a tunnel interface the way both tapwire up and
// tapwire-go do: a TUN (or TAP) device, the engine on it, the UAPI socket
// through which wg configures and reads it, and, when asked, an HTTP
// listener serving the engine's metrics (package metrics).
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/tapwire/tapwire/metrics"
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
	stop   chan struct{} // closed when the UAPI asks the interface to go (uapi.WithStop)
	once   sync.Once
	log    *slog.Logger

	metricsLn  net.Listener // nil: no metrics
	metricsSrv *http.Server
	metricsEnd chan error // what the metrics server's Serve returned
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
	// MetricsAddress is where to serve the engine's metrics over HTTP
	// (/metrics, Prometheus text format; see package metrics), in the
	// namespace Start is called in; port 0 picks a free port (see
	// MetricsAddr). The zero AddrPort: no metrics.
	MetricsAddress netip.AddrPort
}

// Start opens the TUN device, starts the engine, serves the UAPI socket
// /var/run/wireguard/NAME.sock, and the metrics at Options.MetricsAddress
// if set. The metrics address is bound first, so that an address in use
// fails Start before any device exists. On error nothing is left behind.
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
	var ln net.Listener
	if o.MetricsAddress.IsValid() {
		var err error
		if ln, err = net.Listen("tcp", o.MetricsAddress.String()); err != nil {
			return nil, fmt.Errorf("metrics address of %s: %w", o.Name, err)
		}
	}
	closeLn := func() {
		if ln != nil {
			ln.Close()
		}
	}
	dev, err := tun.Open(tun.Config{Name: o.Name, Mode: o.Mode, MTU: o.MTU})
	if err != nil {
		closeLn()
		return nil, err
	}
	eo := o.Engine
	eo.Log, eo.Timers = o.Log, o.Timers
	eng, err := tunnel.New(dev, eo)
	if err != nil {
		closeLn()
		dev.Close()
		return nil, err
	}
	s := &Service{Device: eng, served: make(chan error, 1), stop: make(chan struct{}), log: o.Log}
	srv, err := uapi.Listen(dev.Name(), uapi.WithLogger(o.Log), uapi.WithStop(func() { s.once.Do(func() { close(s.stop) }) }))
	if err != nil {
		closeLn()
		eng.Close()
		return nil, fmt.Errorf("UAPI socket for %s: %w", dev.Name(), err)
	}
	s.uapi = srv
	go func() { s.served <- srv.Serve(eng) }()
	if ln != nil {
		s.serveMetrics(ln)
	}
	return s, nil
}

// serveMetrics serves the engine's metrics on ln until Close.
func (s *Service) serveMetrics(ln net.Listener) {
	log := s.log.With("metrics", ln.Addr().String())
	s.metricsLn, s.metricsEnd = ln, make(chan error, 1)
	s.metricsSrv = &http.Server{
		Handler:           metrics.Handler(metrics.NewRegistry(s.Device), log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { s.metricsEnd <- s.metricsSrv.Serve(ln) }()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
}

// MetricsAddr returns the address the metrics are served at (the port
// picked when Options.MetricsAddress had port 0), or nil if they are not.
func (s *Service) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Wait blocks until ctx ends, the interface disappears (ip link del), its
// UAPI socket file is deleted (which stops wireguard-go too), or a client
// of the UAPI socket asks it to stop (uapi.RequestStop: tapwire down on
// Windows).
func (s *Service) Wait(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			s.log.Info("asked over the UAPI socket to stop, exiting")
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

// Close stops serving the metrics (scrapes under way get a few seconds to
// finish) and the UAPI, then the engine, which deletes the device.
func (s *Service) Close() {
	if s.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := s.metricsSrv.Shutdown(ctx); err != nil {
			s.metricsSrv.Close()
		}
		cancel()
		if err := <-s.metricsEnd; err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("metrics server", "err", err)
		}
	}
	s.uapi.Close()
	<-s.served
	s.Device.Close()
}

// WorkersEnv is the environment variable that sets the engine's workers
// (tunnel.Options.Workers) for tapwire up and tapwire-go.
const WorkersEnv = "TAPWIRE_WORKERS"

// ParseWorkers reads WorkersEnv's value: "" or "0" for the engine's
// default, 1 for the readers alone, up to 1024.
func ParseWorkers(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1024 {
		return 0, fmt.Errorf("%s %q: want a number of workers from 0 (the default) to 1024", WorkersEnv, v)
	}
	return n, nil
}
