// Package metrics exports a tunnel.Device in the Prometheus text format,
// through github.com/prometheus/client_golang, read afresh on every scrape.
//
// Two families of WireGuard metrics come by default, under the names,
// labels and types of the two common exporters, so that their dashboards
// and alerts work unchanged (the names do not collide):
//
//   - MindFlavor/prometheus_wireguard_exporter (as with its default flags),
//     labels interface, public_key (the peer's) and allowed_ips (as `wg show
//     dump` prints them: joined by commas, "(none)" for none):
//     wireguard_sent_bytes_total, wireguard_received_bytes_total,
//     wireguard_latest_handshake_seconds (unix seconds, 0: never) and its
//     optional wireguard_latest_handshake_delay_seconds (whole seconds since
//     then; since 1970 for a peer that never made one, as there).
//   - mdlayher/wireguard_exporter, label device: wireguard_device_info
//     (public_key: the device's), wireguard_peer_info (endpoint, name: ""),
//     wireguard_peer_allowed_ips_info (allowed_ips, family IPv4 or IPv6),
//     wireguard_peer_receive_bytes_total, wireguard_peer_transmit_bytes_total
//     and wireguard_peer_last_handshake_seconds (unix seconds, 0: never).
//
// tapwire's own are under tapwire_, label interface (and public_key for a
// peer's): the device's mode and MTU, drops by reason (the counters of
// `tapwire status`), completed handshakes, cookie replies, GSO and GRO
// batches, path MTU work, streams, a TAP device's MAC table, and per peer
// its transport, path MTU, mode mismatches and moves between UDP and TCP.
// README.md lists them.
package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

// counter is one of tunnel.Stats's counters that is not a drop, exported as
// a family of its own.
type counter struct {
	key  string // its name in tunnel.Stats.Map
	name string
	help string
}

// counters are the counters of tunnel.Stats that are not drops. Every
// other counter of tunnel.Stats is a reason of tapwire_drops_total (a test
// checks that each counter is in one list or the other).
var counters = []counter{
	{"handshakes_completed", "tapwire_handshakes_completed_total", "Sessions established with peers, as initiator or responder (each moves a peer's latest handshake)."},
	{"cookies_sent", "tapwire_cookie_replies_sent_total", "Cookie replies sent to handshake messages while the device was under load."},
	{"gso_sends", "tapwire_gso_sends_total", "Sends of several datagrams in one UDP GSO message."},
	{"gro_receives", "tapwire_gro_receives_total", "Receives of several datagrams coalesced by UDP GRO."},
	{"mss_clamped", "tapwire_mss_clamped_total", "TCP SYNs whose MSS was lowered to fit the path."},
	{"fragmented", "tapwire_fragmented_total", "Frames or packets split into fragments for a peer's path."},
	{"fragments_sent", "tapwire_fragments_sent_total", "Fragment messages sent."},
	{"reassembled", "tapwire_reassembled_total", "Frames or packets put together from fragments."},
	{"icmp_too_big", "tapwire_icmp_too_big_sent_total", "ICMP too big messages written to the TUN device for packets over a peer's path."},
	{"ip_fragmented", "tapwire_ip_fragmented_total", "IPv4 packets without DF cut into IPv4 fragments for a peer's path."},
	{"probes_sent", "tapwire_path_probes_sent_total", "Path MTU probes sent."},
	{"probe_replies", "tapwire_path_probe_replies_total", "Path MTU probes answered."},
	{"streams_accepted", "tapwire_streams_accepted_total", "TCP tunnel streams accepted."},
	{"streams_dialed", "tapwire_streams_dialed_total", "TCP tunnel streams dialed."},
}

// dropReasons are the counters of tunnel.Stats that count drops: the
// reason label of tapwire_drops_total, as `tapwire status` names them.
var dropReasons = []string{
	"malformed", "bad_mac", "rate_limited", "unknown_peer", "bad_handshake", "unknown_index",
	"bad_packet", "replayed", "source_mismatch", "no_route", "no_endpoint", "mode_mismatch",
	"flood_limited", "handshakes_dropped", "too_big", "frag_malformed", "frag_duplicate",
	"frag_overlap", "frag_mismatch", "frag_timed_out", "stream_junk", "stream_dropped",
}

// Collector is a prometheus.Collector that reads a tunnel.Device on each
// scrape (one tunnel.Device.Snapshot: a copy of the peers, the device's
// read lock held only while they are copied). It keeps no state between
// scrapes, and is safe for concurrent scrapes.
type Collector struct {
	dev *tunnel.Device
	now func() time.Time // for the handshake delay

	// MindFlavor/prometheus_wireguard_exporter
	mfSent, mfReceived, mfHandshake, mfDelay *prometheus.Desc
	// mdlayher/wireguard_exporter
	mdDevice, mdPeer, mdAllowedIPs, mdReceive, mdTransmit, mdHandshake *prometheus.Desc
	// tapwire
	devInfo, mtu, peers, drops       *prometheus.Desc
	counters                         []*prometheus.Desc // as counters
	macEntries, macLearned, macMoved *prometheus.Desc
	macAged                          *prometheus.Desc
	peerInfo, peerPathMTU            *prometheus.Desc
	peerMismatch, peerMoves          *prometheus.Desc
	peerMACs, peerFloodLimited       *prometheus.Desc
}

