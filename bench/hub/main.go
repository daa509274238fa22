//go:build linux

// Command hub brings up many real WireGuard sessions against one hub on
// loopback, for bench/hub/hub.sh and by hand: a load generator, not a
// product command. Every client has its own key (derived from a seed, so
// that the hub's configuration is made by the same tool), its own source
// address in 127.0.0.0/8, and does what a WireGuard peer does: a
// Noise_IKpsk2 handshake with mac1 (and mac2 once the hub sent it a
// cookie), WireGuard's retries (RekeyTimeout plus jitter, given up after
// RekeyAttemptTime), then one ICMP echo request through the tunnel and a
// keepalive when the hub's reply comes back.
//
// Subcommands:
//
//	hub conf -n N -seed S [-port P] [-hub-key PUB] [-net4 P] [-net6 P] [-o FILE]
//	    a `wg setconf` file for the hub: its private key (from the seed,
//	    unless -hub-key names one the hub has already) and N peers, each
//	    with one /32 and one /128
//	hub key -seed S [-pub]
//	    the hub's private (or public) key derived from the seed
//	hub run -n N -seed S [-to 127.0.0.1:51820] [-rate R | -herd] [-timeout D] ...
//	    N clients handshake with the hub (at R initiations a second, or all
//	    at once with -herd, as after a hub restart) and send a little data;
//	    a JSON report goes to stdout
//
// Example, in a namespace with the hub's interface hub0 listening on
// 127.0.0.1:51820 and carrying 10.96.0.1/11:
//
//	hub conf -n 1000 -seed bench >hub.conf && wg setconf hub0 hub.conf
//	hub run -n 1000 -seed bench -rate 1000
//	hub run -n 1000 -seed bench -herd
//
// The clients share one UDP socket bound to the wildcard address and send
// each datagram from the client's own 127.x.y.z address (IP_PKTINFO), so
// the hub sees N endpoints and N sources, as it would N hosts, for one file
// descriptor. Everything is bounded: the count (at most 1,048,575 clients),
// the initiation rate, and -timeout.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line (exit status 2).
type usageError struct{ error }

const usage = `usage: hub conf|key|run [flags]   (hub SUBCOMMAND -h for its flags)

  conf  print a wg setconf file for the hub: its key and N peers (one /32 and one /128 each)
  key   print the hub's private key (or -pub: its public key) derived from -seed
  run   N clients handshake with the hub, send a little data, and report as JSON`

// dispatch runs the subcommand named by args[0].
func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New(usage)}
	}
	switch args[0] {
	case "conf":
		return confCmd(os.Stdout, args[1:])
	case "key":
		return keyCmd(os.Stdout, args[1:])
	case "run":
		return runCmd(ctx, os.Stdout, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown subcommand %q\n%s", args[0], usage)}
}
