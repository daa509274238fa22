package uapi

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/tapwire/tapwire/devconf"
)

// encodeSet writes cfg as a set=1 body: the inverse of ParseSet.
func encodeSet(cfg devconf.DeviceConfig) string {
	var b strings.Builder
	if cfg.PrivateKey != nil {
		fmt.Fprintf(&b, "private_key=%s\n", cfg.PrivateKey.Hex())
	}
	if cfg.ListenPort != nil {
		fmt.Fprintf(&b, "listen_port=%d\n", *cfg.ListenPort)
	}
	if cfg.FwMark != nil {
		fmt.Fprintf(&b, "fwmark=%d\n", *cfg.FwMark)
	}
	if cfg.ReplacePeers {
		b.WriteString("replace_peers=true\n")
	}
	for _, p := range cfg.Peers {
		fmt.Fprintf(&b, "public_key=%s\n", p.PublicKey.Hex())
		if p.Remove {
			b.WriteString("remove=true\n")
			continue
		}
		if p.UpdateOnly {
			b.WriteString("update_only=true\n")
		}
		if p.PresharedKey != nil {
			fmt.Fprintf(&b, "preshared_key=%s\n", p.PresharedKey.Hex())
		}
		if p.Endpoint != nil {
			fmt.Fprintf(&b, "endpoint=%s\n", p.Endpoint)
		}
		if p.PersistentKeepalive != nil {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", *p.PersistentKeepalive)
		}
		if p.ReplaceAllowedIPs {
			b.WriteString("replace_allowed_ips=true\n")
		}
		for _, a := range p.RemoveAllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=-%s\n", a)
		}
		for _, a := range p.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// normalize makes empty slices nil, for comparisons.
func normalize(c devconf.DeviceConfig) devconf.DeviceConfig {
	if len(c.Peers) == 0 {
		c.Peers = nil
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		if len(p.AllowedIPs) == 0 {
			p.AllowedIPs = nil
		}
		if len(p.RemoveAllowedIPs) == 0 {
			p.RemoveAllowedIPs = nil
		}
	}
	return c
}

// FuzzParseSet checks that ParseSet never panics, fails only with EINVAL,
// EPROTO or EIO *Errors, and that what it accepts survives a round trip.
func FuzzParseSet(f *testing.F) {
	f.Add([]byte("private_key=" + hexPriv + "\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n\n"))
	f.Add([]byte("public_key=" + hexPub1 + "\nendpoint=[::1]:51820\nallowed_ip=10.0.0.0/8\nallowed_ip=-10.1.0.0/16\n\n"))
	f.Add([]byte("public_key=" + hexPub1 + "\nremove=true\npublic_key=" + hexPub2 + "\nupdate_only=true\n\n"))
	f.Add([]byte("listen_port\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseSet(bytes.NewReader(data))
		if err != nil {
			var ue *devconf.Error
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not an *devconf.Error", err)
			}
			switch syscall.Errno(ue.Errno) {
			case syscall.EINVAL, syscall.EPROTO:
			default:
				t.Fatalf("errno %d: %v", ue.Errno, err)
			}
			if !reflect.DeepEqual(cfg, devconf.DeviceConfig{}) {
				t.Fatalf("config returned with an error: %+v", cfg)
			}
			return
		}
		enc := encodeSet(cfg)
		again, err := ParseSet(strings.NewReader(enc))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", enc, err)
		}
		if a, b := normalize(cfg), normalize(again); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\nvia %q", a, b, enc)
		}
	})
}
