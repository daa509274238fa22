//go:build linux

package main

// Metrics scraped for real: tapwire up with MetricsAddress, and tapwire-go
// with TAPWIRE_METRICS_ADDRESS, each in a namespace of its own, scraped over
// the namespace's loopback, parsed with expfmt and, when promtool is
// installed (test.sh installs it), checked by `promtool check metrics`.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
)

// scrape GETs url from inside ns and returns the body and its families.
func scrape(t *testing.T, ns *nstest.NS, url string) ([]byte, map[string]*dto.MetricFamily, error) {
	t.Helper()
	resp, err := ns.HTTPClient().Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s\n%s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: not the text format: %v\n%s", url, err, body)
	}
	return body, mfs, nil
}

// promtoolCheck runs `promtool check metrics` on body, if promtool is
// installed, and fails the test on any problem it reports.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not installed (test.sh installs it): not checked with promtool")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// series returns the value of the one metric of family name whose labels
// include want (-1, and an error, when there is not exactly one).
func series(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	var found []*dto.Metric
metrics:
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue metrics
			}
		}
		found = append(found, m)
	}
	if len(found) != 1 {
		t.Errorf("%s%v: %d series, want 1", name, want, len(found))
		return -1
	}
	if c := found[0].GetCounter(); c != nil {
		return c.GetValue()
	}
	return found[0].GetGauge().GetValue()
}

// TestUpMetrics brings two interfaces up with tapwire up, one with
// MetricsAddress, pings across, and scrapes it: both exporters' families
// and tapwire's say what happened. A second interface with the same
// MetricsAddress fails to come up, and leaves nothing.
func TestUpMetrics(t *testing.T) {
	pingtest.Require(t)
	na, nb := nstest.New(t), nstest.New(t)
	na.Link(nb, "twva", "twvb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24", "2001:db8:2::1/64"}, under: "192.0.2.1", port: 51031}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24", "2001:db8:2::2/64"}, under: "192.0.2.2", port: 51032}
	confA := writeConf(t, dir, "twma", a, "MetricsAddress = 127.0.0.1:9586", b)
	confB := writeConf(t, dir, "twmb", b, "", a)
	up(t, na, confA)
	up(t, nb, confB)
	pingtest.Ping(t, na, "198.51.100.2", 3, 56)

	body, mfs, err := scrape(t, na, "http://127.0.0.1:9586/metrics")
	if err != nil {
		t.Fatal(err)
	}
	promtoolCheck(t, body)
	pubA, pubB := a.key.PublicKey().String(), b.key.PublicKey().String()
	mf := map[string]string{"interface": "twma", "public_key": pubB, "allowed_ips": "198.51.100.2/32,2001:db8:2::2/128"}
	if v := series(t, mfs, "wireguard_sent_bytes_total", mf); v <= 0 {
		t.Errorf("wireguard_sent_bytes_total %v after pings", v)
	}
	if v := series(t, mfs, "wireguard_received_bytes_total", mf); v <= 0 {
		t.Errorf("wireguard_received_bytes_total %v after pings", v)
	}
	if v := series(t, mfs, "wireguard_latest_handshake_seconds", mf); v <= 0 || v > float64(time.Now().Unix()) {
		t.Errorf("wireguard_latest_handshake_seconds %v", v)
	}
	md := map[string]string{"device": "twma", "public_key": pubB}
	if v := series(t, mfs, "wireguard_peer_last_handshake_seconds", md); v <= 0 {
		t.Errorf("wireguard_peer_last_handshake_seconds %v", v)
	}
	series(t, mfs, "wireguard_device_info", map[string]string{"device": "twma", "public_key": pubA})
	series(t, mfs, "wireguard_peer_info", map[string]string{"device": "twma", "public_key": pubB, "endpoint": "192.0.2.2:51032"})
	series(t, mfs, "wireguard_peer_allowed_ips_info", map[string]string{"device": "twma", "public_key": pubB, "allowed_ips": "2001:db8:2::2/128", "family": "IPv6"})
	series(t, mfs, "tapwire_device_info", map[string]string{"interface": "twma", "mode": "tun"})
	if v := series(t, mfs, "tapwire_handshakes_completed_total", map[string]string{"interface": "twma"}); v < 1 {
		t.Errorf("tapwire_handshakes_completed_total %v after pings", v)
	}
	series(t, mfs, "tapwire_drops_total", map[string]string{"interface": "twma", "reason": "no_route"})
	series(t, mfs, "tapwire_peer_info", map[string]string{"interface": "twma", "public_key": pubB, "transport": "udp", "active_transport": "udp"})
	for _, name := range []string{"go_goroutines", "process_open_fds", "promhttp_metric_handler_requests_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	// The address is taken: a second interface with it does not come up,
	// the error names it, and nothing of the interface is left.
	confC := writeConf(t, dir, "twmc", wgEnd{key: key(t), addr: []string{"198.51.100.9/24"}, port: 51033}, "MetricsAddress = 127.0.0.1:9586")
	out, err := tapwireIn(t, na, "up", confC)
	if err == nil {
		tapwireIn(t, na, "down", confC)
		t.Fatalf("tapwire up with a metrics address in use: no error\n%s", out)
	}
	if !strings.Contains(out, "metrics address of twmc") || !strings.Contains(out, "address already in use") {
		t.Errorf("tapwire up with a metrics address in use:\n%s", out)
	}
	if links := na.Run("ip", "-o", "link"); strings.Contains(links, "twmc") {
		t.Errorf("a failed up left its interface:\n%s", links)
	}
	// The first is still served.
	if _, _, err := scrape(t, na, "http://127.0.0.1:9586/metrics"); err != nil {
		t.Error(err)
	}
}

// TestTapwireGoMetrics runs tapwire-go as wg-quick would, with the metrics
// address in its environment, and scrapes it.
func TestTapwireGoMetrics(t *testing.T) {
	ns := nstest.New(t)
	cmd := ns.Command(filepath.Join(binaries(t), "tapwire-go"), "-f", "twmg0")
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error", "TAPWIRE_METRICS_ADDRESS=[::1]:9586")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	var body []byte
	var mfs map[string]*dto.MetricFamily
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) { // a hang guard
		var err error
		if body, mfs, err = scrape(t, ns, "http://[::1]:9586/metrics"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tapwire-go serves no metrics: %v", err)
		}
	}
	promtoolCheck(t, body)
	series(t, mfs, "wireguard_device_info", map[string]string{"device": "twmg0"})
	series(t, mfs, "tapwire_device_mtu_bytes", map[string]string{"interface": "twmg0"})

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("tapwire-go exited with %v", err)
		}
		exited <- nil // for the cleanup
	case <-time.After(2 * time.Minute): // a hang guard
		t.Fatal("tapwire-go still running 2 minutes after SIGTERM")
	}
	if _, _, err := scrape(t, ns, "http://[::1]:9586/metrics"); err == nil {
		t.Error("metrics still served after tapwire-go exited")
	}
}
