//go:build linux

package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
)

// start runs the example in ns until the test ends.
func start(t *testing.T, ns *nstest.NS, o options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.NetNS, o.Log = ns.Name, slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Ready = func(name string) { ready <- name }
	go func() { done <- run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("run did not stop within 5 s of cancel")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("device not ready after 10 s")
	}
}

func TestARPNDAndPingAnsweredFromUserSpace(t *testing.T) {
	pingtest.Require(t)
	ns := nstest.New(t)
	mac, _ := parseMAC("02:00:5e:00:53:99")
	start(t, ns, options{Dev: "twtap%d", MAC: mac, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	for _, dst := range []string{"192.0.2.2", "192.0.2.254", "2001:db8::2", "2001:db8::beef"} {
		for _, size := range []int{56, 1400} {
			pingtest.Ping(t, ns, dst, 3, size)
		}
	}
	// The kernel learned our MAC by ARP and neighbour discovery.
	neigh := ns.Run("ip", "neigh", "show")
	for _, want := range []string{"192.0.2.2 dev twtap0 lladdr 02:00:5e:00:53:99", "2001:db8::2 dev twtap0 lladdr 02:00:5e:00:53:99"} {
		if !strings.Contains(neigh, want) {
			t.Errorf("neighbour table lacks %q:\n%s", want, neigh)
		}
	}
}

func TestParseMAC(t *testing.T) {
	mac, err := parseMAC("")
	if err != nil || len(mac) != 6 || mac[0]&1 != 0 || mac[0]&2 == 0 {
		t.Errorf("random MAC %v, %v: want unicast, locally administered", mac, err)
	}
	if _, err := parseMAC("00:11:22:33:44:55:66:77"); err == nil {
		t.Error("8-byte MAC accepted")
	}
}

func TestParsePrefixes(t *testing.T) {
	if _, err := parsePrefixes("", ""); err == nil {
		t.Error("no addresses accepted")
	}
	if _, err := parsePrefixes("2001:db8::1/64", ""); err == nil {
		t.Error("IPv6 accepted for -addr")
	}
	if _, err := parsePrefixes("192.0.2.1", ""); err == nil {
		t.Error("address without prefix length accepted")
	}
	got, err := parsePrefixes("192.0.2.1/24", "2001:db8::1/64")
	if err != nil || len(got) != 2 {
		t.Errorf("parsePrefixes = %v, %v", got, err)
	}
}
