// Command tapwire-go is tapwire's tunnel behind wireguard-go's command-line
// contract, so that tools written for wireguard-go drive it unchanged:
//
//	WG_QUICK_USERSPACE_IMPLEMENTATION=tapwire-go wg-quick up ./wg0.conf
//
// Usage: tapwire-go [-f|--foreground] [--log-format text|json] INTERFACE
//
// It creates the TUN interface, serves the UAPI socket
// /var/run/wireguard/INTERFACE.sock for wg, and goes into the background
// once both are ready (unless -f or WG_PROCESS_FOREGROUND=1). It exits when
// the interface is deleted (as wg-quick down does) or on SIGINT/SIGTERM.
// LOG_LEVEL=verbose (or debug) logs handshakes, error logs errors only,
// silent logs nothing. The log is text (key=value) on stderr, or with
// LOG_FORMAT=json or --log-format json (the flag wins) one JSON object a
// line. No level logs a private or preshared key.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/internal/daemon"
	"github.com/tapwire/tapwire/internal/logging"
	"github.com/tapwire/tapwire/internal/service"
)

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [-f|--foreground] [--log-format text|json] INTERFACE-NAME\n", os.Args[0])
}

func main() {
	foreground := os.Getenv("WG_PROCESS_FOREGROUND") == "1"
	var name string
	logFormat := os.Getenv("LOG_FORMAT")
	if logFormat == "" {
		logFormat = logging.Text
	}
	for i := 1; i < len(os.Args); i++ {
		a := os.Args[i]
		if v, ok := strings.CutPrefix(a, "--log-format="); ok {
			logFormat = v
			continue
		}
		switch a {
		case "--log-format":
			if i++; i == len(os.Args) {
				usage(os.Stderr)
				os.Exit(1)
			}
			logFormat = os.Args[i]
		case "-f", "--foreground":
			foreground = true
		case "-h", "--help":
			usage(os.Stdout)
			return
		case "--version", "-v":
			fmt.Printf("tapwire-go %s (tapwire's WireGuard engine, wireguard-go command line)\n", buildVersion())
			return
		default:
			if strings.HasPrefix(a, "-") || name != "" {
				usage(os.Stderr)
				os.Exit(1)
			}
			name = a
		}
	}
	if name == "" {
		usage(os.Stderr)
		os.Exit(1)
	}
	log, err := logger(logFormat)
	if err != nil { // before anything: the background child would fail alike
		fmt.Fprintf(os.Stderr, "tapwire-go: %v\n", err)
		os.Exit(1)
	}
	child := daemon.TakeChild()
	if !foreground && child == nil {
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
	if err := run(name, log, child); err != nil {
		child.Ready(err)
		fmt.Fprintf(os.Stderr, "tapwire-go: %v\n", err)
		os.Exit(1)
	}
}

// version is the version a packager stamps in at link time, as
// dist/deb.sh does (-ldflags "-X main.version=1.2.3"); set by the linker
// only, never assigned. Empty: the module version Go recorded.
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

// logger is the log on stderr in format (text or json), at the level
// LOG_LEVEL names as wireguard-go's does: verbose (or debug), error,
// silent; anything else is info.
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

func run(name string, log *slog.Logger, child *daemon.Child) error {
	slog.SetDefault(log) // for the few that log to the default (tun's offload warning)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := service.Start(service.Options{Name: name, Log: log})
	if err != nil {
		return err
	}
	defer s.Close()
	log.Info("interface up", "name", name, "uapi", "/var/run/wireguard/"+name+".sock")
	child.Ready(nil)
	s.Wait(ctx)
	return nil
}
