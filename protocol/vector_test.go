package protocol

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectorFile pins a whole exchange made with fixed keys, ephemerals and
// time, so that `go test ./protocol` notices any change of the bytes on the
// wire. protocol/interop reads the same file and has wireguard-go check the
// parts it can (the initiation and both mac1s).
var vectorFile = filepath.Join("testdata", "handshake-vector.txt")

func vectorText(t testing.TB) string {
	fx := getFuzzFix(t)
	var b strings.Builder
	b.WriteString("# A WireGuard exchange made by package protocol with fixed keys, ephemerals and time.\n")
	b.WriteString("# Rewrite with: go test ./protocol -run TestHandshakeVector -update-corpus\n")
	line := func(name string, v []byte) { fmt.Fprintf(&b, "%s %s\n", name, hex.EncodeToString(v)) }
	alice, bob := testKey("alice"), testKey("bob")
	psk := testPSK("fuzz")
	line("alice_private", alice[:])
	line("bob_private", bob[:])
	line("preshared_key", psk[:])
	fmt.Fprintf(&b, "time_unix_nano %d\n", testEpoch.UnixNano())
	line("initiation", fx.initiation)
	line("response", fx.response)
	line("cookie_reply", fx.reply)
	line("transport_alice_to_bob", fx.aliceToBob)
	line("transport_bob_to_alice", fx.bobToAlice)
	return b.String()
}

func TestHandshakeVector(t *testing.T) {
	want := vectorText(t)
	if *updateCorpus {
		if err := os.WriteFile(vectorFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("the exchange no longer matches %s: the wire format or key schedule changed", vectorFile)
	}
	fx := getFuzzFix(t)
	if len(fx.aliceToBob) != TransportOverhead+32 || len(fx.bobToAlice) != TransportOverhead+32 {
		t.Fatal("transport messages of the vector have the wrong length")
	}
}
