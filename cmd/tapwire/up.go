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
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/daemon"
	"github.com/tapwire/tapwire/internal/logging"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/wgquick"
)

// readyTimeout bounds how long tapwire up waits for its background
// process to bring the interface up; stopTimeout how long that process then
// has to take back what it did when asked to stop, before it is killed.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// runUp is tapwire up FILE (pos holds the FILE).
func runUp(ctx context.Context, stdout, stderr io.Writer, f upFlags, pos []string) error {
	// The background child's, once: the programs it starts (hooks) are
	// not the child, whatever they run.
	child := daemon.TakeChild()
	err := bringUp(ctx, stdout, stderr, f, pos, child)
	if err != nil {
		child.Ready(err)
	}
	return err
}

// bringUp is runUp with the background child, if this process is it.
func bringUp(ctx context.Context, stdout, stderr io.Writer, f upFlags, pos []string, child *daemon.Child) error {
	if len(pos) != 1 {
		return usageError{"give one wg-quick configuration file or interface name, e.g. /etc/wireguard/wg0.conf or wg0"}
	}
	path, err := configPath(pos[0], tapwireConfDir, wireguardConfDir)
	if err != nil {
		return err
	}
	if f.workers, err = service.ParseWorkers(os.Getenv(service.WorkersEnv)); err != nil {
		return err
	}
	// Everything is checked before anything is created.
	log, err := upLogger(stderr, f)
	if err != nil {
		return err
	}
	cfg, err := config.ParseFile(path)
	if err != nil {
		return err
	}
	name, err := config.InterfaceName(path)
	if err != nil {
		return err
	}
	if err := wgquick.CheckDNS(cfg); err != nil {
		return err
	}
	if child == nil { // said once, to the user, not again in the log
		if fi, err := os.Stat(path); err == nil {
			if w := keyFileWarning(path, fi.Mode(), cfg); w != "" {
				fmt.Fprintf(stderr, "tapwire up: %s\n", w)
			}
		}
	}
	if child == nil {
		// A pid file of a live tapwire up of this interface: up already.
		// One whose process is gone (killed): its files go, and what its
		// state says it left on the host is taken back.
		iface := resolveIface(name) // macOS: wg0's utun, if it has one
		rf := lookRunFiles(iface)
		if rf.live {
			return fmt.Errorf("%s is up already (process %d); take it down first: tapwire down %s", name, rf.pid, name)
		}
		cleanStale(iface, rf, stderr, "tapwire up: "+iface+": ")
	}
	if !f.foreground && child == nil && !daemon.CanBackground() {
		fmt.Fprintf(stderr, "tapwire up: %s stays in the foreground on this system; stop it with Ctrl-C or tapwire down %s\n", name, name)
	}
	if !f.foreground && child == nil && daemon.CanBackground() {
		os.MkdirAll(runDir(), 0o755)
		log := filepath.Join(runDir(), name+".log")
		ctx, cancel := context.WithTimeoutCause(ctx, readyTimeout, fmt.Errorf("%s not up after %v", name, readyTimeout))
		defer cancel()
		if err := daemon.Background(ctx, log, stopTimeout); err != nil {
			return fmt.Errorf("%w (log: %s)", err, log)
		}
		fmt.Fprintf(stdout, "%s is up (log: %s)\n", name, log)
		return nil
	}
	slog.SetDefault(log) // for the few that log to the default (tun's offload warning)
	return upForeground(ctx, cfg, path, name, stderr, log, child, f)
}

