package metrics

// The collector on engines in memory (internal/memnet): no root, no
// kernel, in parallel; the engines handshake for real, and the clock
// moves only when told, so the handshake times are known.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/memnet"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tun"
	"github.com/tapwire/tapwire/tunnel"
)

// end is one engine on the in-memory network.
type end struct {
	d     *tunnel.Device
	dev   *memnet.Device
	key   protocol.Key
	under netip.AddrPort
	inner netip.Addr // TUN: its tunnel address
}

func (e *end) pub() protocol.Key { return e.key.PublicKey() }

type world struct {
	net   *memnet.Network
	clock *memnet.Clock
}

func newWorld() *world {
	w := &world{net: memnet.NewNetwork(), clock: memnet.NewClock(time.Unix(1_750_000_000, 0))}
	w.clock.Settle(w.net.WaitIdle)
	return w
}

func (w *world) start(t *testing.T, name string, mode tun.Mode, under, inner string) *end {
	t.Helper()
	mtu := 1420
	if mode == tun.ModeTAP {
		mtu = 1500
	}
	e := &end{dev: memnet.NewDevice(name, mode, mtu), under: netip.MustParseAddrPort(under)}
	if inner != "" {
		e.inner = netip.MustParseAddr(inner)
	}
	d, err := tunnel.New(e.dev, tunnel.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Network: w.net.Host(e.under.Addr()), Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e.d = d
	if e.key, err = protocol.GeneratePrivateKey(); err != nil {
		t.Fatal(err)
	}
	port := e.under.Port()
	if err := d.Apply(devconf.DeviceConfig{PrivateKey: &e.key, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect makes b a peer of a, at b's endpoint, with allowed IPs.
func connect(t *testing.T, a, b *end, allowed ...string) {
	t.Helper()
	pc := devconf.PeerConfig{PublicKey: b.pub(), Endpoint: &b.under}
	for _, p := range allowed {
		pc.AllowedIPs = append(pc.AllowedIPs, netip.MustParsePrefix(p))
	}
	if err := a.d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{pc}}); err != nil {
		t.Fatal(err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	t.Cleanup(cancel)
	return ctx
}

// udp sends a UDP packet from a's tunnel address to b's through a's device
// and waits for b's device to deliver it.
func udp(t *testing.T, a, b *end, payload string) {
	t.Helper()
	pkt := memnet.UDP(netip.AddrPortFrom(a.inner, 1000), netip.AddrPortFrom(b.inner, 2000), []byte(payload))
	if err := a.dev.Send(testCtx(t), pkt); err != nil {
		t.Fatal(err)
	}
	for ctx := testCtx(t); ; {
		got, err := b.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("%q never arrived at %s: %v", payload, b.d.Name(), err)
		}
		if string(memnet.Payload(got)) == payload {
			return
		}
	}
}

// eventually waits until cond holds (a deadline for a hang, not a measure
// of speed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(time.Millisecond) { // a hang guard
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// families are gathered metric families by name.
type families map[string]*dto.MetricFamily

// gather collects c through a pedantic registry (which checks each metric
// against its description) after linting it.
func gather(t *testing.T, c *Collector) families {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fs := families{}
	for _, mf := range mfs {
		fs[mf.GetName()] = mf
	}
	return fs
}

func labelsOf(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// find returns the metrics of family name whose labels include want.
func (fs families) find(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := fs[name]
	if mf == nil {
		return nil
	}
metrics:
	for _, m := range mf.GetMetric() {
		l := labelsOf(m)
		for k, v := range want {
			if l[k] != v {
				continue metrics
			}
		}
		out = append(out, m)
	}
	return out
}

// value returns the value of the one metric of family name with labels
// including want, failing the test if there is not exactly one.
func (fs families) value(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	ms := fs.find(name, want)
	if len(ms) != 1 {
		t.Errorf("%s%v: %d series, want 1", name, want, len(ms))
		return -1
	}
	switch m := ms[0]; {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Errorf("%s: neither a counter nor a gauge", name)
	return -1
}

// exporterFamilies are the families of the two exporters as they name,
// type, describe and label them (MindFlavor/prometheus_wireguard_exporter
// 3.6.6 with its default flags, and its -d delay; mdlayher/wireguard_exporter).
var exporterFamilies = []struct {
	name, help string
	typ        dto.MetricType
	labels     []string
}{
	{"wireguard_sent_bytes_total", "Bytes sent to the peer", dto.MetricType_COUNTER, []string{"allowed_ips", "interface", "public_key"}},
	{"wireguard_received_bytes_total", "Bytes received from the peer", dto.MetricType_COUNTER, []string{"allowed_ips", "interface", "public_key"}},
	{"wireguard_latest_handshake_seconds", "UNIX timestamp seconds of the last handshake", dto.MetricType_GAUGE, []string{"allowed_ips", "interface", "public_key"}},
	{"wireguard_latest_handshake_delay_seconds", "Seconds from the last handshake", dto.MetricType_GAUGE, []string{"allowed_ips", "interface", "public_key"}},
	{"wireguard_device_info", "Metadata about a device.", dto.MetricType_GAUGE, []string{"device", "public_key"}},
	{"wireguard_peer_info", "Metadata about a peer. The public_key label on peer metrics refers to the peer's public key; not the device's public key.", dto.MetricType_GAUGE, []string{"device", "endpoint", "name", "public_key"}},
	{"wireguard_peer_allowed_ips_info", "Metadata about each of a peer's allowed IP subnets for a given device.", dto.MetricType_GAUGE, []string{"allowed_ips", "device", "family", "public_key"}},
	{"wireguard_peer_receive_bytes_total", "Number of bytes received from a given peer.", dto.MetricType_COUNTER, []string{"device", "public_key"}},
	{"wireguard_peer_transmit_bytes_total", "Number of bytes transmitted to a given peer.", dto.MetricType_COUNTER, []string{"device", "public_key"}},
	{"wireguard_peer_last_handshake_seconds", "UNIX timestamp for the last handshake with a given peer.", dto.MetricType_GAUGE, []string{"device", "public_key"}},
}

// checkExporterFamilies checks the exporters' families in fs: all there
// but those named empty (a family without series is not gathered).
func checkExporterFamilies(t *testing.T, fs families, empty ...string) {
	t.Helper()
	for _, want := range exporterFamilies {
		mf := fs[want.name]
		if slices.Contains(empty, want.name) {
			if mf != nil {
				t.Errorf("%s: %d series, want none", want.name, len(mf.GetMetric()))
			}
			continue
		}
		if mf == nil {
			t.Errorf("no %s", want.name)
			continue
		}
		if mf.GetHelp() != want.help || mf.GetType() != want.typ {
			t.Errorf("%s: help %q type %v, want %q %v", want.name, mf.GetHelp(), mf.GetType(), want.help, want.typ)
		}
		for _, m := range mf.GetMetric() {
			var names []string
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
			}
			sort.Strings(names)
			if !slices.Equal(names, want.labels) {
				t.Errorf("%s: labels %v, want %v", want.name, names, want.labels)
			}
		}
	}
}

// Two TUN engines handshake and exchange a packet each way; a third peer
// of a never answers. The metrics of both exporters and tapwire's own say
// so.
func TestCollectTUN(t *testing.T) {
	t.Parallel()
	w := newWorld()
	a := w.start(t, "twa", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	b := w.start(t, "twb", tun.ModeTUN, "192.0.2.2:51820", "10.9.0.2")
	silent, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	connect(t, a, b, "10.9.0.2/32", "fd00:9::2/128")
	connect(t, b, a, "10.9.0.1/32")
	if err := a.d.Apply(devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: silent.PublicKey()}}}); err != nil {
		t.Fatal(err)
	}
	udp(t, a, b, "to b")
	udp(t, b, a, "to a")
	// A packet to no peer's allowed IPs: a drop by reason no_route.
	if err := a.dev.Send(testCtx(t), memnet.UDP(netip.MustParseAddrPort("10.9.0.1:1"), netip.MustParseAddrPort("10.9.9.9:2"), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a no_route drop", func() bool { return a.d.Stats().NoRoute.Load() == 1 })
	eventually(t, "b's handshake confirmed", func() bool { return b.d.Stats().HandshakesCompleted.Load() == 1 })

	c := NewCollector(a.d)
	c.now = func() time.Time { return w.clock.Now().Add(42 * time.Second) }
	fs := gather(t, c)
	checkExporterFamilies(t, fs)
	now := float64(w.clock.Now().Unix())
	pubB, pubS := b.pub().String(), silent.PublicKey().String()

	// MindFlavor's: allowed IPs as `wg show dump` joins them.
	mf := map[string]string{"interface": "twa", "public_key": pubB, "allowed_ips": "10.9.0.2/32,fd00:9::2/128"}
	sent, received := fs.value(t, "wireguard_sent_bytes_total", mf), fs.value(t, "wireguard_received_bytes_total", mf)
	if sent <= 0 || received <= 0 {
		t.Errorf("sent %v received %v bytes after a packet each way", sent, received)
	}
	if got := fs.value(t, "wireguard_latest_handshake_seconds", mf); got != now {
		t.Errorf("latest handshake %v, want the clock's %v", got, now)
	}
	if got := fs.value(t, "wireguard_latest_handshake_delay_seconds", mf); got != 42 {
		t.Errorf("handshake delay %v, want 42", got)
	}
	none := map[string]string{"interface": "twa", "public_key": pubS, "allowed_ips": "(none)"}
	if got := fs.value(t, "wireguard_latest_handshake_seconds", none); got != 0 {
		t.Errorf("a peer that never handshook: latest handshake %v", got)
	}
	if got := fs.value(t, "wireguard_latest_handshake_delay_seconds", none); got != now+42 {
		t.Errorf("a peer that never handshook: delay %v, want %v (since 1970, as the exporter reports it)", got, now+42)
	}

	// mdlayher's: the same numbers under its names.
	md := map[string]string{"device": "twa", "public_key": pubB}
	if got := fs.value(t, "wireguard_peer_transmit_bytes_total", md); got != sent {
		t.Errorf("transmit %v, sent %v", got, sent)
	}
	if got := fs.value(t, "wireguard_peer_receive_bytes_total", md); got != received {
		t.Errorf("receive %v, received %v", got, received)
	}
	if got := fs.value(t, "wireguard_peer_last_handshake_seconds", md); got != now {
		t.Errorf("last handshake %v, want %v", got, now)
	}
	fs.value(t, "wireguard_device_info", map[string]string{"device": "twa", "public_key": a.pub().String()})
	fs.value(t, "wireguard_peer_info", map[string]string{"device": "twa", "public_key": pubB, "endpoint": "192.0.2.2:51820", "name": ""})
	fs.value(t, "wireguard_peer_info", map[string]string{"device": "twa", "public_key": pubS, "endpoint": ""})
	fs.value(t, "wireguard_peer_allowed_ips_info", map[string]string{"device": "twa", "public_key": pubB, "allowed_ips": "10.9.0.2/32", "family": "IPv4"})
	fs.value(t, "wireguard_peer_allowed_ips_info", map[string]string{"device": "twa", "public_key": pubB, "allowed_ips": "fd00:9::2/128", "family": "IPv6"})
	if n := len(fs.find("wireguard_peer_allowed_ips_info", map[string]string{"public_key": pubS})); n != 0 {
		t.Errorf("%d allowed IPs for a peer without any", n)
	}

	// tapwire's.
	dev := map[string]string{"interface": "twa"}
	fs.value(t, "tapwire_device_info", map[string]string{"interface": "twa", "mode": "tun"})
	if got := fs.value(t, "tapwire_device_mtu_bytes", dev); got != 1420 {
		t.Errorf("MTU %v", got)
	}
	if got := fs.value(t, "tapwire_peers", dev); got != 2 {
		t.Errorf("%v peers", got)
	}
	if got := fs.value(t, "tapwire_handshakes_completed_total", dev); got != 1 {
		t.Errorf("%v handshakes completed by the initiator", got)
	}
	if got := fs.value(t, "tapwire_drops_total", map[string]string{"interface": "twa", "reason": "no_route"}); got != 1 {
		t.Errorf("%v no_route drops", got)
	}
	if n := len(fs.find("tapwire_drops_total", dev)); n != len(dropReasons) {
		t.Errorf("%d drop reasons in TUN mode, want %d", n, len(dropReasons))
	}
	for _, ctr := range counters {
		fs.value(t, ctr.name, dev)
	}
	fs.value(t, "tapwire_peer_info", map[string]string{"interface": "twa", "public_key": pubB, "transport": "udp", "active_transport": "udp"})
	fs.value(t, "tapwire_peer_transport_moves_total", map[string]string{"interface": "twa", "public_key": pubB, "to": "tcp"})
	for _, m := range fs.find("tapwire_peer_path_mtu_bytes", dev) {
		if v := m.GetGauge().GetValue(); v < 576 || v > 65535 {
			t.Errorf("path MTU %v: %v", labelsOf(m), v)
		}
	}
	for _, tapOnly := range []string{"tapwire_mac_table_entries", "tapwire_peer_mac_table_entries", "tapwire_peer_flood_limited_total"} {
		if fs[tapOnly] != nil {
			t.Errorf("%s on a TUN device", tapOnly)
		}
	}

	// The responder counts its handshake once the initiator's data
	// confirmed it.
	fb := gather(t, NewCollector(b.d))
	if got := fb.value(t, "tapwire_handshakes_completed_total", map[string]string{"interface": "twb"}); got != 1 {
		t.Errorf("%v handshakes completed by the responder", got)
	}
	fb.value(t, "wireguard_sent_bytes_total", map[string]string{"interface": "twb", "public_key": a.pub().String(), "allowed_ips": "10.9.0.1/32"})
}

// Two TAP engines: a frame from a host behind a reaches b, whose MAC table
// learns it behind peer a.
func TestCollectTAP(t *testing.T) {
	t.Parallel()
	w := newWorld()
	a := w.start(t, "twtapa", tun.ModeTAP, "192.0.2.1:51820", "")
	b := w.start(t, "twtapb", tun.ModeTAP, "192.0.2.2:51820", "")
	connect(t, a, b)
	connect(t, b, a)
	host := [6]byte{0x02, 0, 0x5e, 0, 0x53, 1}
	frame := memnet.Frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, host, 0x88b5, []byte("hello"))
	if err := a.dev.Send(testCtx(t), frame); err != nil {
		t.Fatal(err)
	}
	for ctx := testCtx(t); ; {
		got, err := b.dev.Recv(ctx)
		if err != nil {
			t.Fatalf("the frame never arrived: %v", err)
		}
		if string(got) == string(frame) {
			break
		}
	}
	fs := gather(t, NewCollector(b.d))
	checkExporterFamilies(t, fs, "wireguard_peer_allowed_ips_info")
	dev := map[string]string{"interface": "twtapb"}
	fs.value(t, "tapwire_device_info", map[string]string{"interface": "twtapb", "mode": "tap"})
	if got := fs.value(t, "tapwire_device_mtu_bytes", dev); got != 1500 {
		t.Errorf("MTU %v", got)
	}
	if got := fs.value(t, "tapwire_mac_table_entries", dev); got != 1 {
		t.Errorf("%v MAC table entries, want the one host", got)
	}
	if got := fs.value(t, "tapwire_mac_table_learned_total", dev); got != 1 {
		t.Errorf("%v addresses learned", got)
	}
	peerA := map[string]string{"interface": "twtapb", "public_key": a.pub().String()}
	if got := fs.value(t, "tapwire_peer_mac_table_entries", peerA); got != 1 {
		t.Errorf("%v addresses behind peer a", got)
	}
	if got := fs.value(t, "tapwire_peer_flood_limited_total", peerA); got != 0 {
		t.Errorf("%v frames flood limited", got)
	}
	// A TAP peer's allowed IPs play no part: none.
	fs.value(t, "wireguard_received_bytes_total", map[string]string{"interface": "twtapb", "public_key": a.pub().String(), "allowed_ips": "(none)"})
	if got := fs.value(t, "tapwire_drops_total", map[string]string{"interface": "twtapb", "reason": "switch_hairpin"}); got != 0 {
		t.Errorf("%v hairpin drops", got)
	}
	if n := len(fs.find("tapwire_drops_total", dev)); n != len(dropReasons)+6 {
		t.Errorf("%d drop reasons in TAP mode, want %d", n, len(dropReasons)+6)
	}
}

// Every counter of tunnel.Stats is exported: as a drop reason or as a
// family of its own, not both.
func TestEveryCounterExported(t *testing.T) {
	t.Parallel()
	keys := new(tunnel.Stats).Map()
	seen := map[string]int{}
	for _, r := range dropReasons {
		seen[r]++
	}
	for _, c := range counters {
		seen[c.key]++
		if !strings.HasPrefix(c.name, "tapwire_") || !strings.HasSuffix(c.name, "_total") {
			t.Errorf("counter %s: want tapwire_..._total", c.name)
		}
	}
	for k := range keys {
		if seen[k] != 1 {
			t.Errorf("tunnel.Stats counter %s is exported %d times, want once (add it to counters or dropReasons)", k, seen[k])
		}
	}
	for k := range seen {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s is not a counter of tunnel.Stats", k)
		}
	}
}

// The handler serves the registry at /metrics in the text format, with the
// Go runtime's and the process's metrics, a page at /, and nothing else.
func TestHandler(t *testing.T) {
	t.Parallel()
	w := newWorld()
	a := w.start(t, "twh", tun.ModeTUN, "192.0.2.1:51820", "10.9.0.1")
	srv := httptest.NewServer(Handler(NewRegistry(a.d), slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wireguard_device_info", "tapwire_device_info", "go_goroutines", "process_resident_memory_bytes", "promhttp_metric_handler_requests_total"} {
		if mfs[name] == nil {
			t.Errorf("GET /metrics has no %s", name)
		}
	}
	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/"); code != 200 || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("GET /: %d %q", code, body)
	}
	for _, path := range []string{"/debug/pprof/", "/metricsx", "/x"} {
		if code, _ := get("GET", path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, _ := get("POST", "/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", code)
	}
}
