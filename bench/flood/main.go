//go:build linux

// Command flood sends hostile traffic at a WireGuard (or tapwire) UDP port,
// for bench/flood/flood.sh and by hand: a load generator, not a product
// command. It is bounded always: by a count and a duration (both capped).
//
// Kinds (-kind):
//
//	initiation  handshake initiations with a valid mac1 for -pub, from a stranger's key
//	garbage     random bytes; every other message with a valid header of some type
//	truncated   initiations, responses, cookie replies and transport headers cut short
//	transport   synthesized transport data: random receiver index, counter, ciphertext
//	replay      transport data captured on the wire (-capture NETNS:IFACE), sent again
//
// A pool of distinct messages (-pool) is made before the clock starts and
// sent in turn, so the flood does not wait on Curve25519; messages leave in
// sendmmsg batches (-batch) at -rate a second, from -sources sockets (one
// source port each, a batch each in turn). At the end a JSON summary goes
// to stdout: messages sent, the rate reached, the replies that came back.
//
// Example, from an attacker namespace at a responder in another:
//
//	ip netns exec attacker flood -to 192.0.2.1:51820 -pub "$(wg show wg0 public-key)" \
//	    -rate 50000 -duration 10s -sources 16
//	ip netns exec attacker flood -to 192.0.2.1:51820 -kind replay \
//	    -capture server:veth0 -rate 50000 -duration 10s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/protocol"
)

// Bounds of the flags: a flood always ends.
const (
	maxDuration = 10 * time.Minute
	maxRate     = 2_000_000
	maxCount    = 1 << 30
	maxSources  = 1024
	maxPool     = 1 << 16
	maxBatch    = 1024
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line (exit status 2).
type usageError struct{ error }

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	to := fs.String("to", "", "target `HOST:PORT` (an IP address)")
	kindName := fs.String("kind", string(Initiation), "what to send: "+fmt.Sprint(kinds()))
	pubKey := fs.String("pub", "", "the responder's public `KEY` (base64; initiation and truncated)")
	rate := fs.Float64("rate", 20000, "messages per second")
	duration := fs.Duration("duration", 10*time.Second, "stop after this long (at most "+maxDuration.String()+")")
	count := fs.Uint64("count", 0, "stop after this many messages (default rate × duration)")
	sources := fs.Int("sources", 1, "source sockets (ports) to send from, a batch each in turn")
	poolSize := fs.Int("pool", 4096, "distinct messages made beforehand and sent in turn")
	batch := fs.Int("batch", 64, "messages per sendmmsg")
	bind := fs.String("bind", "", "local `ADDRESS` to send from (default: the route's)")
	captureAt := fs.String("capture", "", "replay: `NETNS:IFACE` to capture transport data to the target port on (NETNS empty: this namespace)")
	captureTimeout := fs.Duration("capture-timeout", 10*time.Second, "replay: give up capturing after this long")
	quiet := fs.Bool("q", false, "log nothing but errors")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: flood -to HOST:PORT [-kind KIND] [-pub KEY] [-rate N] [-duration D] [-count N] [-sources N] ...\n\n"+
			"Sends a bounded flood of hostile messages at a WireGuard UDP port and prints a JSON summary.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	kind, err := parseKind(*kindName)
	if err != nil {
		return usageError{err}
	}
	target, err := netip.ParseAddrPort(*to)
	if err != nil {
		return usageError{fmt.Errorf("-to: %w", err)}
	}
	p := plan{to: target, rate: *rate, count: *count, duration: *duration, sources: *sources, batch: *batch}
	switch {
	case !(p.rate > 0 && p.rate <= maxRate):
		return usageError{fmt.Errorf("-rate must be in (0, %d]", maxRate)}
	case p.duration <= 0 || p.duration > maxDuration:
		return usageError{fmt.Errorf("-duration must be in (0, %v]", maxDuration)}
	case p.count > maxCount:
		return usageError{fmt.Errorf("-count is capped at %d", maxCount)}
	case p.sources < 1 || p.sources > maxSources:
		return usageError{fmt.Errorf("-sources must be in [1, %d]", maxSources)}
	case *poolSize < 1 || *poolSize > maxPool:
		return usageError{fmt.Errorf("-pool must be in [1, %d]", maxPool)}
	case p.batch < 1 || p.batch > maxBatch:
		return usageError{fmt.Errorf("-batch must be in [1, %d]", maxBatch)}
	}
	if p.count == 0 {
		p.count = uint64(math.Ceil(p.rate * p.duration.Seconds()))
	}
	if *bind != "" {
		if p.bind, err = netip.ParseAddr(*bind); err != nil {
			return usageError{fmt.Errorf("-bind: %w", err)}
		}
	}
	var pub protocol.Key
	if kind == Initiation || kind == Truncated {
		if *pubKey == "" {
			return usageError{fmt.Errorf("-kind %s needs -pub", kind)}
		}
		if pub, err = protocol.ParseKey(strings.TrimSpace(*pubKey)); err != nil {
			return usageError{fmt.Errorf("-pub: %w", err)}
		}
	}

	captured := 0
	if kind == Replay {
		ns, iface, ok := strings.Cut(*captureAt, ":")
		if !ok || iface == "" {
			return usageError{errors.New("-kind replay needs -capture NETNS:IFACE")}
		}
		log.Info("capturing transport data", "netns", ns, "iface", iface, "port", target.Port(), "want", *poolSize)
		p.msgs, err = capture(ctx, ns, iface, target.Port(), *poolSize, *captureTimeout)
		if err != nil {
			return err
		}
		captured = len(p.msgs)
	} else {
		t0 := time.Now()
		if p.msgs, err = pool(kind, pub, *poolSize); err != nil {
			return err
		}
		log.Info("pool made", "kind", kind, "messages", len(p.msgs), "took", time.Since(t0).Round(time.Millisecond))
	}
	log.Info("flooding", "kind", kind, "to", target, "rate", p.rate, "count", p.count, "duration", p.duration, "sources", p.sources)
	res, err := flood(ctx, p)
	if err != nil {
		return err
	}
	res.Kind, res.Captured = kind, captured
	log.Info("done", "sent", res.Sent, "failed", res.Failed, "seconds", strconv.FormatFloat(res.Seconds, 'f', 2, 64),
		"rate", int(res.AchievedRate), "cookie_replies", res.CookieReply)
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	return nil
}
