package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/daemon"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/wgquick"
)

// On SIGHUP (systemctl reload, kill -HUP) tapwire up reads its
// configuration file again and applies it as `wg syncconf` does: the
// private key, the listen port, the fwmark and the peers (new ones added,
// those the file lacks removed, the others' keys, keepalives, transports
// and allowed IPs set, their sessions kept), and tapwire's AllowedMACs,
// FloodLimit and ListenTCP. What wg-quick does around the device
// (addresses, routes, MTU, DNS, hooks, Table, Mode, Bridge, SaveConfig) is
// not changed: the keys of those that changed are named in a warning, as
// they take a restart. A file with a mistake is refused, with its file,
// line and key in the log, and nothing changes.
//
// Where it differs from wg syncconf: a file without ListenPort leaves the
// port as it is (wg would rebind to a random one), and a peer's endpoint
// is set only when the file's Endpoint line changed (or the peer is new),
// so that a peer that roamed is not sent back to where it was.

// reloader applies the configuration file again on each SIGHUP.
type reloader struct {
	sig     chan os.Signal
	quit    chan struct{}
	done    chan struct{}
	cfg     *config.Config // the file as last applied; the goroutine's until stop
	stopped bool
	started bool // start was called: stop waits for its goroutine
}

// catchReload starts catching SIGHUP, whose default would end the
// process, for the rest of the process's life: start then serves the
// signals, those caught before too, and after stop they are dropped (a
// reload asked for while the interface goes down does not kill the
// process halfway).
func catchReload() *reloader {
	r := &reloader{sig: make(chan os.Signal, 1), quit: make(chan struct{}), done: make(chan struct{})}
	signal.Notify(r.sig, syscall.SIGHUP)
	return r
}

// start applies path again to the running s on each SIGHUP, until stop.
// cfg is the file as brought up, plan what was done around the device.
func (r *reloader) start(path string, cfg *config.Config, s *service.Service, plan *wgquick.Plan, sd *daemon.Notifier, log *slog.Logger) {
	pf := factsOf(plan)
	r.cfg = cfg
	r.started = true
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.quit:
				return
			case <-r.sig:
			}
			sd.Reloading("reloading " + path)
			if next, err := reload(path, r.cfg, s, pf, log); err != nil {
				log.Error("reload refused; the running configuration stays", "err", err)
				sd.Ready("reload refused: " + err.Error())
			} else {
				r.cfg = next
				sd.Ready(fmt.Sprintf("reloaded %s: %d peers", path, len(next.Peers)))
			}
		}
	}()
}

// stop stops reloading, waits for a reload under way, and returns the
// file as last applied (nil if start was not called). Later calls only
// return it again; the goroutine that called start calls stop.
func (r *reloader) stop() *config.Config {
	if !r.stopped {
		r.stopped = true
		close(r.quit)
		if r.started {
			<-r.done // r.cfg is the goroutine's until then
		}
	}
	return r.cfg
}

