package tunnel

import (
	"time"

	"github.com/tapwire/tapwire/l2switch"
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
	MSS4       uint16            `json:"clamp_mss4,omitempty"` // MSS clamp, 0: off
	MSS6       uint16            `json:"clamp_mss6,omitempty"`
	AgeingSec  float64           `json:"mac_ageing_seconds,omitempty"`
	Peers      []PeerInfo        `json:"peers"`
	MACs       []MACInfo         `json:"macs,omitempty"`
	Counters   map[string]uint64 `json:"counters"`
	Switch     *l2switch.Stats   `json:"switch,omitempty"`
}

// PeerInfo is one peer in an Info.
type PeerInfo struct {
	PublicKey     string   `json:"public_key"`
	Endpoint      string   `json:"endpoint,omitempty"`
	LastHandshake int64    `json:"last_handshake_unix,omitempty"`
	RxBytes       uint64   `json:"rx_bytes"`
	TxBytes       uint64   `json:"tx_bytes"`
	ModeMismatch  uint64   `json:"mode_mismatch,omitempty"` // messages of the other mode received
	MACs          int      `json:"macs,omitempty"`          // TAP: addresses learned behind the peer
	AllowedMACs   []string `json:"allowed_macs,omitempty"`
}

// MACInfo is one learned address of a TAP device's switch.
type MACInfo struct {
	MAC    string  `json:"mac"`
	Peer   string  `json:"peer,omitempty"` // public key; empty: the local tap device
	AgeSec float64 `json:"age_seconds"`
}

// Info reports the device's mode, peers, MAC table and counters.
func (d *Device) Info() any {
	now := time.Now()
	st := d.Status()
	in := Info{Name: d.tun.Name(), Mode: "tun", MTU: d.mtu, ListenPort: st.ListenPort, MSS4: d.mss4, MSS6: d.mss6}
	if d.mode == tun.ModeTAP {
		in.Mode, in.MaxFrame, in.AgeingSec = "tap", d.maxFrame, d.sw.Ageing().Seconds()
	}
	perPeer := map[string]int{}
	if d.sw != nil {
		for _, e := range d.sw.Entries(now) {
			mi := MACInfo{MAC: e.MAC.String(), AgeSec: e.Age.Round(time.Millisecond).Seconds()}
			if e.Port != nil {
				mi.Peer = e.Port.public.String()
				perPeer[mi.Peer]++
			}
			in.MACs = append(in.MACs, mi)
		}
		ss := d.sw.Stats()
		in.Switch = &ss
	}
	d.mu.RLock()
	for _, ps := range st.Peers {
		key := ps.PublicKey.String()
		pi := PeerInfo{PublicKey: key, RxBytes: ps.RxBytes, TxBytes: ps.TxBytes, MACs: perPeer[key]}
		if ps.Endpoint.IsValid() {
			pi.Endpoint = ps.Endpoint.String()
		}
		if !ps.LastHandshake.IsZero() {
			pi.LastHandshake = ps.LastHandshake.Unix()
		}
		if p := d.peers[ps.PublicKey]; p != nil {
			pi.ModeMismatch = p.mismatch.Load()
		}
		for _, m := range d.allowedMACs[ps.PublicKey] {
			pi.AllowedMACs = append(pi.AllowedMACs, m.String())
		}
		in.Peers = append(in.Peers, pi)
	}
	d.mu.RUnlock()
	s := &d.stats
	in.Counters = map[string]uint64{
		"malformed":       s.Malformed.Load(),
		"bad_mac":         s.BadMAC.Load(),
		"cookies_sent":    s.CookiesSent.Load(),
		"rate_limited":    s.RateLimited.Load(),
		"unknown_peer":    s.UnknownPeer.Load(),
		"bad_handshake":   s.BadHandshake.Load(),
		"unknown_index":   s.UnknownIndex.Load(),
		"bad_packet":      s.BadPacket.Load(),
		"replayed":        s.Replayed.Load(),
		"source_mismatch": s.SourceMismatch.Load(),
		"no_route":        s.NoRoute.Load(),
		"no_endpoint":     s.NoEndpoint.Load(),
		"mode_mismatch":   s.ModeMismatch.Load(),
		"too_big":         s.TooBig.Load(),
		"mss_clamped":     s.MSSClamped.Load(),
	}
	return in
}
