package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/daemon"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"golang.org/x/sys/unix"
)

// runUp is tapwire up FILE (pos holds the FILE).
func runUp(ctx context.Context, stdout, stderr io.Writer, f upFlags, pos []string) error {
	if len(pos) != 1 {
		return usageError{"give one wg-quick configuration file, e.g. /etc/wireguard/wg0.conf"}
	}
	path := pos[0]
	// Everything is checked before anything is created.
	cfg, err := config.ParseFile(path)
	if err != nil {
		return err
	}
	name, err := config.InterfaceName(path)
	if err != nil {
		return err
	}
	if _, err := checkDNS(cfg); err != nil {
		return err
	}
	if !daemon.IsChild() { // said once, to the user, not again in the log
		if fi, err := os.Stat(path); err == nil {
			if w := keyFileWarning(path, fi.Mode(), cfg); w != "" {
				fmt.Fprintf(stderr, "tapwire up: %s\n", w)
			}
		}
	}
	if !f.foreground && !daemon.IsChild() {
		os.MkdirAll(runDir(), 0o755)
		if err := daemon.Background(filepath.Join(runDir(), name+".log"), 60*time.Second); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is up (log: %s)\n", name, filepath.Join(runDir(), name+".log"))
		return nil
	}
	err = upForeground(ctx, cfg, path, name, stderr)
	if err != nil {
		daemon.Ready(err)
	}
	return err
}

// keyFileWarning returns the warning for a configuration file of the given
// mode that holds a private key and that users other than its owner may
// open (any group or other permission bit), as wg-quick warns "is world
// accessible", with the chmod that fixes it; "" if there is nothing to say.
// The file is brought up all the same.
func keyFileWarning(path string, mode fs.FileMode, cfg *config.Config) string {
	perm := mode.Perm()
	if perm&0o077 == 0 || cfg.Interface.PrivateKey.IsZero() {
		return ""
	}
	who := "its group and all users"
	switch {
	case perm&0o007 == 0:
		who = "its group"
	case perm&0o070 == 0:
		who = "all users"
	}
	return fmt.Sprintf("warning: %s holds a private key and is accessible to %s (mode %04o); make it private with: chmod 600 %s",
		path, who, perm, shellQuote(path))
}

// shellQuote quotes s for sh when it holds characters sh would interpret.
func shellQuote(s string) string {
	unsafe := func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_./+-=:,@%", r))
	}
	if s != "" && !strings.ContainsFunc(s, unsafe) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// upForeground brings the interface up and runs it until ctx ends or the
