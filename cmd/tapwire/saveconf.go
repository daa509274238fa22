package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/devconf"
)

// savedConfig returns what SaveConfig = true writes back on down, as
// wg-quick's save_config does: the file's own keys (DNS, MTU, Table, the
// hooks, tapwire's keys), the addresses the interface has now, and the
// running state of the tunnel (`wg showconf`): key, port, fwmark and the
// peers as they are, those added with `wg set` included and those removed
// left out. A peer's endpoint keeps the name the file gave it, so that the
// name is followed again after the next up; a peer without one gets the
// address it was last seen at. The fwmark tapwire up picked itself for a
// default route (Table = auto) is not written, so the next up picks again.
func savedConfig(cfg *config.Config, st devconf.DeviceStatus, addrs []netip.Prefix, autoMark bool) *config.Config {
	out := *cfg
	in := &out.Interface
	in.PrivateKey = st.PrivateKey
	in.ListenPort = int(st.ListenPort)
	if !autoMark {
		in.FwMark = st.FwMark
	}
	if addrs != nil {
		in.Addresses = addrs
	}
	old := map[string]config.Peer{}
	for _, p := range cfg.Peers {
		old[p.PublicKey.String()] = p
	}
	out.Peers = nil
	for _, ps := range st.Peers {
		p := old[ps.PublicKey.String()] // AllowedMACs and the endpoint's name, if any
		p.PublicKey, p.PresharedKey = ps.PublicKey, ps.PresharedKey
		p.AllowedIPs = slices.Clone(ps.AllowedIPs)
		p.PersistentKeepalive = time.Duration(ps.PersistentKeepalive) * time.Second
		if ps.Endpoint.IsValid() && !endpointIsName(p.Endpoint) {
			p.Endpoint = ps.Endpoint.String()
		}
		out.Peers = append(out.Peers, p)
	}
	return &out
}

// endpointIsName reports whether an Endpoint value names its host rather
// than giving its address.
func endpointIsName(ep string) bool {
	if ep == "" {
		return false
	}
	_, err := netip.ParseAddrPort(ep)
	return err != nil
}

// writeFileAtomic replaces path with data: written to a file beside it,
// synced, then renamed over it, so that a crash leaves the old file or the
// new one, never half of one. The new file keeps path's mode (0600 for a
// file that did not exist).
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename; there on failure
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync() // the rename itself on disk
		dir.Close()
	}
	return nil
}
