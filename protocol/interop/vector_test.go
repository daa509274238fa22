package interop

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/device"

	"github.com/tapwire/tapwire/protocol"
)

// TestHandshakeVector has wireguard-go check the pinned exchange of
// protocol/testdata/handshake-vector.txt (which `go test ./protocol`
// compares with what the package makes): wireguard-go, holding bob's key,
// accepts the initiation (static key, timestamp, psk-independent part of
// the key schedule); both mac1s and the cookie reply verify with its
// CookieChecker and CookieGenerator. (The response and the transport
// messages depend on ephemerals wireguard-go cannot be given, so the live
// tests prove those.)
func TestHandshakeVector(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "testdata", "handshake-vector.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || name == "time_unix_nano" {
			continue
		}
		b, err := hex.DecodeString(value)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v[name] = b
	}
	alice, bob, psk := protocol.Key(v["alice_private"]), protocol.Key(v["bob_private"]), protocol.Key(v["preshared_key"])

	w := newWG(t, bob, alice.PublicKey(), psk)
	var init device.MessageInitiation
	unmarshal(t, v["initiation"], &init)
	if w.dev.ConsumeMessageInitiation(&init) != w.peer {
		t.Fatal("wireguard-go refuses the vector's initiation")
	}

	var bobChecker, aliceChecker device.CookieChecker
	bobChecker.Init(device.NoisePublicKey(bob.PublicKey()))
	aliceChecker.Init(device.NoisePublicKey(alice.PublicKey()))
	if !bobChecker.CheckMAC1(v["initiation"]) || !aliceChecker.CheckMAC1(v["response"]) {
		t.Fatal("wireguard-go refuses the vector's mac1s")
	}
	var gen device.CookieGenerator
	gen.Init(device.NoisePublicKey(bob.PublicKey()))
	gen.AddMacs(append([]byte(nil), v["initiation"]...))
	var reply device.MessageCookieReply
	unmarshal(t, v["cookie_reply"], &reply)
	if !gen.ConsumeReply(&reply) {
		t.Fatal("wireguard-go refuses the vector's cookie reply")
	}

	// The response's indices and the transport headers are consistent.
	sender, receiver, err := protocol.ParseResponseIndices(v["response"])
	if err != nil || receiver != init.Sender {
		t.Fatalf("response indices %d, %d, %v", sender, receiver, err)
	}
	if r, _, err := protocol.ParseTransportHeader(v["transport_alice_to_bob"]); err != nil || r != sender {
		t.Fatal("alice→bob receiver index")
	}
	if r, _, err := protocol.ParseTransportHeader(v["transport_bob_to_alice"]); err != nil || r != init.Sender {
		t.Fatal("bob→alice receiver index")
	}
}