// interface is deleted; on the way out it saves the running configuration
// to path (SaveConfig = true) and runs PreDown and PostDown.
func upForeground(ctx context.Context, cfg *config.Config, path, name string, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	hooks := func(stage string, cmds []string) error {
		for _, c := range cmds {
			c = strings.ReplaceAll(c, "%i", name)
			log.Info("running hook", "stage", stage, "cmd", c)
			cmd := exec.Command("sh", "-c", c)
			cmd.Stdout, cmd.Stderr = stderr, stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s hook %q: %w", stage, c, err)
			}
		}
		return nil
	}
	dns, err := checkDNS(cfg)
	if err != nil {
		return err
	}
	if err := hooks("PreUp", cfg.Interface.PreUp); err != nil {
		return err
	}
	opts := service.Options{Name: name, MTU: cfg.Interface.MTU, Log: log}
	tap := cfg.Interface.Mode.TAP()
	if tap {
		opts.Mode = tun.ModeTAP
		opts.Engine.Switch = l2switch.Options{
			Ageing:     cfg.Interface.MACAgeing,
			MaxPerPort: cfg.Interface.MaxMACsPerPeer,
		}
	}
	// MSS clamping is on by default in TAP mode, as in tinc: hosts bridged
	// behind the tap have a 1500-byte MTU, and their TCP segments should
	// fit one datagram on the path rather than travel in fragments.
	opts.Engine.ClampMSS = cfg.Interface.ClampMSS.Or(tap)
	s, err := service.Start(opts)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.Close() // the device and everything on it goes with it
		}
	}()
	if err := s.Device.Apply(deviceConfig(cfg, log)); err != nil {
		return err
	}
	for _, p := range cfg.Peers {
		if len(p.AllowedMACs) > 0 {
			s.Device.SetAllowedMACs(p.PublicKey, p.AllowedMACs)
		}
		// A name is kept and followed: resolved again when the peer
		// stops answering.
		if endpointIsName(p.Endpoint) {
			if err := s.Device.SetEndpointName(p.PublicKey, p.Endpoint); err != nil {
				return err
			}
		}
	}
	nc, err := netconf.Open("")
	if err != nil {
		return err
	}
	defer nc.Close()
	// The addresses go on the interface, or on the bridge it joins: a
	// bridge port's own addresses are never reached.
	addrLink := name
	if cfg.Interface.Bridge != "" {
		addrLink = cfg.Interface.Bridge
		if err := joinBridge(nc, name, addrLink, log); err != nil {
			return err
		}
	}
	for _, a := range cfg.Interface.Addresses {
		if err := nc.AddAddr(addrLink, a, netconf.NoDAD()); err != nil {
			return err
		}
	}
	if addrLink != name {
		defer func() {
			for _, a := range cfg.Interface.Addresses {
				nc.DelAddr(addrLink, a)
			}
		}()
	}
	if err := nc.SetUp(name); err != nil {
		return err
	}
	var cleanup func()
	if tap {
		// Frames go by MAC address: allowed IPs route nothing.
		cleanup = func() {}
		for _, p := range cfg.Peers {
			if len(p.AllowedIPs) > 0 {
				log.Info("AllowedIPs are not used in TAP mode (frames are switched by MAC address); no routes added", "peer", p.PublicKey.String())
				break
			}
		}
	} else {
		cleanup, err = addRoutes(nc, s, cfg, name, log)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if err != nil {
		return err
	}
	if len(cfg.Interface.DNS) > 0 {
		routeAll := false
		for _, p := range cfg.Peers {
			for _, a := range p.AllowedIPs {
				routeAll = routeAll || a.Bits() == 0
			}
		}
		if err := dns.set(name, cfg.Interface.DNS, routeAll); err != nil {
			return err
		}
		log.Info("DNS set", "tool", dns.kind, "dns", cfg.Interface.DNS)
		defer func() {
			if err != nil {
				dns.unset(name)
			}
		}()
	}
	// A fwmark set now, which the file did not give, is the one addRoutes
	// picked for a default route: SaveConfig leaves it out.
	autoMark := cfg.Interface.FwMark == 0 && s.Device.Status().FwMark != 0
	if err := hooks("PostUp", cfg.Interface.PostUp); err != nil {
		return err
	}
	pidFile := filepath.Join(runDir(), name+".pid")
	os.MkdirAll(runDir(), 0o755)
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidFile)

	log.Info("interface up", "name", name, "mode", s.Device.Mode(), "peers", len(cfg.Peers))
	daemon.Ready(nil)
	s.Wait(ctx)
	if err := hooks("PreDown", cfg.Interface.PreDown); err != nil {
		log.Warn("PreDown", "err", err)
	}
	if cfg.Interface.SaveConfig {
		// As wg-quick does, before anything is taken down: the addresses
		// as the interface (or its bridge) has them now.
		addrs, err := nc.Addrs(addrLink)
		if err != nil {
			addrs = nil // the interface is gone: the file's addresses stay
		}
		addrs = slices.DeleteFunc(addrs, func(p netip.Prefix) bool { return p.Addr().IsLinkLocalUnicast() })
		saved := savedConfig(cfg, s.Device.Status(), addrs, autoMark)
		if err := writeFileAtomic(path, saved.Marshal()); err != nil {
			log.Error("SaveConfig", "err", err)
		} else {
			log.Info("running configuration saved", "file", path, "peers", len(saved.Peers))
		}
	}
	if len(cfg.Interface.DNS) > 0 {
		if err := dns.unset(name); err != nil { // before the link goes (resolvectl needs it)
			log.Warn("DNS", "err", err)
		}
	}
	s.Close()
	cleanup()
	if err := hooks("PostDown", cfg.Interface.PostDown); err != nil {
		log.Warn("PostDown", "err", err)
	}
	return nil
}

// joinBridge makes link a port of bridge, creating the bridge (up, no
// address) if there is none. tapwire down leaves the bridge, which may have
// other ports.
func joinBridge(nc *netconf.Handle, link, bridge string, log *slog.Logger) error {
	if _, err := nc.LinkIndex(bridge); err != nil {
		log.Info("creating bridge", "bridge", bridge)
		if err := nc.AddBridge(bridge); err != nil {
			return err
		}
	}
	if err := nc.AttachToBridge(link, bridge); err != nil {
		return err
	}
	return nc.SetUp(bridge)
}