// reload reads path and applies it to s over old (the file as last
// applied), returning the file now.
func reload(path string, old *config.Config, s *service.Service, pf planFacts, log *slog.Logger) (*config.Config, error) {
	cfg, err := config.ParseFile(path)
	if err != nil {
		return nil, err
	}
	cur := s.Device.Status()
	dc, restart := syncConfig(old, cfg, cur, pf, log)
	oldPeers, curPeers := indexPeers(old), statusKeys(cur)
	// AllowedMACs first, as at start: a new peer is made with them.
	setMACs := func(c *config.Config, other *config.Config) {
		in := indexPeers(c)
		for _, p := range other.Peers {
			if in[p.PublicKey] == nil {
				s.Device.SetAllowedMACs(p.PublicKey, nil)
			}
		}
		for _, p := range c.Peers {
			s.Device.SetAllowedMACs(p.PublicKey, p.AllowedMACs)
		}
	}
	setMACs(cfg, old)
	if err := s.Device.Apply(dc); err != nil {
		setMACs(old, cfg)
		if errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("%w (a port below 1024 takes CAP_NET_BIND_SERVICE, which the daemon dropped after start: take the interface down and up again)", err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range cfg.Peers {
		if was := oldPeers[p.PublicKey]; was != nil && was.Endpoint == p.Endpoint && curPeers[p.PublicKey] {
			continue
		}
		switch {
		case endpointIsName(p.Endpoint):
			if err := s.Device.SetEndpointName(p.PublicKey, p.Endpoint); err != nil {
				log.Warn("endpoint name", "peer", p.PublicKey.String(), "err", err)
			}
		case p.Endpoint == "":
			s.Device.SetEndpointName(p.PublicKey, "") // a name the file no longer gives is not followed
		}
	}
	added, removed := 0, 0
	for _, pc := range dc.Peers {
		switch {
		case pc.Remove:
			removed++
		case !curPeers[pc.PublicKey]:
			added++
		}
	}
	log.Info("configuration reloaded", "file", path, "peers", len(cfg.Peers), "added", added, "removed", removed)
	if len(restart) > 0 {
		log.Warn("changed in the file, applied only by taking the interface down and up again", "keys", strings.Join(restart, ", "))
	}
	return cfg, nil
}

// planFacts are what a reload needs to know of what tapwire up did around
// the device.
type planFacts struct {
	// rules: policy rules route by the fwmark (a default route), which a
	// reload must then leave alone.
	rules bool
	// routes: allowed IPs are routed through the interface (a TUN device,
	// Table not off); routed are the prefixes that are: the routes added,
	// and the subnets of the interface's addresses.
	routes bool
	routed []netip.Prefix
}

// factsOf returns the planFacts of a plan.
func factsOf(p *wgquick.Plan) planFacts {
	var pf planFacts
	for _, s := range p.Up {
		switch s := s.(type) {
		case wgquick.AddRoute:
			pf.routes = true
			pf.routed = append(pf.routed, s.Route.Dst)
		case wgquick.AddAddr:
			if s.Link == p.Name {
				pf.routed = append(pf.routed, s.Addr.Masked())
			}
		case wgquick.AddRule:
			pf.rules = true
		case wgquick.StartDevice:
			pf.routes = pf.routes || !s.TAP
		}
	}
	return pf
}

// unrouted returns the prefixes of ps that no route of pf covers.
func (pf planFacts) unrouted(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if !slices.ContainsFunc(pf.routed, func(r netip.Prefix) bool { return r.Bits() <= p.Bits() && r.Contains(p.Addr()) }) {
			out = append(out, p.Masked())
		}
	}
	return out
}

// syncConfig returns the transaction that brings a running device whose
// status is cur, brought up from (or last reloaded with) the file old, to
// the file cfg (see the top of this file), and the keys that changed but
// take a restart: among them the allowed IPs no route leads to the
// interface (wg syncconf adds none; taking the interface down and up
// again does).
func syncConfig(old, cfg *config.Config, cur devconf.DeviceStatus, pf planFacts, log *slog.Logger) (devconf.DeviceConfig, []string) {
	dc := deviceConfig(cfg, log)
	dc.ReplacePeers = false
	in, was := &cfg.Interface, &old.Interface
	if in.ListenPort == 0 {
		dc.ListenPort = nil
	}
	var restart []string
	dc.FwMark = nil
	if in.FwMark != was.FwMark || in.FwMark != 0 && in.FwMark != cur.FwMark {
		if pf.rules {
			restart = append(restart, "FwMark (policy rules route by it)")
		} else {
			fw := in.FwMark
			dc.FwMark = &fw
		}
	}
	dc.ListenTCP, dc.FloodLimit = nil, nil
	if in.ListenTCP != was.ListenTCP {
		tcp := uint16(in.ListenTCP)
		dc.ListenTCP = &tcp
	}
	if in.FloodLimit != was.FloodLimit {
		limit := in.FloodLimit
		dc.FloodLimit = &limit
	}
	var unrouted []string
	oldPeers, newPeers, curPeers := indexPeers(old), indexPeers(cfg), statusKeys(cur)
	for i := range dc.Peers {
		pc := &dc.Peers[i]
		prev := oldPeers[pc.PublicKey]
		if curPeers[pc.PublicKey] && prev != nil && prev.Endpoint == newPeers[pc.PublicKey].Endpoint {
			pc.Endpoint = nil // where it roamed to stays
		}
		if pf.routes {
			for _, p := range pf.unrouted(pc.AllowedIPs) {
				unrouted = append(unrouted, p.String())
			}
		}
	}
	if len(unrouted) > 0 {
		restart = append(restart, "AllowedIPs (no route yet: "+strings.Join(unrouted, " ")+")")
	}
	for _, ps := range cur.Peers {
		if newPeers[ps.PublicKey] == nil {
			dc.Peers = append(dc.Peers, devconf.PeerConfig{PublicKey: ps.PublicKey, Remove: true})
		}
	}
	for _, k := range []struct {
		name    string
		changed bool
	}{
		{"Address", !slices.Equal(in.Addresses, was.Addresses)},
		{"DNS", !slices.Equal(in.DNS, was.DNS)},
		{"MTU", in.MTU != was.MTU},
		{"Table", in.Table.String() != was.Table.String()},
		{"PreUp", !slices.Equal(in.PreUp, was.PreUp)},
		{"PostUp", !slices.Equal(in.PostUp, was.PostUp)},
		{"PreDown", !slices.Equal(in.PreDown, was.PreDown)},
		{"PostDown", !slices.Equal(in.PostDown, was.PostDown)},
		{"SaveConfig", in.SaveConfig != was.SaveConfig},
		{"Mode", in.Mode != was.Mode},
		{"Bridge", in.Bridge != was.Bridge},
		{"ClampMSS", in.ClampMSS != was.ClampMSS},
		{"MACAgeing", in.MACAgeing != was.MACAgeing},
		{"MaxMACsPerPeer", in.MaxMACsPerPeer != was.MaxMACsPerPeer},
		{"MetricsAddress", in.MetricsAddress != was.MetricsAddress},
	} {
		if k.changed {
			restart = append(restart, k.name)
		}
	}
	return dc, restart
}

// indexPeers maps the public keys of cfg's peers to them (a lookup per
// peer, not a walk of the file: a hub's reload stays linear).
func indexPeers(cfg *config.Config) map[protocol.Key]*config.Peer {
	m := make(map[protocol.Key]*config.Peer, len(cfg.Peers))
	for i := range cfg.Peers {
		m[cfg.Peers[i].PublicKey] = &cfg.Peers[i]
	}
	return m
}

// statusKeys is the set of the public keys of st's peers.
func statusKeys(st devconf.DeviceStatus) map[protocol.Key]bool {
	m := make(map[protocol.Key]bool, len(st.Peers))
	for _, p := range st.Peers {
		m[p.PublicKey] = true
	}
	return m
}
