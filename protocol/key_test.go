package protocol

import (
	"strings"
	"testing"
)

// A key pair from the wg(8) documentation style: generated once with
// `wg genkey | tee priv | wg pubkey`.
func TestPublicKeyMatchesWG(t *testing.T) {
	priv, err := ParseKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
	if err != nil {
		t.Fatal(err)
	}
	// The public key the wg tool derives from that private key.
	want := "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
	if got := priv.PublicKey().String(); got != want {
		t.Errorf("PublicKey = %s, want %s", got, want)
	}
}

func TestParseKeyErrors(t *testing.T) {
	// A mistyped key is still a secret: the error does not show it, nor
	// any part of it.
	for _, s := range []string{"", "abc", "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm=", "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk", "!!!!"} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		} else if len(s) > 3 && strings.Contains(err.Error(), s[:4]) {
			t.Errorf("ParseKey(%q): the error shows the key: %v", s, err)
		}
	}
	for _, s := range []string{"c8", "c879f2a4d7e2c7f3b21c9b6e3f0a1d5e7c8b9a0f1e2d3c4b5a69788796a5b4c", "c879f2a4d7e2c7f3b21c9b6e3f0a1d5e7c8b9a0f1e2d3c4b5a69788796a5b4cz"} {
		if _, err := ParseHexKey(s); err == nil {
			t.Errorf("ParseHexKey(%q) accepted", s)
		} else if strings.Contains(err.Error(), s[:2]) {
			t.Errorf("ParseHexKey(%q): the error shows the key: %v", s, err)
		}
	}
	k, _ := GeneratePrivateKey()
	back, err := ParseHexKey(k.Hex())
	if err != nil || !back.Equal(k) {
		t.Errorf("hex round trip: %v", err)
	}
	if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Error("generated key not clamped")
	}
}

// wg refuses keys whose base64 has stray low bits in the last character;
// so does ParseKey.
func TestParseKeyCanonical(t *testing.T) {
	good := "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	bad := "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBml="
	if _, err := ParseKey(good); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKey(bad); err == nil {
		t.Errorf("non-canonical key %s accepted", bad)
	}
}

func TestHideKeys(t *testing.T) {
	k, _ := GeneratePrivateKey()
	for in, want := range map[string]string{
		"":                                 "",
		"wg0":                              "wg0",
		"10.0.0.1/24, fd00::1/64":          "10.0.0.1/24, fd00::1/64",
		"PrivateKey: " + k.String():        "PrivateKey: [44 characters hidden]",
		"private_key=" + k.Hex():           "private_key=[64 characters hidden]",
		k.String()[:43] + ":51820":         "[43 characters hidden]:51820",
		"a " + k.Hex()[:31] + " b":         "a " + k.Hex()[:31] + " b", // shorter than a key's most
		k.Hex()[:32] + "," + k.String():    "[32 characters hidden],[44 characters hidden]",
		"PersistentKeepalive = 25 # gone!": "PersistentKeepalive = 25 # gone!",
	} {
		if got := HideKeys(in); got != want {
			t.Errorf("HideKeys(%q) = %q, want %q", in, got, want)
		}
	}
}
