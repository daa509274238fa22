package tunnel

import (
	"reflect"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
)

// Info is what `tapwire status` shows of a device, more than `wg show`
// does: the mode, the peers with their mode mismatches, the MAC table of a
// TAP device and every drop counter. It is served as JSON over the UAPI
// socket (see uapi.InfoBackend).
type Info struct {
	Name       string            `json:"name"`
	Mode       string            `json:"mode"` // "tun" or "tap"
	MTU        int               `json:"mtu"`
	MaxFrame   int               `json:"max_frame,omitempty"` // TAP: largest frame carried
	ListenPort uint16            `json:"listen_port"`
	ListenTCP  uint16            `json:"listen_tcp,omitempty"` // TCP port accepting tunnel streams, 0: none
	MSS4       uint16            `json:"clamp_mss4,omitempty"` // MSS clamp, 0: off
	MSS6       uint16            `json:"clamp_mss6,omitempty"`
	AgeingSec  float64           `json:"mac_ageing_seconds,omitempty"`
	TapMAC     string            `json:"tap_mac,omitempty"`     // TAP: the tap's own address, pinned to it in the switch
	FloodLimit uint32            `json:"flood_limit,omitempty"` // TAP: frames each peer may have flooded per second, 0: no limit
	Peers      []PeerInfo        `json:"peers"`
	MACs       []MACInfo         `json:"macs,omitempty"`
	MACCount   int               `json:"mac_count,omitempty"` // TAP: live and pinned addresses in the switch (MACs has them unless from Snapshot)
	Counters   map[string]uint64 `json:"counters"`
	Switch     *l2switch.Stats   `json:"switch,omitempty"`
}

// PeerInfo is one peer in an Info.
type PeerInfo struct {
	PublicKey     string `json:"public_key"`
	Endpoint      string `json:"endpoint,omitempty"`
	EndpointName  string `json:"endpoint_name,omitempty"` // host:port the endpoint follows (SetEndpointName)
	LastHandshake int64  `json:"last_handshake_unix,omitempty"`
	RxBytes       uint64 `json:"rx_bytes"`
	TxBytes       uint64 `json:"tx_bytes"`
	ModeMismatch  uint64 `json:"mode_mismatch,omitempty"` // messages of the other mode received
	// The path to the peer: its MTU (the largest IP datagram, outer headers
	// included; 0 while unknown), how it was learned ("route": the local
	// route's MTU; "start": the safe 1280 a path starts from when the
	// engine can split; "probe": probes the peer answered; "icmp": a
	// router's report; "local": this host's interface), how long ago, and
	// the largest frame (TAP) or packet (TUN) one datagram carries.
	PathMTU       int     `json:"path_mtu,omitempty"`
	PathMTUSource string  `json:"path_mtu_source,omitempty"`
	PathMTUAgeSec float64 `json:"path_mtu_age_seconds,omitempty"`
	MaxWhole      int     `json:"max_unfragmented,omitempty"`
	// MSS4 and MSS6 are the MSS clamp of TCP connections through the peer:
	// the device's, lowered to what one datagram on its path carries (0:
	// clamping off).
	MSS4 uint16 `json:"clamp_mss4,omitempty"`
	MSS6 uint16 `json:"clamp_mss6,omitempty"`
	// Tapwire: the peer speaks tapwire's extensions (probes, fragments);
	// false for a WireGuard peer, which gets neither.
	Tapwire bool `json:"tapwire"`
	// Transport is how the peer is configured to be reached (udp, tcp,
	// auto); Stream the TCP stream it is reached by now ("" over UDP);
	// ToTCP and ToUDP count an auto peer's moves between the two.
	Transport   string   `json:"transport"`
	Stream      string   `json:"stream,omitempty"`
	ToTCP       uint64   `json:"moves_to_tcp,omitempty"`
	ToUDP       uint64   `json:"moves_to_udp,omitempty"`
	MACs        int      `json:"macs,omitempty"` // TAP: addresses learned behind the peer
	AllowedMACs []string `json:"allowed_macs,omitempty"`
	// AnyMAC (TAP hub): the peer has no AllowedMACs, so it may send from
	// any address but the tap's and take over the other peers' hosts.
	AnyMAC bool `json:"any_mac,omitempty"`
	// FloodLimited counts the peer's frames to flood dropped over the
	// device's FloodLimit.
	FloodLimited uint64 `json:"flood_limited,omitempty"`
}

// MACInfo is one learned address of a TAP device's switch.
type MACInfo struct {
	MAC    string  `json:"mac"`
	Peer   string  `json:"peer,omitempty"` // public key; empty: the local tap device
	AgeSec float64 `json:"age_seconds"`
	Pinned bool    `json:"pinned,omitempty"` // the tap's own address: no peer may take it over
}

// Info reports the device's mode, peers, MAC table and counters.
func (d *Device) Info() any { return d.info(d.Status(), true) }

