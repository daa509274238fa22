//go:build linux

package main

import (
	"bufio"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/tapwire/tapwire/protocol"
)

// maxClients bounds N: a client's number takes the low 20 bits of its
// handshake indices (see index).
const maxClients = 1<<20 - 1

// Defaults of the addressing flags.
const (
	defaultNet4   = "10.96.0.0/11" // inner IPv4: the hub .1, clients from .2
	defaultNet6   = "fd00:7a9::/64"
	defaultSource = "127.16.0.0" // the first client's /24 of source addresses
	defaultPort   = 51820
	defaultSeed   = "tapwire"
)

// deriveKey returns the private key that seed gives to label and i:
// HKDF-SHA-256 of the seed, clamped as Curve25519 (and wg) want, so that
// the printed key is the one every implementation uses.
func deriveKey(seed, label string, i uint64) protocol.Key {
	info := binary.BigEndian.AppendUint64([]byte("tapwire bench/hub "+label+" "), i)
	b, err := hkdf.Key(sha256.New, []byte(seed), nil, string(info), protocol.KeyLen)
	if err != nil { // only for lengths HKDF cannot give
		panic("hub: hkdf: " + err.Error())
	}
	var k protocol.Key
	copy(k[:], b)
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k
}

// clientKey returns client i's private key under seed.
func clientKey(seed string, i int) protocol.Key { return deriveKey(seed, "client", uint64(i)) }

// hubKey returns the hub's private key under seed.
func hubKey(seed string) protocol.Key { return deriveKey(seed, "hub", 0) }

// layout is where N clients live: their inner addresses (the hub has the
// first of each prefix, client i the (i+2)-th) and their source addresses
// on loopback (254 a /24, .1 to .254, from source on).
type layout struct {
	n      int
	net4   netip.Prefix
	net6   netip.Prefix
	source netip.Addr // a /24 in 127.0.0.0/8: the first client's
}

// newLayout checks that n clients fit the prefixes and the loopback range.
func newLayout(n int, net4, net6 string, source string) (layout, error) {
	l := layout{n: n}
	var err error
	if n < 1 || n > maxClients {
		return l, fmt.Errorf("-n must be in [1, %d]", maxClients)
	}
	if l.net4, err = netip.ParsePrefix(net4); err != nil || !l.net4.Addr().Is4() {
		return l, fmt.Errorf("-net4 %q: not an IPv4 prefix", net4)
	}
	if l.net6, err = netip.ParsePrefix(net6); err != nil || !l.net6.Addr().Is6() || l.net6.Addr().Is4In6() {
		return l, fmt.Errorf("-net6 %q: not an IPv6 prefix", net6)
	}
	l.net4, l.net6 = l.net4.Masked(), l.net6.Masked()
	// The hub, n clients and the broadcast address within 32-bits bits.
	if bits := 32 - l.net4.Bits(); bits < 32 && uint64(n)+3 > 1<<bits {
		return l, fmt.Errorf("-net4 %v holds no hub and %d clients", l.net4, n)
	}
	if bits := 128 - l.net6.Bits(); bits < 32 && uint64(n)+2 > 1<<bits {
		return l, fmt.Errorf("-net6 %v holds no hub and %d clients", l.net6, n)
	}
	if l.source, err = netip.ParseAddr(source); err != nil || !l.source.Is4() || l.source.As4()[0] != 127 || l.source.As4()[3] != 0 {
		return l, fmt.Errorf("-source %q: not the first address of a /24 in 127.0.0.0/8", source)
	}
	if last := l.src(n - 1); last.As4()[0] != 127 {
		return l, fmt.Errorf("-source %v: %d clients go beyond 127.0.0.0/8", l.source, n)
	}
	return l, nil
}

// add returns a plus k (k below 2^32, in the last 32 bits).
func add(a netip.Addr, k uint64) netip.Addr {
	b := a.AsSlice()
	tail := binary.BigEndian.Uint32(b[len(b)-4:])
	binary.BigEndian.PutUint32(b[len(b)-4:], tail+uint32(k))
	out, _ := netip.AddrFromSlice(b)
	return out
}

