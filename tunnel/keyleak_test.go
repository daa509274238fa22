package tunnel

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/internal/logging"
	"github.com/tapwire/tapwire/protocol"
)

// keyForms are the ways a key could show up in a log: base64 as wg
// writes it, hex as the UAPI carries it (either case), its raw bytes, and
// its bytes quoted as slog's text handler writes a byte slice, and in
// decimal as fmt prints one.
func keyForms(k protocol.Key) map[string]string {
	return map[string]string{
		"base64":        k.String(),
		"base64 raw":    base64.RawStdEncoding.EncodeToString(k[:]), // the padding cut off
		"hex":           k.Hex(),
		"HEX":           strings.ToUpper(k.Hex()),
		"raw bytes":     string(k[:]),
		"quoted bytes":  strings.Trim(strconv.Quote(string(k[:])), `"`),
		"decimal bytes": strings.Trim(fmt.Sprint(k[:]), "[]"),
	}
}

// findKeys fails the test for each secret of secrets (by name) found in
// log in any of its forms.
func findKeys(t *testing.T, what, log string, secrets map[string]protocol.Key) {
	t.Helper()
	for name, k := range secrets {
		for form, s := range keyForms(k) {
			if strings.Contains(log, s) {
				t.Errorf("%s: the %s is in the log (%s)", what, name, form)
			}
		}
	}
}

// No private or preshared key reaches the log at any level, in text or
// JSON: two engines log at Debug through handshakes, data, a rekey,
// keepalives, a wrong preshared key, a key rotation, refused
// configurations, a flood answered with cookies and a peer's removal; the
// log is then searched for every key used, in base64, hex and raw bytes.
func TestMemLogHoldsNoKeys(t *testing.T) {
	t.Parallel()
	for _, format := range []string{logging.Text, logging.JSON} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			var buf lockedBuffer
			log, err := logging.New(&buf, format, slog.LevelDebug)
			if err != nil {
				t.Fatal(err)
			}
			w := newMemWorld()
			w.log = log
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the log:\n%s", buf.String())
				}
			})
			secrets := keyLeakFlows(t, w, log)
			log.Info("end of the flows") // all of them were logged before this line
			out := buf.String()
			// The log is the engines' at Debug: it names peers, handshakes,
			// cookies; so a key logged anywhere would be in it.
			for _, want := range []string{"handshake complete", "sending handshake initiation", secrets.aPub.String(), "end of the flows"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log lacks %q: not the debug log of the flows?\n%s", want, out)
				}
			}
			findKeys(t, format+" log", out, secrets.secret)
		})
	}
}

// leakSecrets are the keys a flow used: secret by name, and a's public
// key (which the log does name).
type leakSecrets struct {
	secret map[string]protocol.Key
	aPub   protocol.Key
}

// keyLeakFlows runs the flows of TestMemLogHoldsNoKeys on w, logging what
// Apply refuses to log as the UAPI server does, and returns the keys used.
func keyLeakFlows(t *testing.T, w *memWorld, log *slog.Logger) leakSecrets {
	t.Helper()
	apply := func(e *memEnd, c devconf.DeviceConfig) error {
		err := e.d.Apply(c)
		if err != nil {
			log.Warn("uapi: set failed", "err", err)
		}
		return err
	}
	a, b := w.tunPair(t)
	psk, err := protocol.GeneratePresharedKey()
	if err != nil {
		t.Fatal(err)
	}
	wrongPSK, err := protocol.GeneratePresharedKey()
	if err != nil {
		t.Fatal(err)
	}
	secrets := leakSecrets{secret: map[string]protocol.Key{
		"private key of a": a.key, "private key of b": b.key, "preshared key": psk, "wrong preshared key": wrongPSK,
	}, aPub: a.pub()}
	setPSK := func(e, peer *memEnd, k protocol.Key) {
		t.Helper()
		if err := apply(e, devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: peer.pub(), PresharedKey: &k}}}); err != nil {
			t.Fatal(err)
		}
	}
	setPSK(a, b, psk)
	setPSK(b, a, psk)

	// A handshake and data both ways.
	udpIn(t, a, b, "to b")
	expectUDP(t, b, "to b")
	udpIn(t, b, a, "to a")
	expectUDP(t, a, "to a")

	// A rekey once the keypair is old, and persistent keepalives.
	first := b.peer(a).lastHS.Load()
	w.clock.Advance(protocol.RekeyAfterTime + time.Second)
	udpIn(t, a, b, "after rekey time")
	expectUDP(t, b, "after rekey time")
	eventually(t, "a rekey", func() bool { return b.peer(a).lastHS.Load() != first })
	connect(t, a, b, 25, false)
	w.clock.Advance(26 * time.Second)

	// A wrong preshared key on b: a's handshakes fail (b's response does
	// not decrypt at a: the key is mixed in there) until it is fixed.
	bad := a.d.Stats().BadHandshake.Load()
	setPSK(b, a, wrongPSK)
	w.clock.Advance(protocol.RejectAfterTime + time.Second) // the sessions expire
	udpIn(t, a, b, "with the wrong psk")
	eventually(t, "a response refused for its preshared key", func() bool { return a.d.Stats().BadHandshake.Load() > bad })
	setPSK(b, a, psk)
	w.clock.Advance(protocol.RekeyTimeout + time.Second)
	udpIn(t, a, b, "with the right psk")
	expectUDP(t, b, "with the right psk")

	// a's private key rotated; b learns a's new public key.
	newKey, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	secrets.secret["new private key of a"] = newKey
	if err := apply(a, devconf.DeviceConfig{PrivateKey: &newKey}); err != nil {
		t.Fatal(err)
	}
	old := a.pub()
	a.key = newKey
	if err := apply(b, devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: old, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	connect(t, b, a, 0, false)
	setPSK(b, a, psk)
	w.clock.Advance(protocol.RekeyTimeout + time.Second) // a's last initiation is old enough
	udpIn(t, a, b, "after rotation")
	expectUDP(t, b, "after rotation")

	// Configurations refused or ignored: a peer with an unknown transport
	// (its preshared key given too), a peer that is a itself.
	tr := devconf.Transport(99)
	if err := apply(a, devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: b.pub(), PresharedKey: &psk, Transport: &tr}}}); err == nil {
		t.Error("Apply took an unknown transport")
	}
	if err := apply(a, devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: a.pub(), PresharedKey: &psk}}}); err != nil {
		t.Fatal(err)
	}

	// A flood of initiations: a answers with cookies.
	attacker, err := w.net.Host(netip.MustParseAddr("198.51.100.66")).Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	cookies := a.d.Stats().CookiesSent.Load()
	floodInitiations(t, attacker, a, w.clock.Now(), underLoadRate+100)
	eventually(t, "cookie replies", func() bool { return a.d.Stats().CookiesSent.Load() > cookies })

	// b removed at a: traffic to it has no route.
	if err := apply(a, devconf.DeviceConfig{Peers: []devconf.PeerConfig{{PublicKey: b.pub(), Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	noRoute := a.d.Stats().NoRoute.Load()
	udpIn(t, a, b, "to a removed peer")
	eventually(t, "no route to a removed peer", func() bool { return a.d.Stats().NoRoute.Load() > noRoute })

	// Closed: whatever the engines log on their way out is in too.
	a.d.Close()
	b.d.Close()
	return secrets
}
