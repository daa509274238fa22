// Command tapwire-go is tapwire's tunnel behind wireguard-go's command-line
// contract, so that tools written for wireguard-go drive it unchanged:
//
//	WG_QUICK_USERSPACE_IMPLEMENTATION=tapwire-go wg-quick up ./wg0.conf
//
// Usage: tapwire-go [-f|--foreground] [--metrics-address IP:PORT] [--log-format text|json] [--keep-privileges] INTERFACE
//
// It creates the TUN interface, serves the UAPI socket
// /var/run/wireguard/INTERFACE.sock for wg, and goes into the background
// once both are ready (unless -f or WG_PROCESS_FOREGROUND=1). It exits when
// the interface is deleted (as wg-quick down does) or on SIGINT/SIGTERM.
// --metrics-address (or TAPWIRE_METRICS_ADDRESS, which wg-quick passes on;
// the flag wins) serves Prometheus metrics at http://IP:PORT/metrics.
// LOG_LEVEL=verbose (or debug) logs handshakes, error logs errors only,
// silent logs nothing. The log is text (key=value) on stderr, or with
// LOG_FORMAT=json or --log-format json (the flag wins) one JSON object a
// line. No level logs a private or preshared key. TAPWIRE_WORKERS=N sets
// how many goroutines seal and open data messages, the two readers
// included (1: one goroutine per direction; default: one per CPU from 4
// CPUs, 1 below).
//
// Once the device, its UAPI socket (and the metrics port) exist, it drops
// every capability but CAP_NET_ADMIN (SO_MARK, the device) and
// CAP_NET_BIND_SERVICE (wg may set a ListenPort below 1024 later), on all
// its threads, and sets no_new_privs; it runs no program after start (wg-
// quick runs the hooks itself). --keep-privileges keeps root's.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/internal/daemon"
	"github.com/tapwire/tapwire/internal/logging"
	"github.com/tapwire/tapwire/internal/privdrop"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/tunnel"
	"github.com/tapwire/tapwire/uapi"
)

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [-f|--foreground] [--metrics-address IP:PORT] [--log-format text|json] [--keep-privileges] INTERFACE-NAME\n", os.Args[0])
}

// metricsEnv sets the metrics address when --metrics-address does not.
const metricsEnv = "TAPWIRE_METRICS_ADDRESS"

// options are tapwire-go's command line: wireguard-go's, the metrics
// address and the log's format.
type options struct {
	name          string
	foreground    bool
	help, version bool
	metrics       netip.AddrPort // zero: no metrics
	workers       int            // TAPWIRE_WORKERS: tunnel.Options.Workers (0: the default)
	logFormat     string         // logging.Text or logging.JSON
	keepPrivs     bool           // --keep-privileges: no drop after start
}

// parseArgs reads the command line (without the program's name), and the
// environment through getenv.
func parseArgs(args []string, getenv func(string) string) (options, error) {
	o := options{foreground: getenv("WG_PROCESS_FOREGROUND") == "1", logFormat: getenv("LOG_FORMAT")}
	if o.logFormat == "" {
		o.logFormat = logging.Text
	}
	metrics, from := getenv(metricsEnv), metricsEnv
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-f" || a == "--foreground":
			o.foreground = true
		case a == "-h" || a == "--help":
			o.help = true
		case a == "--version" || a == "-v":
			o.version = true
		case a == "--metrics-address":
			if i+1 == len(args) {
				return o, fmt.Errorf("%s needs an address, such as 127.0.0.1:9586", a)
			}
			i++
			metrics, from = args[i], a
		case strings.HasPrefix(a, "--metrics-address="):
			metrics, from = strings.TrimPrefix(a, "--metrics-address="), "--metrics-address"
		case a == "--keep-privileges":
			o.keepPrivs = true
		case a == "--log-format":
			if i+1 == len(args) {
				return o, fmt.Errorf("%s needs text or json", a)
			}
			i++
			o.logFormat = args[i]
		case strings.HasPrefix(a, "--log-format="):
			o.logFormat = strings.TrimPrefix(a, "--log-format=")
		case strings.HasPrefix(a, "-"):
			return o, fmt.Errorf("unknown option %s", a)
		case o.name != "":
			return o, fmt.Errorf("one interface name, not %s and %s", o.name, a)
		default:
			o.name = a
		}
	}
	if o.help || o.version {
		return o, nil
	}
	if o.name == "" {
		return o, errors.New("no interface name")
	}
	n, err := service.ParseWorkers(getenv(service.WorkersEnv))
	if err != nil {
		return o, err
	}
	o.workers = n
	if metrics != "" {
		ap, err := netip.ParseAddrPort(metrics)
		if err != nil || ap.Port() == 0 {
			return o, fmt.Errorf("%s %q: want an IP address and a TCP port, such as 127.0.0.1:9586 or [::1]:9586", from, metrics)
		}
		o.metrics = ap
	}
	return o, nil
}

