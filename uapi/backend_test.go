package uapi

import (
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
)

// memBackend is an in-memory Backend with wireguard-go's semantics, applied
// all-or-nothing: the reference the tests hold the protocol to.
type memBackend struct {
	mu       sync.Mutex
	st       memState
	busyPort uint16 // Apply fails with EADDRINUSE for this port
	randPort uint16 // what listen_port=0 picks
	applied  []devconf.DeviceConfig
}

type memState struct {
	priv   protocol.Key
	port   uint16
	fwmark uint32
	peers  map[protocol.Key]*memPeer
	order  []protocol.Key                // creation order
	aips   map[netip.Prefix]protocol.Key // each prefix belongs to one peer
}

type memPeer struct {
	psk       protocol.Key
	endpoint  netip.AddrPort
	keepalive uint16
	handshake time.Time
	rx, tx    uint64
}

func newMemBackend() *memBackend {
	return &memBackend{
		st:       memState{peers: map[protocol.Key]*memPeer{}, aips: map[netip.Prefix]protocol.Key{}},
		randPort: 40404,
	}
}

func (s memState) clone() memState {
	c := s
	c.peers = make(map[protocol.Key]*memPeer, len(s.peers))
	for k, p := range s.peers {
		cp := *p
		c.peers[k] = &cp
	}
	c.order = slices.Clone(s.order)
	c.aips = make(map[netip.Prefix]protocol.Key, len(s.aips))
	for k, v := range s.aips {
		c.aips[k] = v
	}
	return c
}

func (s *memState) removePeer(k protocol.Key) {
	if _, ok := s.peers[k]; !ok {
		return
	}
	delete(s.peers, k)
	s.order = slices.DeleteFunc(s.order, func(o protocol.Key) bool { return o == k })
	for pfx, owner := range s.aips {
		if owner == k {
			delete(s.aips, pfx)
		}
	}
}

func (m *memBackend) Apply(cfg devconf.DeviceConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st.clone()
	if cfg.PrivateKey != nil {
		st.priv = *cfg.PrivateKey
		if !st.priv.IsZero() {
			st.removePeer(st.priv.PublicKey())
		}
	}
	if cfg.ListenPort != nil {
		port := *cfg.ListenPort
		if port != 0 && port == m.busyPort {
			return devconf.Errorf(syscall.EADDRINUSE, "listen on port %d: %w", port, syscall.EADDRINUSE)
		}
		if port == 0 {
			port = m.randPort
		}
		st.port = port
	}
	if cfg.FwMark != nil {
		st.fwmark = *cfg.FwMark
	}
	if cfg.ReplacePeers {
		for _, k := range slices.Clone(st.order) {
			st.removePeer(k)
		}
	}
	for _, pc := range cfg.Peers {
		k := pc.PublicKey
		if !st.priv.IsZero() && k == st.priv.PublicKey() {
			continue // our own key: ignored
		}
		if pc.Remove {
			st.removePeer(k)
			continue
		}
		p, ok := st.peers[k]
		if !ok {
			if pc.UpdateOnly {
				continue
			}
			p = &memPeer{}
			st.peers[k] = p
			st.order = append(st.order, k)
		}
		if pc.PresharedKey != nil {
			p.psk = *pc.PresharedKey
		}
		if pc.Endpoint != nil {
			p.endpoint = *pc.Endpoint
		}
		if pc.PersistentKeepalive != nil {
			p.keepalive = *pc.PersistentKeepalive
		}
		if pc.ReplaceAllowedIPs {
			for pfx, owner := range st.aips {
				if owner == k {
					delete(st.aips, pfx)
				}
			}
		}
		for _, pfx := range pc.RemoveAllowedIPs {
			if st.aips[pfx] == k {
				delete(st.aips, pfx)
			}
		}
		for _, pfx := range pc.AllowedIPs {
			st.aips[pfx] = k
		}
	}
	m.st = st
	m.applied = append(m.applied, cfg)
	return nil
}

func (m *memBackend) Status() devconf.DeviceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.status()
}

func (s memState) status() devconf.DeviceStatus {
	ds := devconf.DeviceStatus{PrivateKey: s.priv, ListenPort: s.port, FwMark: s.fwmark}
	for _, k := range s.order {
		p := s.peers[k]
		ps := devconf.PeerStatus{
			PublicKey:           k,
			PresharedKey:        p.psk,
			Endpoint:            p.endpoint,
			PersistentKeepalive: p.keepalive,
			LastHandshake:       p.handshake,
			RxBytes:             p.rx,
			TxBytes:             p.tx,
			ProtocolVersion:     1,
		}
		for pfx, owner := range s.aips {
			if owner == k {
				ps.AllowedIPs = append(ps.AllowedIPs, pfx)
			}
		}
		slices.SortFunc(ps.AllowedIPs, comparePrefix)
		ds.Peers = append(ds.Peers, ps)
	}
	return ds
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// peer returns a copy of the peer with key k and its allowed IPs.
func (m *memBackend) peer(k protocol.Key) (devconf.PeerStatus, bool) {
	for _, p := range m.Status().Peers {
		if p.PublicKey == k {
			return p, true
		}
	}
	return devconf.PeerStatus{}, false
}

// addPeer adds a peer directly, with counters and a handshake time.
func (m *memBackend) addPeer(k protocol.Key, p memPeer, aips ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.st.peers[k]; !ok {
		m.st.order = append(m.st.order, k)
	}
	m.st.peers[k] = &p
	for _, a := range aips {
		m.st.aips[netip.MustParsePrefix(a)] = k
	}
}

func (m *memBackend) applies() []devconf.DeviceConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.applied)
}
