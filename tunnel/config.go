package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
)

// Apply changes the configuration as one `wg set` transaction does (see
// package devconf): private key, listen port, fwmark, TCP listener, flood
// limit, peers and their keys, endpoints, keepalives, transports and
// allowed IPs. In TAP mode it warns, once per peer, about peers without
// AllowedMACs when there are two peers or more (see SetAllowedMACs). A
// failure's *devconf.Error carries the errno the UAPI reports: ENODEV when
// the device is closed, EADDRINUSE when a port cannot be bound or the
// fwmark set, EINVAL for an unknown Transport.
func (d *Device) Apply(c devconf.DeviceConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
		return &devconf.Error{Errno: int(syscall.ENODEV), Err: errors.New("tunnel: the device is closed")}
	default:
	}
	for _, pc := range c.Peers { // refused before anything changes
		if pc.Transport != nil && *pc.Transport > devconf.TransportAuto {
			return devconf.Errorf(syscall.EINVAL, "tunnel: peer %s: unknown %v", pc.PublicKey, *pc.Transport)
		}
	}
	// What can fail comes first, and changes nothing it cannot take back:
	// a new socket is installed only once everything else succeeded.
	var newConn PacketConn
	fail := func(err error) error {
		if newConn != nil {
			newConn.Close()
		}
		return &devconf.Error{Errno: int(syscall.EADDRINUSE), Err: err} // as wireguard-go reports them
	}
	if c.ListenPort != nil && *c.ListenPort != d.listenPort {
		var err error
		if newConn, err = d.openConn(*c.ListenPort); err != nil {
			return fail(err)
		}
	}
	mark := d.fwmark
	if c.FwMark != nil {
		mark = *c.FwMark
	}
	markSet := false
	switch {
	case newConn != nil && mark != 0:
		if err := newConn.SetMark(mark); err != nil {
			return fail(fmt.Errorf("tunnel: set fwmark %#x: %w", mark, err))
		}
	case newConn == nil && mark != d.fwmark:
		if err := d.conn.SetMark(mark); err != nil {
			return fail(fmt.Errorf("tunnel: set fwmark %#x: %w", mark, err))
		}
		markSet = true
	}
	if c.ListenTCP != nil && *c.ListenTCP != d.listenTCP {
		if err := d.listenStream(*c.ListenTCP); err != nil {
			if markSet {
				d.conn.SetMark(d.fwmark)
			}
			return fail(err)
		}
	}
	// From here on nothing fails. The peer list (for flooding and the
	// timers) is published once, at the end: a transaction of N peers
	// costs O(N), not O(N²).
	peersChanged := false
	d.fwmark = mark
	d.mark.Store(mark)
	if c.FloodLimit != nil {
		d.hub.floodLimit.Store(*c.FloodLimit)
	}
	if newConn != nil {
		d.installConn(newConn)
	}
	if c.PrivateKey != nil && d.setPrivateKey(*c.PrivateKey) {
		peersChanged = true
	}
	if c.ReplacePeers && len(d.peers) > 0 {
		for k := range d.peers {
			d.removePeer(k)
		}
		peersChanged = true
	}
	var keepaliveNow []*Peer
	for _, pc := range c.Peers {
		if pc.Remove {
			if d.peers[pc.PublicKey] != nil {
				d.removePeer(pc.PublicKey)
				peersChanged = true
			}
			continue
		}
		p := d.peers[pc.PublicKey]
		if p == nil {
			if pc.UpdateOnly {
				continue
			}
			if d.local != nil && pc.PublicKey.Equal(d.local.PublicKey()) {
				continue // a peer cannot be ourselves, as in wireguard-go
			}
			p = newPeer(d, pc.PublicKey)
			d.peers[pc.PublicKey] = p
			peersChanged = true
			if macs := d.allowedMACs[pc.PublicKey]; d.sw != nil && len(macs) > 0 {
				d.sw.SetAllowed(p, macs)
			}
		}
		if pc.PresharedKey != nil {
			p.mu.Lock()
			p.psk = *pc.PresharedKey
			if p.hs != nil {
				p.hs.SetPresharedKey(p.psk)
				p.hsr.SetPresharedKey(p.psk)
			}
			p.mu.Unlock()
		}
		if pc.Endpoint != nil {
			p.setEndpoint(*pc.Endpoint)
			p.epName.Store(nil) // an address given now wins over a name
		}
		if pc.Transport != nil {
			p.setTransport(*pc.Transport)
		}
		if pc.PersistentKeepalive != nil {
			old := p.keepalive.Swap(uint32(*pc.PersistentKeepalive))
			if old == 0 && *pc.PersistentKeepalive > 0 {
				keepaliveNow = append(keepaliveNow, p)
			}
		}
		if pc.Transport != nil || pc.PersistentKeepalive != nil {
			p.wake()
		}
		if pc.ReplaceAllowedIPs {
			d.dropAllowedIPs(p)
		}
		for _, prefix := range pc.RemoveAllowedIPs {
			prefix = prefix.Masked()
			if _, ok := p.allowed[prefix]; ok {
				delete(p.allowed, prefix)
				d.routes.Remove(prefix)
			}
		}
		for _, prefix := range pc.AllowedIPs {
			prefix = prefix.Masked()
			if !prefix.IsValid() {
				continue
			}
			old, had := d.routes.Swap(prefix, p)
			switch {
			case had && old == p:
				continue // already its
			case had: // taken from another peer, as in WireGuard
				delete(old.allowed, prefix)
			}
			if p.allowed == nil {
				p.allowed = make(map[netip.Prefix]struct{}, len(pc.AllowedIPs))
			}
			p.allowed[prefix] = struct{}{}
		}
	}
	if peersChanged {
		d.updatePeerList()
	}
	d.warnAnyMAC()
	// As wireguard-go: turning on a persistent keepalive sends one at once,
	// which also makes the first handshake without waiting for traffic.
	for _, p := range keepaliveNow {
		go p.sendKeepalive()
	}
	return nil
}

