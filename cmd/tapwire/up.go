package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/internal/daemon"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/uapi"
)

// runDir holds the pid files of interfaces tapwire up brought up.
const runDir = "/var/run/tapwire"

func runUp(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("up", "[-f|--foreground] FILE", stderr)
	fg := fs.Bool("f", false, "stay in the foreground (log to stderr) instead of going into the background")
	fs.BoolVar(fg, "foreground", false, "same as -f")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
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
	if cfg.Interface.Mode == "tap" {
		return fmt.Errorf("%s: Mode = tap is not supported yet; use Mode = tun (the default)", path)
	}
	if err := checkRoutes(cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !*fg && !daemon.IsChild() {
		os.MkdirAll(runDir, 0o755)
		if err := daemon.Background(filepath.Join(runDir, name+".log"), 60*time.Second); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is up (log: %s)\n", name, filepath.Join(runDir, name+".log"))
		return nil
	}
	err = upForeground(ctx, cfg, name, stderr)
	if err != nil {
		daemon.Ready(err)
	}
	return err
}

// checkRoutes refuses what tapwire up cannot route yet.
func checkRoutes(cfg *config.Config) error {
	if strings.EqualFold(cfg.Interface.Table, "off") {
		return nil
	}
	for _, p := range cfg.Peers {
		for _, a := range p.AllowedIPs {
			if a.Bits() == 0 {
				return fmt.Errorf("line %d: AllowedIPs %s: a default route through the tunnel needs policy routing, which tapwire up does not set up yet; use Table = off and route it yourself, or split it (0.0.0.0/1, 128.0.0.0/1)", p.Line, a)
			}
		}
	}
	return nil
}

// upForeground brings the interface up and runs it until ctx ends or the
// interface is deleted; on the way out it runs PreDown and PostDown.
func upForeground(ctx context.Context, cfg *config.Config, name string, stderr io.Writer) (err error) {
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
	if len(cfg.Interface.DNS) > 0 {
		log.Warn("DNS is not applied by tapwire up; set it with resolvconf in a PostUp hook", "dns", cfg.Interface.DNS)
	}
	if cfg.Interface.SaveConfig {
		log.Warn("SaveConfig is not supported by tapwire up; the file is left as it is")
	}
	if err := hooks("PreUp", cfg.Interface.PreUp); err != nil {
		return err
	}
	s, err := service.Start(service.Options{Name: name, MTU: cfg.Interface.MTU, Log: log})
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
	nc, err := netconf.Open("")
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, a := range cfg.Interface.Addresses {
		if err := nc.AddAddr(name, a, netconf.NoDAD()); err != nil {
			return err
		}
	}
	if err := nc.SetUp(name); err != nil {
		return err
	}
	if !strings.EqualFold(cfg.Interface.Table, "off") {
		table := 0
		if t := cfg.Interface.Table; t != "" && !strings.EqualFold(t, "auto") && !strings.EqualFold(t, "main") {
			if table, err = strconv.Atoi(t); err != nil {
				return fmt.Errorf("Table = %s: only off, auto, main or a number are supported", t)
			}
		}
		for _, p := range cfg.Peers {
			for _, a := range p.AllowedIPs {
				if err := nc.AddRoute(netconf.Route{Dst: a.Masked(), Link: name, Table: table}); err != nil {
					return err
				}
			}
		}
	}
	if err := hooks("PostUp", cfg.Interface.PostUp); err != nil {
		return err
	}
	pidFile := filepath.Join(runDir, name+".pid")
	os.MkdirAll(runDir, 0o755)
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidFile)

	log.Info("interface up", "name", name, "peers", len(cfg.Peers))
	daemon.Ready(nil)
	s.Wait(ctx)
	if err := hooks("PreDown", cfg.Interface.PreDown); err != nil {
		log.Warn("PreDown", "err", err)
	}
	s.Close()
	if err := hooks("PostDown", cfg.Interface.PostDown); err != nil {
		log.Warn("PostDown", "err", err)
	}
	return nil
}

// deviceConfig turns a wg-quick file into one UAPI transaction, resolving
// endpoint names. An endpoint that does not resolve is left out (with a
// warning), as the peer can still reach us.
func deviceConfig(cfg *config.Config, log *slog.Logger) uapi.DeviceConfig {
	key := cfg.Interface.PrivateKey
	port := uint16(cfg.Interface.ListenPort)
	dc := uapi.DeviceConfig{PrivateKey: &key, ListenPort: &port, ReplacePeers: true}
	if cfg.Interface.FwMark != 0 {
		fw := cfg.Interface.FwMark
		dc.FwMark = &fw
	}
	for _, p := range cfg.Peers {
		pc := uapi.PeerConfig{PublicKey: p.PublicKey, ReplaceAllowedIPs: true, AllowedIPs: p.AllowedIPs}
		psk := p.PresharedKey
		pc.PresharedKey = &psk
		ka := uint16(p.PersistentKeepalive)
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

func runDown(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("down", "FILE|INTERFACE", stderr)
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"give the configuration file or the interface name"}
	}
	name := pos[0]
	if strings.Contains(name, "/") || strings.HasSuffix(name, ".conf") {
		if name, err = config.InterfaceName(name); err != nil {
			return err
		}
	}
	pidFile := filepath.Join(runDir, name+".pid")
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

func runGenkey(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if err := parse(newFlags("genkey", "", stderr), args); err != nil {
		return err
	}
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k)
	return nil
}

func runGenpsk(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if err := parse(newFlags("genpsk", "", stderr), args); err != nil {
		return err
	}
	k, err := protocol.GeneratePresharedKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k)
	return nil
}

// runPubkey reads a private key on stdin, like wg pubkey.
func runPubkey(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if err := parse(newFlags("pubkey", "< PRIVATE-KEY", stderr), args); err != nil {
		return err
	}
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
