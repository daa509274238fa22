package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/tun"
)

// TestForwardBetweenNamespaces wires two namespaces together through the
// forwarder and pings across, both ways, in TUN and TAP mode.
func TestForwardBetweenNamespaces(t *testing.T) {
	pingtest.Require(t)
	for _, mode := range []tun.Mode{tun.ModeTUN, tun.ModeTAP} {
		t.Run(mode.String(), func(t *testing.T) {
			left, right := nstest.New(t), nstest.New(t)
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, options{
					A:     tun.Config{Name: "fwl0", Mode: mode, NetNS: left.Name},
					B:     tun.Config{Name: "fwr0", Mode: mode, NetNS: right.Name},
					Ready: func(a, b *tun.Device) { close(ready) },
					Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
			}()
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("run: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Error("forwarder did not stop within 5 s")
				}
			})
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("run: %v", err)
			}
			for _, side := range []struct {
				ns          *nstest.NS
				dev, a4, a6 string
			}{{left, "fwl0", "192.0.2.1/24", "2001:db8::1/64"}, {right, "fwr0", "192.0.2.2/24", "2001:db8::2/64"}} {
				side.ns.Run("ip", "addr", "add", side.a4, "dev", side.dev)
				side.ns.Run("ip", "addr", "add", side.a6, "dev", side.dev, "nodad")
				side.ns.Run("ip", "link", "set", side.dev, "up")
			}
			for _, size := range []int{56, 1400} {
				pingtest.Ping(t, left, "192.0.2.2", 3, size)
				pingtest.Ping(t, right, "192.0.2.1", 3, size)
				pingtest.Ping(t, left, "2001:db8::2", 3, size)
				pingtest.Ping(t, right, "2001:db8::1", 3, size)
			}
		})
	}
}

// TestForwardStopsWhenADeviceIsDeleted checks that the forwarder returns an
// error, instead of hanging, when one of its devices disappears.
func TestForwardStopsWhenADeviceIsDeleted(t *testing.T) {
	ns := nstest.New(t)
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- run(context.Background(), options{
			A:     tun.Config{Name: "fwd0", NetNS: ns.Name},
			B:     tun.Config{Name: "fwd1", NetNS: ns.Name},
			Ready: func(a, b *tun.Device) { close(ready) },
			Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	ns.Run("ip", "link", "del", "fwd0")
	select {
	case err := <-done:
		if err == nil {
			t.Error("run returned nil after its device was deleted")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("forwarder still running 5 s after its device was deleted")
	}
}