// NewCollector returns a Collector of dev's metrics.
func NewCollector(dev *tunnel.Device) *Collector {
	mf := []string{"interface", "public_key", "allowed_ips"}
	md := []string{"device", "public_key"}
	dev1 := []string{"interface"}
	peer := []string{"interface", "public_key"}
	c := &Collector{
		dev: dev,
		now: time.Now,

		mfSent:      prometheus.NewDesc("wireguard_sent_bytes_total", "Bytes sent to the peer", mf, nil),
		mfReceived:  prometheus.NewDesc("wireguard_received_bytes_total", "Bytes received from the peer", mf, nil),
		mfHandshake: prometheus.NewDesc("wireguard_latest_handshake_seconds", "UNIX timestamp seconds of the last handshake", mf, nil),
		mfDelay:     prometheus.NewDesc("wireguard_latest_handshake_delay_seconds", "Seconds from the last handshake", mf, nil),

		mdDevice: prometheus.NewDesc("wireguard_device_info", "Metadata about a device.", md, nil),
		mdPeer: prometheus.NewDesc("wireguard_peer_info",
			"Metadata about a peer. The public_key label on peer metrics refers to the peer's public key; not the device's public key.",
			append(md[:2:2], "endpoint", "name"), nil),
		mdAllowedIPs: prometheus.NewDesc("wireguard_peer_allowed_ips_info",
			"Metadata about each of a peer's allowed IP subnets for a given device.", append(md[:2:2], "allowed_ips", "family"), nil),
		mdReceive:   prometheus.NewDesc("wireguard_peer_receive_bytes_total", "Number of bytes received from a given peer.", md, nil),
		mdTransmit:  prometheus.NewDesc("wireguard_peer_transmit_bytes_total", "Number of bytes transmitted to a given peer.", md, nil),
		mdHandshake: prometheus.NewDesc("wireguard_peer_last_handshake_seconds", "UNIX timestamp for the last handshake with a given peer.", md, nil),

		devInfo: prometheus.NewDesc("tapwire_device_info", "The tapwire device; mode is tun (IP packets) or tap (Ethernet frames).", []string{"interface", "mode"}, nil),
		mtu:     prometheus.NewDesc("tapwire_device_mtu_bytes", "The device's MTU.", dev1, nil),
		peers:   prometheus.NewDesc("tapwire_peers", "Peers configured on the device.", dev1, nil),
		drops: prometheus.NewDesc("tapwire_drops_total",
			"Messages, packets and frames the device dropped, by reason (the counters of tapwire status; switch_*: a TAP device's MAC table).",
			[]string{"interface", "reason"}, nil),

		macEntries: prometheus.NewDesc("tapwire_mac_table_entries", "TAP: addresses in the MAC table, learned and pinned.", dev1, nil),
		macLearned: prometheus.NewDesc("tapwire_mac_table_learned_total", "TAP: addresses learned (new or expired before).", dev1, nil),
		macMoved:   prometheus.NewDesc("tapwire_mac_table_moved_total", "TAP: live addresses that moved to another peer.", dev1, nil),
		macAged:    prometheus.NewDesc("tapwire_mac_table_aged_total", "TAP: addresses forgotten because they were not seen for the ageing time.", dev1, nil),

		peerInfo: prometheus.NewDesc("tapwire_peer_info",
			"A peer: transport is how it is configured to be reached (udp, tcp, auto), active_transport what carries it now (udp, tcp); tapwire is true when it speaks tapwire's extensions.",
			[]string{"interface", "public_key", "transport", "active_transport", "tapwire"}, nil),
		peerPathMTU: prometheus.NewDesc("tapwire_peer_path_mtu_bytes",
			"The path MTU to the peer: the largest IP datagram, outer headers included (only while known).", peer, nil),
		peerMismatch: prometheus.NewDesc("tapwire_peer_mode_mismatches_total",
			"Authentic messages of the other mode (TUN or TAP) received from the peer.", peer, nil),
		peerMoves: prometheus.NewDesc("tapwire_peer_transport_moves_total",
			"An auto peer's moves between UDP and TCP, by the transport moved to.", []string{"interface", "public_key", "to"}, nil),
		peerMACs:         prometheus.NewDesc("tapwire_peer_mac_table_entries", "TAP: addresses learned behind the peer.", peer, nil),
		peerFloodLimited: prometheus.NewDesc("tapwire_peer_flood_limited_total", "TAP: the peer's frames to flood dropped over the flood limit.", peer, nil),
	}
	for _, ctr := range counters {
		c.counters = append(c.counters, prometheus.NewDesc(ctr.name, ctr.help, dev1, nil))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.mfSent, c.mfReceived, c.mfHandshake, c.mfDelay,
		c.mdDevice, c.mdPeer, c.mdAllowedIPs, c.mdReceive, c.mdTransmit, c.mdHandshake,
		c.devInfo, c.mtu, c.peers, c.drops, c.macEntries, c.macLearned, c.macMoved, c.macAged,
		c.peerInfo, c.peerPathMTU, c.peerMismatch, c.peerMoves, c.peerMACs, c.peerFloodLimited,
	} {
		ch <- d
	}
	for _, d := range c.counters {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, in := c.dev.Snapshot()
	now := c.now()
	name := in.Name
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	count := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	var devKey protocol.Key // zero without a private key, as wgctrl reports it
	if !st.PrivateKey.IsZero() {
		devKey = st.PrivateKey.PublicKey()
	}
	gauge(c.mdDevice, 1, name, devKey.String())
	gauge(c.devInfo, 1, name, in.Mode)
	gauge(c.mtu, float64(in.MTU), name)
	gauge(c.peers, float64(len(st.Peers)), name)
	for _, r := range dropReasons {
		count(c.drops, in.Counters[r], name, r)
	}
	for i, ctr := range counters {
		count(c.counters[i], in.Counters[ctr.key], name)
	}
	tap := in.Switch != nil
	if tap {
		sw := in.Switch
		for _, r := range []struct {
			reason string
			v      uint64
		}{
			{"switch_cap_hit", sw.CapHit}, {"switch_not_allowed", sw.NotAllowed}, {"switch_bad_source", sw.BadSource},
			{"switch_hairpin", sw.Hairpin}, {"switch_malformed", sw.Malformed}, {"switch_pinned", sw.Pinned},
		} {
			count(c.drops, r.v, name, r.reason)
		}
		gauge(c.macEntries, float64(in.MACCount), name)
		count(c.macLearned, sw.Learned, name)
		count(c.macMoved, sw.Moved, name)
		count(c.macAged, sw.Aged, name)
	}

	// Info's peers are Status's, in the same order, with tapwire's fields.
	byKey := make(map[string]*tunnel.PeerInfo, len(in.Peers))
	for i := range in.Peers {
		byKey[in.Peers[i].PublicKey] = &in.Peers[i]
	}
	var b strings.Builder
	for _, ps := range st.Peers {
		pub := ps.PublicKey.String()
		b.Reset()
		for i, p := range ps.AllowedIPs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(p.String())
		}
		if b.Len() == 0 {
			b.WriteString("(none)")
		}
		allowed := b.String()
		var last, delay float64
		if !ps.LastHandshake.IsZero() {
			last = float64(ps.LastHandshake.Unix())
		}
		// As the exporter computes it: from the unix seconds (0: never).
		if d := now.Unix() - int64(last); d > 0 {
			delay = float64(d)
		}
		count(c.mfSent, ps.TxBytes, name, pub, allowed)
		count(c.mfReceived, ps.RxBytes, name, pub, allowed)
		gauge(c.mfHandshake, last, name, pub, allowed)
		gauge(c.mfDelay, delay, name, pub, allowed)

		var endpoint string
		if ps.Endpoint.IsValid() {
			endpoint = netip.AddrPortFrom(ps.Endpoint.Addr().Unmap(), ps.Endpoint.Port()).String()
		}
		gauge(c.mdPeer, 1, name, pub, endpoint, "")
		for _, p := range ps.AllowedIPs {
			family := "IPv6"
			if p.Addr().Unmap().Is4() {
				family = "IPv4"
			}
			gauge(c.mdAllowedIPs, 1, name, pub, p.String(), family)
		}
		count(c.mdReceive, ps.RxBytes, name, pub)
		count(c.mdTransmit, ps.TxBytes, name, pub)
		gauge(c.mdHandshake, last, name, pub)

		pi := byKey[pub]
		if pi == nil {
			continue
		}
		active := "udp"
		if pi.Stream != "" {
			active = "tcp"
		}
		gauge(c.peerInfo, 1, name, pub, pi.Transport, active, fmt.Sprint(pi.Tapwire))
		if pi.PathMTU > 0 {
			gauge(c.peerPathMTU, float64(pi.PathMTU), name, pub)
		}
		count(c.peerMismatch, pi.ModeMismatch, name, pub)
		count(c.peerMoves, pi.ToTCP, name, pub, "tcp")
		count(c.peerMoves, pi.ToUDP, name, pub, "udp")
		if tap {
			gauge(c.peerMACs, float64(pi.MACs), name, pub)
			count(c.peerFloodLimited, pi.FloodLimited, name, pub)
		}
	}
}

// NewRegistry returns a registry of dev's metrics (a Collector), and of
// the Go runtime's and the process's, as exporters have them.
func NewRegistry(dev *tunnel.Device) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(dev), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg's metrics at /metrics (with promhttp's own counts of
// scrapes), and at / a page that links there; any other path is not
// found. Errors gathering metrics are logged to log and the metrics that
// could be gathered are served.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog{log},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html>\n<title>tapwire</title>\n<p>tapwire: <a href=\"/metrics\">metrics</a>\n")
	})
	return mux
}

// errorLog is a promhttp.Logger on slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Println(v ...any) { e.log.Error("metrics", "err", fmt.Sprint(v...)) }