func (l layout) hub4() netip.Addr         { return add(l.net4.Addr(), 1) }
func (l layout) hub6() netip.Addr         { return add(l.net6.Addr(), 1) }
func (l layout) inner4(i int) netip.Addr  { return add(l.net4.Addr(), uint64(i)+2) }
func (l layout) inner6(i int) netip.Addr  { return add(l.net6.Addr(), uint64(i)+2) }
func (l layout) src(i int) netip.Addr     { return add(l.source, uint64(i/254)<<8|uint64(i%254+1)) }
func (l layout) hubPrefix4() netip.Prefix { return netip.PrefixFrom(l.hub4(), l.net4.Bits()) }
func (l layout) hubPrefix6() netip.Prefix { return netip.PrefixFrom(l.hub6(), l.net6.Bits()) }

// publicKeys returns the public keys of clients 0..n-1 under seed, computed
// on every CPU (a Curve25519 base-point multiplication each).
func publicKeys(seed string, n int) []protocol.Key {
	pubs := make([]protocol.Key, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				pubs[i] = clientKey(seed, i).PublicKey()
			}
		})
	}
	wg.Wait()
	return pubs
}

// confOptions is what a hub configuration holds.
type confOptions struct {
	seed   string
	lay    layout
	port   int
	hubPub protocol.Key // non-zero: the hub has this key already; no PrivateKey line
}

// writeConf writes the hub's wg setconf file: its [Interface] (private key
// unless o.hubPub is set, listen port) and a [Peer] for each client with its
// public key and its inner /32 and /128. wg setconf, wg-quick and tapwire's
// config parser all read it.
func writeConf(w io.Writer, o confOptions) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, "# bench/hub conf: %d clients of seed %q; the hub is %v and %v\n", o.lay.n, o.seed, o.lay.hubPrefix4(), o.lay.hubPrefix6())
	fmt.Fprintf(bw, "[Interface]\n")
	if o.hubPub.IsZero() {
		fmt.Fprintf(bw, "PrivateKey = %s\n", hubKey(o.seed))
	}
	fmt.Fprintf(bw, "ListenPort = %d\n", o.port)
	for i, pub := range publicKeys(o.seed, o.lay.n) {
		fmt.Fprintf(bw, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %v/32, %v/128\n", pub, o.lay.inner4(i), o.lay.inner6(i))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the configuration: %w", err)
	}
	return nil
}

// parseFlags parses args into fs, refusing positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, usageError{err}
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return false, nil
}

// confCmd is `hub conf`.
func confCmd(stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("hub conf", flag.ContinueOnError)
	n := fs.Int("n", 0, "number of clients (peers of the hub)")
	seed := fs.String("seed", defaultSeed, "the `SEED` every key is derived from")
	port := fs.Int("port", defaultPort, "the hub's ListenPort")
	hubPub := fs.String("hub-key", "", "the hub's public `KEY` when it has one already: no PrivateKey line (give run the same -hub-key)")
	net4 := fs.String("net4", defaultNet4, "inner IPv4 `PREFIX`: the hub has its first address, client i the (i+2)-th")
	net6 := fs.String("net6", defaultNet6, "inner IPv6 `PREFIX`, numbered as -net4")
	out := fs.String("o", "", "write to `FILE` (mode 0600) instead of stdout")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	lay, err := newLayout(*n, *net4, *net6, defaultSource)
	if err != nil {
		return usageError{err}
	}
	if *port < 1 || *port > 65535 {
		return usageError{errors.New("-port must be in [1, 65535]")}
	}
	o := confOptions{seed: *seed, lay: lay, port: *port}
	if *hubPub != "" {
		if o.hubPub, err = protocol.ParseKey(strings.TrimSpace(*hubPub)); err != nil {
			return usageError{fmt.Errorf("-hub-key: %w", err)}
		}
	}
	if *out == "" {
		return writeConf(stdout, o)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("hub conf: %w", err)
	}
	if err := writeConf(f, o); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hub conf: %w", err)
	}
	return nil
}

// keyCmd is `hub key`.
func keyCmd(stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("hub key", flag.ContinueOnError)
	seed := fs.String("seed", defaultSeed, "the `SEED` the hub's key is derived from")
	pub := fs.Bool("pub", false, "print the public key instead of the private key")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	k := hubKey(*seed)
	if *pub {
		k = k.PublicKey()
	}
	_, err := fmt.Fprintln(stdout, k)
	return err
}