// addRoutes routes each peer's allowed IPs through the interface, as
// wg-quick does: in the main table or Table = N, none with Table = off. A
// default route (/0) with Table = auto goes the wg-quick way: into a table
// of its own, with the socket's packets marked and kept out of it by policy
// rules, so that the tunnel's own traffic still reaches the peers. It
// returns what removes the rules again (routes go with the interface).
func addRoutes(nc *netconf.Handle, s *service.Service, cfg *config.Config, name string, log *slog.Logger) (func(), error) {
	var rules []netconf.Rule
	cleanup := func() {
		for _, r := range rules {
			if err := nc.DelRule(r); err != nil {
				log.Warn("remove policy rule", "rule", r.String(), "err", err)
			}
		}
	}
	t := cfg.Interface.Table
	if t.Off() {
		return cleanup, nil
	}
	auto := t.Auto()
	id, _ := t.ID()
	table := int(id)
	defaults := map[bool]bool{} // IP version (v6) -> a /0 is routed through us
	for _, p := range cfg.Peers {
		for _, a := range p.AllowedIPs {
			if auto && a.Bits() == 0 {
				defaults[a.Addr().Is6()] = true
				continue
			}
			if err := nc.AddRoute(netconf.Route{Dst: a.Masked(), Link: name, Table: table}); err != nil {
				return cleanup, err
			}
		}
	}
	if len(defaults) == 0 {
		return cleanup, nil
	}
	mark := cfg.Interface.FwMark
	if mark == 0 {
		// wg-quick's choice: 51820, or the next table that is empty.
		for mark = 51820; ; mark++ {
			e4, err4 := nc.TableEmpty(int(mark), false)
			e6, err6 := nc.TableEmpty(int(mark), true)
			if (err4 != nil || e4) && (err6 != nil || e6) {
				break
			}
		}
		if err := s.Device.Apply(devconf.DeviceConfig{FwMark: &mark}); err != nil {
			return cleanup, err
		}
	}
	for _, v6 := range []bool{false, true} {
		if !defaults[v6] {
			continue
		}
		dst := netip.MustParsePrefix("0.0.0.0/0")
		if v6 {
			dst = netip.MustParsePrefix("::/0")
		}
		if err := nc.AddRoute(netconf.Route{Dst: dst, Link: name, Table: int(mark)}); err != nil {
			return cleanup, err
		}
		for _, r := range []netconf.Rule{
			{V6: v6, Table: int(mark), Mark: mark, Invert: true, SuppressPrefixlen: -1},
			{V6: v6, Table: unix.RT_TABLE_MAIN, SuppressPrefixlen: 0},
		} {
			if err := nc.AddRule(r); err != nil {
				return cleanup, err
			}
			rules = append(rules, r)
		}
		if !v6 {
			// Let replies to the tunnel's marked packets pass reverse-path filtering.
			os.WriteFile("/proc/sys/net/ipv4/conf/all/src_valid_mark", []byte("1"), 0o644)
		}
	}
	log.Info("default route through the tunnel", "table", mark, "fwmark", mark)
	return cleanup, nil
}

// deviceConfig turns a wg-quick file into one UAPI transaction, resolving
// endpoint names. An endpoint that does not resolve is left out (with a
// warning), as the peer can still reach us.
func deviceConfig(cfg *config.Config, log *slog.Logger) devconf.DeviceConfig {
	key := cfg.Interface.PrivateKey
	port := uint16(cfg.Interface.ListenPort)
	dc := devconf.DeviceConfig{PrivateKey: &key, ListenPort: &port, ReplacePeers: true}
	if cfg.Interface.FwMark != 0 {
		fw := cfg.Interface.FwMark
		dc.FwMark = &fw
	}
	if cfg.Interface.ListenTCP != 0 {
		tcp := uint16(cfg.Interface.ListenTCP)
		dc.ListenTCP = &tcp
	}
	for _, p := range cfg.Peers {
		pc := devconf.PeerConfig{PublicKey: p.PublicKey, ReplaceAllowedIPs: true, AllowedIPs: p.AllowedIPs}
		// config.Parse let through "" (udp, a new peer's default) or a
		// name ParseTransport reads.
		if t, err := devconf.ParseTransport(p.Transport); err == nil {
			pc.Transport = &t
		}
		psk := p.PresharedKey
		pc.PresharedKey = &psk
		ka := uint16(p.PersistentKeepalive / time.Second)
		pc.PersistentKeepalive = &ka
		if p.Endpoint != "" {
			if ua, err := net.ResolveUDPAddr("udp", p.Endpoint); err == nil {
				ap := ua.AddrPort()
				ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
				pc.Endpoint = &ap
			} else {
				log.Warn("endpoint does not resolve", "peer", p.PublicKey.String(), "endpoint", p.Endpoint, "err", err)
			}
		}
		dc.Peers = append(dc.Peers, pc)
	}
	return dc
}

// runDown is tapwire down FILE|INTERFACE (pos holds the argument).
func runDown(ctx context.Context, stdout, stderr io.Writer, pos []string) error {
	var err error
	if len(pos) != 1 {
		return usageError{"give the configuration file or the interface name"}
	}
	name := pos[0]
	if strings.Contains(name, "/") || strings.HasSuffix(name, ".conf") {
		if name, err = config.InterfaceName(name); err != nil {
			return err
		}
	}
	pidFile := filepath.Join(runDir(), name+".pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && syscall.Kill(pid, syscall.SIGTERM) == nil {
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if syscall.Kill(pid, 0) != nil {
					fmt.Fprintf(stdout, "%s is down\n", name)
					return nil
				}
			}
			return fmt.Errorf("%s: process %d did not stop within 10 s", name, pid)
		}
	}
	// Not ours (tapwire-go, or a stale pid file): deleting the interface
	// stops whoever serves it.
	if _, err := findDevice("", name); err != nil {
		return fmt.Errorf("%s is not up", name)
	}
	nc, err := netconf.Open("")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.DelLink(name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is down\n", name)
	return nil
}

func runGenkey(stdout io.Writer) error {
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k)
	return nil
}

func runGenpsk(stdout io.Writer) error {
	k, err := protocol.GeneratePresharedKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k)
	return nil
}

// runPubkey reads a private key on stdin, like wg pubkey.
func runPubkey(stdout io.Writer) error {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	k, err := protocol.ParseKey(strings.TrimSpace(line))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k.PublicKey())
	return nil
}
