package protocol

import "testing"

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
	for _, s := range []string{"", "abc", "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm=", "!!!!"} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
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
