//go:build linux

package service_test

// The metrics listener of a service, in throw-away namespaces (root): it
// serves /metrics while the service runs, stops with it, and an address in
// use fails Start before any device exists.

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/service"
	"github.com/tapwire/tapwire/tunnel"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs service.Start inside ns, its socket in ns too.
func start(ns *nstest.NS, o service.Options) (*service.Service, error) {
	o.Log, o.Engine = quiet(), tunnel.Options{NetNS: ns.Path()}
	var s *service.Service
	err := ns.Do(func() error {
		var err error
		s, err = service.Start(o)
		return err
	})
	return s, err
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func TestMetricsServed(t *testing.T) {
	ns := nstest.New(t)
	s, err := start(ns, service.Options{Name: "twsvm0", MetricsAddress: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	addr := s.MetricsAddr()
	if addr == nil {
		t.Fatal("no metrics address")
	}
	url := "http://" + addr.String() + "/metrics"
	resp, err := ns.HTTPClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if mf := mfs["wireguard_device_info"]; mf == nil || len(mf.GetMetric()) != 1 || label(mf.GetMetric()[0], "device") != "twsvm0" {
		t.Errorf("wireguard_device_info: %v", mf)
	}
	if mf := mfs["tapwire_device_mtu_bytes"]; mf == nil || mf.GetMetric()[0].GetGauge().GetValue() != service.DefaultMTU {
		t.Errorf("tapwire_device_mtu_bytes: %v", mf)
	}

	s.Close()
	closed = true
	if _, err := ns.HTTPClient().Get(url); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET %s after Close: %v, want connection refused", url, err)
	}
	if out, err := ns.Output("ip", "link", "show", "twsvm0"); err == nil {
		t.Errorf("the device outlived Close:\n%s", out)
	}
}

func TestMetricsAddressInUse(t *testing.T) {
	ns := nstest.New(t)
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	taken := netip.MustParseAddrPort(ln.Addr().String())
	s, err := start(ns, service.Options{Name: "twsvm1", MetricsAddress: taken})
	if err == nil {
		s.Close()
		t.Fatalf("Start with metrics address %v in use: no error", taken)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "metrics address of twsvm1") {
		t.Errorf("error %q: want the metrics address in use named", err)
	}
	if out, err := ns.Output("ip", "link", "show", "twsvm1"); err == nil {
		t.Errorf("a failed Start left its device:\n%s", out)
	}
	if _, err := os.Stat("/var/run/wireguard/twsvm1.sock"); err == nil {
		t.Error("a failed Start left its UAPI socket")
	}
}