// upLogger is the log of tapwire up as its flags say, or the usage error
// of a bad --log-format or --log-level.
func upLogger(stderr io.Writer, f upFlags) (*slog.Logger, error) {
	level, err := logging.ParseLevel(f.logLevel)
	if err != nil {
		return nil, usageError{"--log-level: " + err.Error()}
	}
	log, err := logging.New(stderr, f.logFormat, level)
	if err != nil {
		return nil, usageError{"--log-format: " + err.Error()}
	}
	return log, nil
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
// to path (SaveConfig = true) and runs PreDown and PostDown. What wg-quick
// does around the device (hooks, addresses, bridge, routes, rules, DNS) is
// the plan package wgquick computes and carries out. Once the interface
// is up it drops its privileges (privileges.go), tells systemd and the
// waiting parent, and applies the file again on SIGHUP (reload.go).
func upForeground(ctx context.Context, cfg *config.Config, path, name string, stderr io.Writer, log *slog.Logger, child *daemon.Child, f upFlags) error {
	// systemd's socket and SIGHUP are taken before any hook runs.
	sd := daemon.TakeNotifier()
	hup := catchReload()
	defer hup.stop()
	nc, err := netconf.Open("")
	if err != nil {
		return err
	}
	defer nc.Close()
	// From here on name is the interface's: on macOS a utun for wg0.
	cfgName := name
	if name, err = systemIfaceName(name); err != nil {
		return err
	}
	plan, err := wgquick.NewPlan(cfg, name, wgquick.ReadHost(nc, cfg))
	if err != nil {
		return err
	}
	// The pid file and state go first: if this process is killed from now
	// on, they say what it left (see runstate.go).
	// One tapwire up of an interface at a time: the lock is held for the
	// process's life, and under it the run files are checked again (two
	// ups started together both passed the parent's check).
	unlock, err := lockRun(name)
	if err != nil {
		return err
	}
	defer unlock()
	if rf := lookRunFiles(name); rf.live && rf.pid != os.Getpid() {
		return fmt.Errorf("%s is up already (process %d); take it down first: tapwire down %s", name, rf.pid, name)
	}
	st, err := newRunState(path)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := writeRunFiles(name, st); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer removeRunFiles(name)
	var s *service.Service
	r := &wgquick.Runner{Net: nc, Log: log, Output: stderr, Journal: func(l wgquick.Leftovers) {
		st.Leftovers = l
		if err := writeState(name, st); err != nil {
			log.Warn("cannot record what taking the interface down will take back", "err", err)
		}
	}}
	up, err := r.Up(ctx, plan, func(sd wgquick.StartDevice) (wgquick.Device, error) {
		var err error
		if s, err = startDevice(cfg, sd, f.workers, log); err != nil {
			return nil, err
		}
		return upDevice{s}, nil
	})
	if err != nil {
		return err
	}

	if name != cfgName {
		forget, err := recordIfaceName(cfgName, name)
		if err != nil {
			log.Warn("tapwire down and status will know it by its own name only", "err", err, "interface", name)
		} else {
			defer forget()
		}
	}
	log.Info("interface up", "name", name, "mode", s.Device.Mode().String(), "peers", len(cfg.Peers))
	st.Privileges = dropPrivileges(cfg, path, f.keepPrivileges, log)
	if err := writeState(name, st); err != nil {
		log.Warn("cannot record the privileges kept", "err", err)
	}
	if err := sd.Ready(fmt.Sprintf("%s up: %d peers; privileges: %s", name, len(cfg.Peers), st.Privileges)); err != nil {
		log.Warn("systemd", "err", err)
	}
	child.Ready(nil)
	hup.start(path, cfg, s, plan, sd, log)
	s.Wait(ctx)
	cfg = hup.stop()
	sd.Stopping("taking " + name + " down")
	up.Down(func() {
		// As wg-quick does, before anything is taken down: the addresses
		// as the interface (or its bridge) has them now.
		addrs, err := nc.Addrs(plan.AddrLink)
		if err != nil {
			addrs = nil // the interface is gone: the file's addresses stay
		}
		addrs = slices.DeleteFunc(addrs, func(p netip.Prefix) bool { return p.Addr().IsLinkLocalUnicast() })
		// A fwmark the plan chose for a default route is left out.
		saved := savedConfig(cfg, s.Device.Status(), addrs, plan.FwMark != 0)
		if err := writeFileAtomic(path, saved.Marshal()); err != nil {
			log.Error("SaveConfig", "err", err)
		} else {
			log.Info("running configuration saved", "file", path, "peers", len(saved.Peers))
		}
	})
	return nil
}

// startDevice creates the tunnel device sd asks for and configures it from
// cfg: keys, port, peers, the MAC table of a tap device, MSS clamping, the
// metrics listener; workers is the engine's (TAPWIRE_WORKERS, 0: its default).
func startDevice(cfg *config.Config, sd wgquick.StartDevice, workers int, log *slog.Logger) (*service.Service, error) {
	opts := service.Options{Name: sd.Name, MTU: sd.MTU, Log: log, MetricsAddress: cfg.Interface.MetricsAddress}
	opts.Engine.Workers = workers
	if sd.TAP {
		opts.Mode = tun.ModeTAP
		opts.Engine.Switch = l2switch.Options{
			Ageing:     cfg.Interface.MACAgeing,
			MaxPerPort: cfg.Interface.MaxMACsPerPeer,
		}
	}
	// MSS clamping is on by default in TAP mode, as in tinc: hosts bridged
	// behind the tap have a 1500-byte MTU, and their TCP segments should
	// fit one datagram on the path rather than travel in fragments.
	opts.Engine.ClampMSS = cfg.Interface.ClampMSS.Or(sd.TAP)
	s, err := service.Start(opts)
	if err != nil {
		return nil, err
	}
	if err := configureDevice(s, cfg, log); err != nil {
		s.Close() // the device and everything on it goes with it
		return nil, err
	}
	return s, nil
}

// configureDevice gives a started device the file's keys, port and peers.
func configureDevice(s *service.Service, cfg *config.Config, log *slog.Logger) error {
	// AllowedMACs first: Apply then makes each peer with its own, and warns
	// only about a hub's peers that have none.
	for _, p := range cfg.Peers {
		if len(p.AllowedMACs) > 0 {
			s.Device.SetAllowedMACs(p.PublicKey, p.AllowedMACs)
		}
	}
	if err := s.Device.Apply(deviceConfig(cfg, log)); err != nil {
		return err
	}
	for _, p := range cfg.Peers {
		// A name is kept and followed: resolved again when the peer
		// stops answering.
		if endpointIsName(p.Endpoint) {
			if err := s.Device.SetEndpointName(p.PublicKey, p.Endpoint); err != nil {
				return err
			}
		}
	}
	return nil
}

// upDevice is a service as the device of a wgquick plan.
type upDevice struct{ s *service.Service }

func (d upDevice) SetFwMark(mark uint32) error {
	return d.s.Device.Apply(devconf.DeviceConfig{FwMark: &mark})
}

func (d upDevice) Close() error {
	d.s.Close()
	return nil
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
	if cfg.Interface.FloodLimit != 0 {
		limit := cfg.Interface.FloodLimit
		dc.FloodLimit = &limit
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

// downTimeout bounds how long tapwire down waits for the process of an
// interface to take it down and exit.
const downTimeout = 10 * time.Second

// runDown is tapwire down FILE|INTERFACE (pos holds the argument).
func runDown(ctx context.Context, stdout, stderr io.Writer, pos []string) error {
	var err error
	if len(pos) != 1 {
		return usageError{"give the configuration file or the interface name"}
	}
	name := pos[0]
	if !isBareName(name) {
		if name, err = config.InterfaceName(name); err != nil {
			return err
		}
	}
	name = resolveIface(name) // macOS: wg0's utun
	prefix := "tapwire down: " + name + ": "
	if rf := lookRunFiles(name); rf.live {
		// Ours: it runs PreDown and PostDown and takes everything back.
		if err := signalUp(rf, name, syscall.SIGTERM); err != nil {
			return fmt.Errorf("%s: stop process %d: %w", name, rf.pid, err)
		}
		for deadline := time.Now().Add(downTimeout); ; time.Sleep(50 * time.Millisecond) {
			if live, _ := isUpOf(rf.pid, name, rf.state); !live {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: process %d did not stop within %v", name, rf.pid, downTimeout)
			}
		}
		// Killed on its way out? What it did not take back is taken now.
		if rf := lookRunFiles(name); !rf.live {
			cleanStale(name, rf, stderr, prefix)
		}
		fmt.Fprintf(stdout, "%s is down\n", name)
		return nil
	} else if cleanStale(name, rf, stderr, prefix) {
		// A process that was killed: never signalled, whatever has its pid now.
		if err := delLink(name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is down\n", name)
		return nil
	}
	// Not ours (tapwire-go, wireguard-go): stopped as wg-quick stops it.
	if err := downForeign(name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is down\n", name)
	return nil
}

// delLink deletes the link name in this network namespace, if it is there.
func delLink(name string) error {
	nc, err := netconf.Open("")
	if err != nil {
		return err
	}
	defer nc.Close()
	return nc.DelLink(name)
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
