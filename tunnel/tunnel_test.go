//go:build linux

package tunnel_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/tunnel"
)

var (
	inA4 = netip.MustParsePrefix("198.51.100.1/24")
	inB4 = netip.MustParsePrefix("198.51.100.2/24")
	inA6 = netip.MustParsePrefix("2001:db8:2::1/64")
	inB6 = netip.MustParsePrefix("2001:db8:2::2/64")
)

// underlay returns the two ends' underlay addresses of the family.
func underlay(v6 bool) (a, b netip.Addr) {
	if v6 {
		return netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:1::2")
	}
	return netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
}

type variant struct {
	name   string
	outer6 bool
	inner6 bool
	psk    bool
	aFirst bool // whether a sends first, and so initiates
}

var variants = []variant{
	{"v4-in-v4/psk/a-initiates", false, false, true, true},
	{"v4-in-v4/psk/b-initiates", false, false, true, false},
	{"v6-in-v6/a-initiates", true, true, false, true},
	{"v6-in-v6/b-initiates", true, true, false, false},
	{"v6-in-v4/a-initiates", false, true, false, true},
	{"v4-in-v6/psk/b-initiates", true, false, true, false},
}

func pskFor(t *testing.T, on bool) protocol.Key {
	if !on {
		return protocol.Key{}
	}
	k, err := protocol.GeneratePresharedKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// exercise sends data both ways, the first from the initiating side, and
// checks that a handshake happened on both ends.
func exercise(t *testing.T, a, b *host, v variant) {
	first, second := a, b
	if !v.aFirst {
		first, second = b, a
	}
	transfer(t, first, second, v.inner6, 4<<20)
	transfer(t, second, first, v.inner6, 4<<20)
	transfer(t, first, second, v.inner6, 1)
}

func TestTapwireToTapwire(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			na, nb := wire(t)
			ua, ub := underlay(v.outer6)
			a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4, inA6)
			b := startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4, inB6)
			psk := pskFor(t, v.psk)
			peer(t, a, b, psk, 0, false)
			peer(t, b, a, psk, 0, false)
			exercise(t, a, b, v)
			t.Logf("UDP GSO sends %d/%d, GRO receives %d/%d", a.dev.Stats().GSOSends.Load(), b.dev.Stats().GSOSends.Load(),
				a.dev.Stats().GROReceives.Load(), b.dev.Stats().GROReceives.Load())
			for _, h := range []*host{a, b} {
				st := h.dev.Status()
				if len(st.Peers) != 1 || st.Peers[0].LastHandshake.IsZero() || st.Peers[0].RxBytes < 4<<20 || st.Peers[0].TxBytes < 4<<20 {
					t.Errorf("%s status: %+v", h.name, st.Peers)
				}
			}
		})
	}
}

func TestInteropWireguardGo(t *testing.T) {
	requireWG(t)
	wireguardGo(t) // build first, outside the subtests' timing
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			na, nb := wire(t)
			ua, ub := underlay(v.outer6)
			a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4, inA6)
			b := startWireguardGo(t, nb, "wgb0", ub, 51002, inB4, inB6)
			psk := pskFor(t, v.psk)
			peer(t, a, b, psk, 0, false)
			peer(t, b, a, psk, 0, false)
			exercise(t, a, b, v)
			// wireguard-go's view of us, through wg.
			d := wgDump(t, b)[a.pub().String()]
			if d == nil {
				t.Fatalf("wireguard-go has no peer %s", a.pub())
			}
			if hs, _ := strconv.ParseInt(d[4], 10, 64); hs == 0 {
				t.Errorf("wireguard-go reports no handshake with tapwire: %q", d)
			}
		})
	}
}