func main() {
	o, err := parseArgs(os.Args[1:], os.Getenv)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "tapwire-go: %v\n", err)
		usage(os.Stderr)
		os.Exit(1)
	case o.help:
		usage(os.Stdout)
		return
	case o.version:
		fmt.Printf("tapwire-go %s (tapwire's WireGuard engine, wireguard-go command line)\n", buildVersion())
		return
	}
	log, err := logger(o.logFormat)
	if err != nil { // before anything: the background child would fail alike
		fmt.Fprintf(os.Stderr, "tapwire-go: %v\n", err)
		os.Exit(1)
	}
	child := daemon.TakeChild()
	if !o.foreground && child == nil && daemon.CanBackground() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		ctx, cancel := context.WithTimeoutCause(ctx, readyTimeout, fmt.Errorf("not ready after %v", readyTimeout))
		err := daemon.Background(ctx, "", stopTimeout)
		cancel()
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "tapwire-go: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o, log, child); err != nil {
		child.Ready(err)
		fmt.Fprintf(os.Stderr, "tapwire-go: %v\n", err)
		os.Exit(1)
	}
}

func logger(format string) (*slog.Logger, error) {
	level, w := slog.LevelInfo, io.Writer(os.Stderr)
	switch strings.ToLower(os.Getenv("LOG_LEVEL")) {
	case "verbose", "debug":
		level = slog.LevelDebug
	case "error":
		level = slog.LevelError
	case "silent":
		w = io.Discard
	}
	return logging.New(w, format, level)
}

// readyTimeout bounds the wait for the background process to be ready;
// stopTimeout how long it then has to stop when asked, before it is killed.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

func run(o options, log *slog.Logger, child *daemon.Child) error {
	slog.SetDefault(log) // for the few that log to the default (tun's offload warning)
	name := o.name
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := service.Start(service.Options{Name: name, Log: log, MetricsAddress: o.metrics, Engine: tunnel.Options{Workers: o.workers}})
	if err != nil {
		return err
	}
	defer s.Close()
	name = s.Device.Name() // the system's choice: macOS names a "utun" utunN
	// wg-quick on macOS asks for "utun" and learns the name the kernel
	// gave from the file WG_TUN_NAME_FILE names, as wireguard-go writes it.
	if f := os.Getenv("WG_TUN_NAME_FILE"); f != "" {
		if err := os.WriteFile(f, []byte(name), 0o400); err != nil {
			return fmt.Errorf("WG_TUN_NAME_FILE: %w", err)
		}
	}
	log.Info("interface up", "name", name, "uapi", uapi.SocketPath(name))
	dropPrivileges(o.keepPrivs, log)
	child.Ready(nil)
	s.Wait(ctx)
	return nil
}

// version is the package's version, stamped by dist/deb.sh with
// -ldflags "-X main.version=V"; empty in a plain go build.
var version string

// buildVersion is the stamped version, else the module's version as Go
// recorded it ("(devel)" for a build in a checkout), else "unknown".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// dropPrivileges drops to CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (see the
// package's comment) unless keep, and logs what the process kept.
func dropPrivileges(keep bool, log *slog.Logger) {
	if keep {
		log.Info("privileges kept", "why", "--keep-privileges")
		return
	}
	caps := []privdrop.Capability{privdrop.NetAdmin, privdrop.NetBindService}
	if err := privdrop.Drop(caps...); errors.Is(err, privdrop.ErrNotSupported) {
		log.Debug("privileges kept", "err", err)
		return
	} else if err != nil {
		log.Warn("privileges kept", "err", err)
		return
	}
	log.Info("privileges dropped", "kept", privdrop.Names(caps))
}
