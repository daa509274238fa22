// Command tapwire-go is tapwire's tunnel behind wireguard-go's command-line
// contract, so that tools written for wireguard-go drive it unchanged:
//
//	WG_QUICK_USERSPACE_IMPLEMENTATION=tapwire-go wg-quick up ./wg0.conf
//
// Usage: tapwire-go [-f|--foreground] INTERFACE
//
// It creates the TUN interface, serves the UAPI socket
// /var/run/wireguard/INTERFACE.sock for wg, and goes into the background
// once both are ready (unless -f or WG_PROCESS_FOREGROUND=1). It exits when
// the interface is deleted (as wg-quick down does) or on SIGINT/SIGTERM.
// LOG_LEVEL=verbose (or debug) logs handshakes, error logs errors only,
// silent logs nothing.
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
	"github.com/tapwire/tapwire/internal/service"
)

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [-f|--foreground] INTERFACE-NAME\n", os.Args[0])
}

func main() {
	foreground := os.Getenv("WG_PROCESS_FOREGROUND") == "1"
	var name string
	for _, a := range os.Args[1:] {
		switch a {
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
	if err := run(name, child); err != nil {
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

func logger() *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("LOG_LEVEL")) {
	case "verbose", "debug":
		level = slog.LevelDebug
	case "error":
		level = slog.LevelError
	case "silent":
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// readyTimeout bounds the wait for the background process to be ready;
// stopTimeout how long it then has to stop when asked, before it is killed.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

func run(name string, child *daemon.Child) error {
	log := logger()
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