// Snapshot returns the device's status and its Info, made from the same
// copy of the status, but without the MAC table's entries: Info.MACs is
// nil, and Info.MACCount and each PeerInfo.MACs count them. It is what a
// metrics scrape reads every few seconds: one copy of the peers, no string
// per address, and the device's read lock held only while the peers'
// fields are copied, as for Info.
func (d *Device) Snapshot() (devconf.DeviceStatus, Info) {
	st := d.Status()
	return st, d.info(st, false)
}

// info builds an Info from st; withMACs lists the MAC table's entries.
func (d *Device) info(st devconf.DeviceStatus, withMACs bool) Info {
	now := d.now()
	in := Info{Name: d.tun.Name(), Mode: "tun", MTU: d.mtu, ListenPort: st.ListenPort, MSS4: d.mss4, MSS6: d.mss6}
	d.mu.RLock()
	in.ListenTCP = d.listenTCP
	d.mu.RUnlock()
	if d.mode == tun.ModeTAP {
		in.Mode, in.MaxFrame, in.AgeingSec = "tap", d.maxFrame, d.sw.Ageing().Seconds()
		in.FloodLimit = d.hub.floodLimit.Load()
		if mac, ok := d.tapMAC(); ok {
			in.TapMAC = mac.String()
		}
	}
	perPeer := map[protocol.Key]int{}
	if d.sw != nil {
		entries := d.sw.Entries(now)
		in.MACCount = len(entries)
		for _, e := range entries {
			if e.Port != nil {
				perPeer[e.Port.public]++
			}
			if !withMACs {
				continue
			}
			mi := MACInfo{MAC: e.MAC.String(), AgeSec: e.Age.Round(time.Millisecond).Seconds(), Pinned: e.Pinned}
			if e.Port != nil {
				mi.Peer = e.Port.public.String()
			}
			in.MACs = append(in.MACs, mi)
		}
		ss := d.sw.Stats()
		in.Switch = &ss
	}
	d.mu.RLock()
	for _, ps := range st.Peers {
		key := ps.PublicKey.String()
		pi := PeerInfo{PublicKey: key, RxBytes: ps.RxBytes, TxBytes: ps.TxBytes, MACs: perPeer[ps.PublicKey]}
		if ps.Endpoint.IsValid() {
			pi.Endpoint = ps.Endpoint.String()
		}
		if !ps.LastHandshake.IsZero() {
			pi.LastHandshake = ps.LastHandshake.Unix()
		}
		if p := d.peers[ps.PublicKey]; p != nil {
			pi.ModeMismatch = p.mismatch.Load()
			pi.FloodLimited = p.flood.dropped.Load()
			pi.AnyMAC = d.anyMAC(ps.PublicKey)
			pi.Tapwire = p.canSplit()
			pi.Transport = devconf.Transport(p.transport.Load()).String()
			if st := p.stream.Load(); st != nil {
				pi.Stream = st.String()
			}
			pi.ToTCP, pi.ToUDP = p.toTCP.Load(), p.toUDP.Load()
			if n := p.epName.Load(); n != nil {
				pi.EndpointName = *n
			}
			if m := p.mss.Load(); m != 0 {
				pi.MSS4, pi.MSS6 = uint16(m>>16), uint16(m)
			} else {
				pi.MSS4, pi.MSS6 = d.mss4, d.mss6
			}
			if ep := p.endpoint.Load(); ep != nil {
				if plain := p.maxPlain(*ep); plain > 0 {
					pi.PathMTU, pi.MaxWhole = int(p.pmtu.Load()), plain
					if d.mode == tun.ModeTAP {
						pi.MaxWhole -= frameLenSize
					}
					p.path.mu.Lock()
					pi.PathMTUSource = p.path.source
					if !p.path.learned.IsZero() {
						pi.PathMTUAgeSec = now.Sub(p.path.learned).Round(time.Second).Seconds()
					}
					p.path.mu.Unlock()
				}
			}
		}
		for _, m := range d.allowedMACs[ps.PublicKey] {
			pi.AllowedMACs = append(pi.AllowedMACs, m.String())
		}
		in.Peers = append(in.Peers, pi)
	}
	d.mu.RUnlock()
	in.Counters = d.stats.Map()
	return in
}

// Map returns every counter by its name in status and metrics: the field's
// name in snake case (BadMAC: bad_mac, GSOSends: gso_sends).
func (s *Stats) Map() map[string]uint64 {
	v := reflect.ValueOf(s).Elem()
	m := make(map[string]uint64, v.NumField())
	for i := range v.NumField() {
		if c, ok := v.Field(i).Addr().Interface().(*atomic.Uint64); ok {
			m[snake(v.Type().Field(i).Name)] = c.Load()
		}
	}
	return m
}

// snake turns a Go name into snake case, an acronym being one word.
func snake(name string) string {
	var b strings.Builder
	r := []rune(name)
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 &&
			(unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