// TestRekeyUnderTraffic shortens the timers so keys rotate every two
// seconds, and keeps data flowing through several rotations, against
// tapwire and against wireguard-go.
func TestRekeyUnderTraffic(t *testing.T) {
	timers := tunnel.Timers{
		RekeyAfterTime:   2 * time.Second,
		RejectAfterTime:  5 * time.Second,
		RekeyTimeout:     500 * time.Millisecond,
		KeepaliveTimeout: 1 * time.Second,
		RekeyAttemptTime: 4 * time.Second,
	}
	for _, other := range []string{"tapwire", "wireguard-go"} {
		t.Run(other, func(t *testing.T) {
			if other == "wireguard-go" {
				requireWG(t)
				wireguardGo(t)
			}
			na, nb := wire(t)
			ua, ub := underlay(false)
			a := startTapwire(t, na, "twa0", ua, 51001, timers, inA4)
			var b *host
			if other == "tapwire" {
				b = startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
			} else {
				b = startWireguardGo(t, nb, "wgb0", ub, 51002, inB4)
			}
			peer(t, a, b, protocol.Key{}, 0, false)
			peer(t, b, a, protocol.Key{}, 0, false)
			var handshakes []time.Time
			for end := time.Now().Add(9 * time.Second); time.Now().Before(end); {
				transfer(t, a, b, false, 1<<20)
				transfer(t, b, a, false, 256<<10)
				hs := a.dev.Status().Peers[0].LastHandshake
				if len(handshakes) == 0 || !hs.Equal(handshakes[len(handshakes)-1]) {
					handshakes = append(handshakes, hs)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if len(handshakes) < 3 {
				t.Errorf("%d handshakes in 9 s with RekeyAfterTime 2 s: %v", len(handshakes), handshakes)
			}
		})
	}
}

func TestWGShowDump(t *testing.T) {
	requireWG(t)
	na, nb := wire(t)
	ua, ub := underlay(false)
	a := startTapwire(t, na, "twa0", ua, 51001, tunnel.Timers{}, inA4)
	b := startTapwire(t, nb, "twb0", ub, 51002, tunnel.Timers{}, inB4)
	psk := pskFor(t, true)
	peer(t, a, b, psk, 25, false)
	peer(t, b, a, psk, 0, false)
	transfer(t, a, b, false, 1<<20)
	out := a.ns.Run("wg", "show", "twa0", "dump")
	d := wgDump(t, a)
	line := d[b.pub().String()]
	if line == nil {
		t.Fatalf("wg show dump lacks the peer:\n%s", out)
	}
	// public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive
	if line[1] != psk.String() || line[2] != "192.0.2.2:51002" || line[3] != "198.51.100.2/32" || line[7] != "25" {
		t.Errorf("peer line %q", line)
	}
	hs, _ := strconv.ParseInt(line[4], 10, 64)
	rx, _ := strconv.ParseUint(line[5], 10, 64)
	tx, _ := strconv.ParseUint(line[6], 10, 64)
	if time.Since(time.Unix(hs, 0)) > time.Minute || tx < 1<<20 || rx == 0 {
		t.Errorf("handshake %d, rx %d, tx %d after sending 1 MiB", hs, rx, tx)
	}
	// The dump and Status are read one after the other while the last
	// ACKs and batches may still be on their way: they agree once the
	// tunnel is quiet (bounded: 50 tries).
	for try := 0; ; try++ {
		st := a.dev.Status().Peers[0]
		if st.TxBytes == tx && st.RxBytes == rx {
			break
		}
		if try == 50 {
			t.Errorf("wg shows rx %d tx %d, the engine %d %d", rx, tx, st.RxBytes, st.TxBytes)
			break
		}
		time.Sleep(100 * time.Millisecond)
		line = wgDump(t, a)[b.pub().String()]
		rx, _ = strconv.ParseUint(line[5], 10, 64)
		tx, _ = strconv.ParseUint(line[6], 10, 64)
	}
	iface := a.ns.Run("wg", "show", "twa0")
	for _, want := range []string{"listening port: 51001", "latest handshake:", "transfer:", "persistent keepalive: every 25 seconds"} {
		if !contains(iface, want) {
			t.Errorf("wg show lacks %q:\n%s", want, iface)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

var _ = nstest.RequireRoot