// setPrivateKey installs a new static key: every peer's handshake state is
// rebuilt and its keypairs dropped; a peer whose key is the new public key
// is removed (reported by removed). The caller holds d.mu and publishes the
// peer list (updatePeerList) when a peer was removed.
func (d *Device) setPrivateKey(k protocol.Key) (removed bool) {
	if k.Equal(d.privateKey) && d.local != nil {
		return false
	}
	d.privateKey = k
	if k.IsZero() {
		d.local, d.checker = nil, nil
	} else {
		d.local = protocol.NewLocal(k)
		d.checker = protocol.NewCookieChecker(d.local.PublicKey())
	}
	for key, p := range d.peers {
		if d.local != nil && key.Equal(d.local.PublicKey()) {
			d.removePeer(key)
			removed = true
			continue
		}
		p.mu.Lock()
		p.dropKeypairs()
		d.indices.del(p.hsIndex)
		p.hsIndex = 0
		// The initiations already accepted stay refused: a replay must
		// not pass because the key changed and changed back.
		if p.hsr != nil {
			p.replay = p.hsr.ReplayState()
		}
		p.hs, p.hsr = nil, nil
		if d.local != nil {
			p.hs, p.hsr = protocol.NewHandshakePair(d.local, key, p.psk)
			p.hsr.SetReplayState(p.replay)
		}
		p.mu.Unlock()
	}
	return removed
}

// removePeer forgets a peer, in O(its allowed IPs). The caller holds d.mu
// and publishes the peer list (updatePeerList) once it is done.
func (d *Device) removePeer(k protocol.Key) {
	p := d.peers[k]
	if p == nil {
		return
	}
	delete(d.peers, k)
	p.zeroKeys() // first: a frame on its way learns nothing once the port is gone
	d.dropAllowedIPs(p)
	if d.sw != nil {
		d.sw.RemovePort(p)
	}
	if st := p.stream.Swap(nil); st != nil {
		st.close()
	}
}

// dropAllowedIPs removes p's allowed IPs from the routes, one by one. The
// caller holds d.mu.
func (d *Device) dropAllowedIPs(p *Peer) {
	for prefix := range p.allowed {
		d.routes.Remove(prefix)
	}
	p.allowed = nil
}

// Status reports the configuration and the peers' counters, as `wg show`
// prints them, the peers sorted by public key (base64) and each one's
// allowed IPs as netip.Prefix.Compare sorts them. It costs O(peers + allowed
// IPs), plus the sorts; the device's lock is held only while the peers and
// their allowed IPs are copied.
func (d *Device) Status() devconf.DeviceStatus {
	d.mu.RLock()
	s := devconf.DeviceStatus{PrivateKey: d.privateKey, ListenPort: d.listenPort, FwMark: d.fwmark}
	peers := make([]*Peer, 0, len(d.peers))
	allowed := make([][]netip.Prefix, 0, len(d.peers))
	for _, p := range d.peers {
		peers = append(peers, p)
		var ps []netip.Prefix
		if len(p.allowed) > 0 {
			ps = make([]netip.Prefix, 0, len(p.allowed))
			for prefix := range p.allowed {
				ps = append(ps, prefix)
			}
		}
		allowed = append(allowed, ps)
	}
	d.mu.RUnlock()
	s.Peers = make([]devconf.PeerStatus, len(peers))
	for i, p := range peers {
		p.mu.Lock()
		psk := p.psk
		p.mu.Unlock()
		ps := &s.Peers[i]
		*ps = devconf.PeerStatus{
			PublicKey:           p.public,
			PresharedKey:        psk,
			PersistentKeepalive: uint16(p.keepalive.Load()),
			RxBytes:             p.rxBytes.Load(),
			TxBytes:             p.txBytes.Load(),
			AllowedIPs:          allowed[i],
			ProtocolVersion:     1,
		}
		slices.SortFunc(ps.AllowedIPs, netip.Prefix.Compare)
		if ep := p.endpoint.Load(); ep != nil {
			ps.Endpoint = *ep
		}
		if t := p.lastHS.Load(); t != 0 {
			ps.LastHandshake = time.Unix(0, t)
		}
	}
	// Sorted by the keys' base64, computed once per peer.
	order := make([]int, len(peers))
	names := make([]string, len(peers))
	for i, p := range peers {
		order[i], names[i] = i, p.public.String()
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	sorted := make([]devconf.PeerStatus, len(peers))
	for i, j := range order {
		sorted[i] = s.Peers[j]
	}
	s.Peers = sorted
	return s
}

// String describes the device for logs.
func (d *Device) String() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return fmt.Sprintf("%s (port %d, %d peers)", d.tun.Name(), d.listenPort, len(d.peers))
}
