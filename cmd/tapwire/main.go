// Command tapwire is the tapwire command-line tool.
//
//	tapwire demo        an encrypted tunnel between two throw-away namespaces
//	tapwire device      add, delete, list and show TUN/TAP devices
//	tapwire doctor      diagnose TUN/TAP on this host
//	tapwire capture     capture packets crossing a TUN/TAP device
//	tapwire up|down     run a WireGuard (TUN) or Ethernet (TAP) tunnel from a wg-quick file
//	tapwire status      show tunnels: mode, peers, MAC table, drops
//	tapwire version     print the version, VCS revision and Go version of the build
//	tapwire help [CMD]  show help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// command is one subcommand of tapwire.
type command struct {
	name, summary string
	run           func(ctx context.Context, stdout, stderr io.Writer, args []string) error
}

func commands() []command {
	return []command{
		{"demo", "run an encrypted tunnel between two throw-away namespaces, ping it and measure it", runDemo},
		{"device", "add, delete, list and show TUN/TAP devices (like ip tuntap)", runDevice},
		{"doctor", "say why TUN/TAP does not work on this host, and how to fix it", runDoctor},
		{"capture", "capture the packets crossing a TUN/TAP device to pcapng, or print them", runCapture},
		{"up", "bring up a WireGuard interface from a wg-quick file", runUp},
		{"down", "take down an interface brought up by tapwire up", runDown},
		{"status", "show interfaces as wg show does, plus mode, MAC table and drops", runStatus},
		{"genkey", "print a new private key (as wg genkey)", runGenkey},
		{"pubkey", "print the public key of the private key on stdin", runPubkey},
		{"genpsk", "print a new preshared key", runGenpsk},
		{"version", "print the version, VCS revision and Go version of the build", runVersion},
	}
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit status: 0 success,
// 1 failure, 2 bad usage.
func run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return run(ctx, stdout, stderr, []string{args[1], "-h"})
		}
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, stdout, stderr, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "tapwire %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "tapwire %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tapwire: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tapwire: TUN/TAP devices and tunnels")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: tapwire COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tapwire help COMMAND' for a command's flags.")
}

// newFlags returns a flag set that prints its usage to stderr and returns
// errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tapwire "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tapwire %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
		if ex := examples(name); ex != "" {
			fmt.Fprintf(stderr, "\n%s", ex)
		}
	}
	return fs
}

// examples returns the text shown under the flags of a command's help.
func examples(name string) string {
	switch name {
	case "demo":
		return `Builds two network namespaces joined by a veth, runs encrypted tapwire
tunnels between them (WireGuard over TUN, then Ethernet frames over TAP),
shows the handshake, a ping, the MAC table and a throughput figure, and
removes everything. Needs root.

Examples:
  sudo tapwire demo               # both tunnels
  sudo tapwire demo -mode tap     # only the Ethernet (TAP) tunnel
  sudo tapwire demo -seconds 10   # measure longer
  sudo tapwire demo -echo         # just a TUN device answering ping from user space
`
	case "up":
		return `Reads a wg-quick file (the interface is named after it: wg0.conf -> wg0),
creates the device, its addresses and routes, runs the hooks, and goes into
the background. A bad file is refused with its file, line and key before
anything is created. wg show/set work on the interface as on wireguard-go.

With Mode = tap in [Interface] the interface is a TAP device carrying
Ethernet frames: no routes from AllowedIPs; Bridge = br0 attaches it to a
Linux bridge (created if missing; Address then goes on the bridge);
ClampMSS, MACAgeing, MaxMACsPerPeer and, per peer, AllowedMACs tune it.

Examples:
  sudo tapwire up /etc/wireguard/wg0.conf
  sudo tapwire up -f ./wg1.conf        # stay in the foreground, log to stderr
  sudo tapwire up /etc/tapwire/lan0.conf   # Mode = tap, Bridge = br0
`
	case "down":
		return `Stops what tapwire up started (running PreDown/PostDown), or deletes the
interface of another WireGuard implementation.

Examples:
  sudo tapwire down wg0
  sudo tapwire down /etc/wireguard/wg0.conf
`
	case "status":
		return `Shows each tapwire interface (all of them, or those named) as wg show
does, plus its mode (tun or tap), peers running the other mode, the MAC
table of a TAP interface, and the non-zero drop counters.

Examples:
  sudo tapwire status
  sudo tapwire status lan0
  sudo tapwire status --json lan0
`
	case "version":
		return `Prints the version of the tapwire module, the VCS revision it was built
from, the revision's time and whether the tree had changes, and the Go
version: what go version -m shows of the binary. A build that recorded no
VCS information (go run, go test, -buildvcs=false) says unknown.
`
	case "genkey":
		return `Examples:
  tapwire genkey > wg0.key
  tapwire genkey | tee wg0.key | tapwire pubkey > wg0.pub
`
	case "pubkey":
		return `Examples:
  tapwire pubkey < wg0.key
`
	case "genpsk":
		return `Examples:
  tapwire genpsk > peer.psk
`
	}
	return ""
}

// parse parses args, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func runVersion(_ context.Context, stdout, stderr io.Writer, args []string) error {
	if err := parse(newFlags("version", "", stderr), args); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	fmt.Fprint(stdout, versionText(bi))
	return nil
}

// versionText describes the build recorded in bi (nil: none), with the
// values go version -m shows: the main module's path and version, the VCS
// revision, its time and whether the tree was modified, and the Go version.
// What is not recorded is "unknown": go run and go test, and builds with
// -buildvcs=false, record no VCS information.
func versionText(bi *debug.BuildInfo) string {
	const unknown = "unknown"
	version, module, goVersion := unknown, unknown, runtime.Version()
	vcs := map[string]string{"vcs.revision": unknown, "vcs.time": unknown, "vcs.modified": unknown}
	recorded := false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			if _, ok := vcs[s.Key]; ok && s.Value != "" {
				vcs[s.Key] = s.Value
				recorded = true
			}
		}
	}
	revision := vcs["vcs.revision"]
	if !recorded {
		revision += " (no VCS information: go run, go test and -buildvcs=false record none)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tapwire %s\n", version)
	for _, l := range [][2]string{
		{"module", module},
		{"revision", revision},
		{"time", vcs["vcs.time"]},
		{"modified", vcs["vcs.modified"]},
		{"go", goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH},
	} {
		fmt.Fprintf(&b, "  %-9s %s\n", l[0], l[1])
	}
	return b.String()
}
