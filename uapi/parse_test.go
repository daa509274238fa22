package uapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
)

func mustHexKey(t testing.TB, s string) protocol.Key {
	t.Helper()
	k, err := protocol.ParseHexKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ptr[T any](v T) *T { return &v }

// Keys from the example at https://www.wireguard.com/xplatform/.
const (
	hexPriv = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
	hexPub1 = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
	hexPSK1 = "188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52"
	hexPub2 = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376"
	hexPub3 = "662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58"
)

func TestParseSetExample(t *testing.T) {
	// The set example of the protocol description, plus the keys it lacks.
	body := `private_key=` + hexPriv + `
listen_port=12912
fwmark=0
replace_peers=true
public_key=` + hexPub1 + `
preshared_key=` + hexPSK1 + `
replace_allowed_ips=true
allowed_ip=192.168.4.4/32
endpoint=[abcd:23::33%2]:51820
public_key=` + hexPub2 + `
replace_allowed_ips=true
allowed_ip=192.168.4.6/32
persistent_keepalive_interval=111
endpoint=182.122.22.19:3233
protocol_version=1
public_key=` + hexPub3 + `
endpoint=5.152.198.39:51820
replace_allowed_ips=true
allowed_ip=192.168.4.10/32
allowed_ip=192.168.4.11/32
update_only=true
public_key=` + hexPub1 + `
remove=true

`
	got, err := ParseSet(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want := devconf.DeviceConfig{
		PrivateKey:   ptr(mustHexKey(t, hexPriv)),
		ListenPort:   ptr(uint16(12912)),
		FwMark:       ptr(uint32(0)),
		ReplacePeers: true,
		Peers: []devconf.PeerConfig{
			{
				PublicKey:         mustHexKey(t, hexPub1),
				PresharedKey:      ptr(mustHexKey(t, hexPSK1)),
				ReplaceAllowedIPs: true,
				AllowedIPs:        []netip.Prefix{netip.MustParsePrefix("192.168.4.4/32")},
				Endpoint:          ptr(netip.MustParseAddrPort("[abcd:23::33%2]:51820")),
			},
			{
				PublicKey:           mustHexKey(t, hexPub2),
				ReplaceAllowedIPs:   true,
				AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("192.168.4.6/32")},
				PersistentKeepalive: ptr(uint16(111)),
				Endpoint:            ptr(netip.MustParseAddrPort("182.122.22.19:3233")),
			},
			{
				PublicKey:         mustHexKey(t, hexPub3),
				Endpoint:          ptr(netip.MustParseAddrPort("5.152.198.39:51820")),
				ReplaceAllowedIPs: true,
				AllowedIPs:        []netip.Prefix{netip.MustParsePrefix("192.168.4.10/32"), netip.MustParsePrefix("192.168.4.11/32")},
				UpdateOnly:        true,
			},
			{PublicKey: mustHexKey(t, hexPub1), Remove: true},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSet:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseSetValues(t *testing.T) {
	pub := "public_key=" + hexPub1 + "\n"
	for _, tc := range []struct {
		name, body string
		check      func(t *testing.T, c devconf.DeviceConfig)
	}{
		{"empty", "\n", func(t *testing.T, c devconf.DeviceConfig) {
			if !reflect.DeepEqual(c, devconf.DeviceConfig{}) {
				t.Errorf("got %+v, want nothing", c)
			}
		}},
		{"zero private key removes", "private_key=" + strings.Repeat("0", 64) + "\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if c.PrivateKey == nil || !c.PrivateKey.IsZero() {
				t.Errorf("PrivateKey = %v, want the zero key", c.PrivateKey)
			}
		}},
		{"upper-case hex", "private_key=" + strings.ToUpper(hexPriv) + "\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if c.PrivateKey == nil || *c.PrivateKey != mustHexKey(t, hexPriv) {
				t.Errorf("PrivateKey = %v", c.PrivateKey)
			}
		}},
		{"listen_port 0 and max", "listen_port=0\nlisten_port=65535\nfwmark=4294967295\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if *c.ListenPort != 65535 || *c.FwMark != 4294967295 {
				t.Errorf("got port %d fwmark %d", *c.ListenPort, *c.FwMark)
			}
		}},
		{"zero preshared key means none", pub + "preshared_key=" + strings.Repeat("0", 64) + "\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if p := c.Peers[0].PresharedKey; p == nil || !p.IsZero() {
				t.Errorf("PresharedKey = %v", p)
			}
		}},
		{"endpoints", pub + "endpoint=1.2.3.4:51820\n" + pub + "endpoint=[::1]:51820\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if got := c.Peers[0].Endpoint.String(); got != "1.2.3.4:51820" {
				t.Errorf("endpoint 0 = %s", got)
			}
			if got := c.Peers[1].Endpoint.String(); got != "[::1]:51820" {
				t.Errorf("endpoint 1 = %s", got)
			}
		}},
		{"keepalive 0 is off", pub + "persistent_keepalive_interval=0\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if p := c.Peers[0].PersistentKeepalive; p == nil || *p != 0 {
				t.Errorf("keepalive = %v", p)
			}
		}},
		{"allowed IPs masked", pub + "allowed_ip=10.1.2.3/8\nallowed_ip=2001:db8::1/32\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
			if !reflect.DeepEqual(c.Peers[0].AllowedIPs, want) {
				t.Errorf("AllowedIPs = %v", c.Peers[0].AllowedIPs)
			}
		}},
		{"allowed_ip removal, last line wins", pub + "allowed_ip=10.0.0.0/8\nallowed_ip=-10.0.0.0/8\nallowed_ip=-10.9.0.0/16\nallowed_ip=10.9.0.0/16\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			p := c.Peers[0]
			if !reflect.DeepEqual(p.AllowedIPs, []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}) ||
				!reflect.DeepEqual(p.RemoveAllowedIPs, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) {
				t.Errorf("add %v remove %v", p.AllowedIPs, p.RemoveAllowedIPs)
			}
		}},
		{"replace_allowed_ips drops earlier lines", pub + "allowed_ip=10.0.0.0/8\nreplace_allowed_ips=true\nallowed_ip=10.1.0.0/16\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			p := c.Peers[0]
			if !p.ReplaceAllowedIPs || !reflect.DeepEqual(p.AllowedIPs, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}) {
				t.Errorf("%+v", p)
			}
		}},
		{"remove ignores the rest of the section", pub + "allowed_ip=10.0.0.0/8\nremove=true\nendpoint=1.2.3.4:5\nallowed_ip=10.1.0.0/16\n" + "public_key=" + hexPub2 + "\nendpoint=1.2.3.4:5\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			want := devconf.PeerConfig{PublicKey: mustHexKey(t, hexPub1), Remove: true}
			if !reflect.DeepEqual(c.Peers[0], want) {
				t.Errorf("removed peer: %+v", c.Peers[0])
			}
			if c.Peers[1].Endpoint == nil {
				t.Errorf("next peer lost its endpoint")
			}
		}},
		{"end of input ends the body", "listen_port=7\nfwmark=9", func(t *testing.T, c devconf.DeviceConfig) {
			if *c.ListenPort != 7 || *c.FwMark != 9 {
				t.Errorf("%+v", c)
			}
		}},
		{"CRLF", "listen_port=7\r\nfwmark=9\r\n\r\nlisten_port=8\n", func(t *testing.T, c devconf.DeviceConfig) {
			if *c.ListenPort != 7 || *c.FwMark != 9 {
				t.Errorf("%+v", c)
			}
		}},
		{"tapwire keys", "tapwire_listen_tcp=443\ntapwire_flood_limit=1000\n" + pub + "tapwire_transport=auto\n" + "public_key=" + hexPub2 + "\ntapwire_transport=tcp\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if c.ListenTCP == nil || *c.ListenTCP != 443 {
				t.Errorf("ListenTCP = %v", c.ListenTCP)
			}
			if c.FloodLimit == nil || *c.FloodLimit != 1000 {
				t.Errorf("FloodLimit = %v", c.FloodLimit)
			}
			if p := c.Peers[0].Transport; p == nil || *p != devconf.TransportAuto {
				t.Errorf("peer 0 Transport = %v, want auto", p)
			}
			if p := c.Peers[1].Transport; p == nil || *p != devconf.TransportTCP {
				t.Errorf("peer 1 Transport = %v, want tcp", p)
			}
		}},
		{"no tapwire_transport leaves it", pub + "endpoint=1.2.3.4:5\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if p := c.Peers[0].Transport; p != nil {
				t.Errorf("Transport = %v, want nil (unchanged)", *p)
			}
		}},
		{"same peer twice", pub + "allowed_ip=10.0.0.0/8\n" + pub + "update_only=true\n\n", func(t *testing.T, c devconf.DeviceConfig) {
			if len(c.Peers) != 2 || c.Peers[0].UpdateOnly || !c.Peers[1].UpdateOnly {
				t.Errorf("%+v", c.Peers)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseSet(strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// ParseSet on a *bufio.Reader stops right after the blank line, so that the
// next request on a connection is intact.
func TestParseSetStopsAtBlankLine(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("listen_port=1\n\nget=1\n\n"))
	if _, err := ParseSet(br); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "get=1\n\n" {
		t.Errorf("left %q, want the next request", rest)
	}
}

func TestParseSetErrors(t *testing.T) {
	pub := "public_key=" + hexPub1 + "\n"
	secret := hexPriv[:63] // one digit short: must not be echoed
	for _, tc := range []struct {
		name, body string
		errno      syscall.Errno
		msg        string // in the message
	}{
		{"no equals sign", "listen_port\n\n", syscall.EPROTO, `line 1 "listen_port": no '='`},
		{"unknown device key", "listen_port=1\nbogus=1\n\n", syscall.EINVAL, `line 2 ("bogus"): unknown device key`},
		{"unknown peer key", pub + "bogus=1\n\n", syscall.EINVAL, `line 2 ("bogus"): unknown peer key`},
		{"peer key before public_key", "endpoint=1.2.3.4:5\n\n", syscall.EINVAL, `line 1 ("endpoint"): peer key before any public_key`},
		{"allowed_ip before public_key", "allowed_ip=10.0.0.0/8\n\n", syscall.EINVAL, "peer key before any public_key"},
		{"device key after public_key", pub + "listen_port=1\n\n", syscall.EINVAL, `line 2 ("listen_port"): device key after a public_key`},
		{"bad private key hex", "private_key=" + secret + "\n\n", syscall.EINVAL, "bad private key"},
		{"private key not hex", "private_key=" + strings.Repeat("g", 64) + "\n\n", syscall.EINVAL, "bad private key"},
		{"bad public key", "public_key=xyz\n\n", syscall.EINVAL, `bad public key "xyz"`},
		{"private key without =", "private_key " + secret + "\n\n", syscall.EPROTO, `line 1 "private_key [63 characters hidden]": no '='`},
		{"private key sent as a public key", "public_key=" + secret + "\n\n", syscall.EINVAL, `bad public key "[63 characters hidden]"`},
		{"private key in a key's name", "private_key:" + secret + "=1\n\n", syscall.EINVAL, `line 1 ("private_key:[63 characters hidden]"): unknown device key`},
		{"bad preshared key", pub + "preshared_key=" + secret + "\n\n", syscall.EINVAL, "bad preshared key"},
		{"listen_port too big", "listen_port=65536\n\n", syscall.EINVAL, `bad port "65536"`},
		{"listen_port negative", "listen_port=-1\n\n", syscall.EINVAL, "bad port"},
		{"listen_port not a number", "listen_port=abc\n\n", syscall.EINVAL, "bad port"},
		{"listen_port empty", "listen_port=\n\n", syscall.EINVAL, "bad port"},
		{"flood limit too big", "tapwire_flood_limit=4294967296\n\n", syscall.EINVAL, `bad flood limit "4294967296"`},
		{"flood limit negative", "tapwire_flood_limit=-1\n\n", syscall.EINVAL, "bad flood limit"},
		{"flood limit after a peer", pub + "tapwire_flood_limit=10\n\n", syscall.EINVAL, "device key after a public_key"},
		{"fwmark too big", "fwmark=4294967296\n\n", syscall.EINVAL, "bad fwmark"},
		{"fwmark hex", "fwmark=0x10\n\n", syscall.EINVAL, "bad fwmark"},
		{"replace_peers false", "replace_peers=false\n\n", syscall.EINVAL, `only "true"`},
		{"endpoint without port", pub + "endpoint=1.2.3.4\n\n", syscall.EINVAL, `bad endpoint "1.2.3.4"`},
		{"endpoint host name", pub + "endpoint=vpn.example.com:51820\n\n", syscall.EINVAL, "bad endpoint"},
		{"endpoint IPv6 without brackets", pub + "endpoint=::1:51820\n\n", syscall.EINVAL, "bad endpoint"},
		{"endpoint bad port", pub + "endpoint=[::1]:65536\n\n", syscall.EINVAL, "bad endpoint"},
		{"keepalive too big", pub + "persistent_keepalive_interval=65536\n\n", syscall.EINVAL, "bad interval"},
		{"allowed_ip bad bits", pub + "allowed_ip=10.0.0.0/33\n\n", syscall.EINVAL, "bad prefix"},
		{"allowed_ip no bits", pub + "allowed_ip=10.0.0.1\n\n", syscall.EINVAL, "bad prefix"},
		{"transport upper case", pub + "tapwire_transport=TCP\n\n", syscall.EINVAL, `bad transport "TCP"`},
		{"transport unknown", pub + "tapwire_transport=quic\n\n", syscall.EINVAL, `bad transport "quic"`},
		{"transport in the device section", "tapwire_transport=tcp\n\n", syscall.EINVAL, "peer key before any public_key"},
		{"protocol_version 2", pub + "protocol_version=2\n\n", syscall.EINVAL, "unsupported protocol version"},
		{"remove yes", pub + "remove=yes\n\n", syscall.EINVAL, `only "true"`},
		{"update_only 1", pub + "update_only=1\n\n", syscall.EINVAL, `only "true"`},
		{"replace_allowed_ips false", pub + "replace_allowed_ips=false\n\n", syscall.EINVAL, `only "true"`},
		{"bad line after remove", pub + "remove=true\nendpoint=nope\n\n", syscall.EINVAL, "line 3"},
		{"line too long", "fwmark=" + strings.Repeat("1", MaxLineLen) + "\n\n", syscall.EINVAL, "longer than"},
		{"line too long at EOF", strings.Repeat("x", 3*MaxLineLen), syscall.EINVAL, "longer than"},
		{"bad last line without newline", "listen_port=1\nfwmark=x", syscall.EINVAL, "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseSet(strings.NewReader(tc.body))
			var ue *devconf.Error
			if !errors.As(err, &ue) {
				t.Fatalf("ParseSet = %+v, %v; want an *devconf.Error", c, err)
			}
			if ue.Errno != int(tc.errno) {
				t.Errorf("errno %d, want %d (%v)", ue.Errno, int(tc.errno), err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("message %q shows a secret key", err)
			}
			if !reflect.DeepEqual(c, devconf.DeviceConfig{}) {
				t.Errorf("config %+v returned with an error", c)
			}
		})
	}
}

func TestParseSetReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("listen_port=1\n"), iotestErrReader{})
	_, err := ParseSet(r)
	var ue *devconf.Error
	if !errors.As(err, &ue) || ue.Errno != int(syscall.EIO) {
		t.Fatalf("got %v, want EIO", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

// errnoOf reads the errno out of what Apply returns (devconf's own tests
// cover *devconf.Error itself).
func TestErrnoOf(t *testing.T) {
	e := devconf.Errorf(syscall.EADDRINUSE, "port %d", 1)
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{e, devconf.WireErrno(syscall.EADDRINUSE)}, // 98 on Linux and Windows
		{&devconf.Error{Errno: -22}, 22},           // wireguard-go's negative constants
		{&devconf.Error{}, 55},
		{errors.Join(errors.New("wrapped"), devconf.Errorf(syscall.EINVAL, "x")), 22},
		{fmt.Errorf("listen: %w", syscall.EACCES), 13},
		{errors.New("plain"), 55}, // ENOANO, as wireguard-go
	} {
		if got := errnoOf(tc.err); got != tc.want {
			t.Errorf("errnoOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestParseSetTooLarge: ParseSet refuses a body longer than
// DefaultMaxSetSize with EMSGSIZE, naming the line where it went over.
func TestParseSetTooLarge(t *testing.T) {
	line := "allowed_ip=10.1.2.3/32\n"
	n := DefaultMaxSetSize/len(line) + 1
	body := "public_key=" + hexPub1 + "\n" + strings.Repeat(line, n) + "\n"
	_, err := ParseSet(strings.NewReader(body))
	var ue *devconf.Error
	first := len("public_key=" + hexPub1 + "\n")
	over := (DefaultMaxSetSize-first)/len(line) + 2 // the line that goes over
	if !errors.As(err, &ue) || ue.Errno != int(syscall.EMSGSIZE) || !strings.Contains(err.Error(), fmt.Sprintf("line %d: the transaction is longer than %d bytes", over, DefaultMaxSetSize)) {
		t.Errorf("ParseSet of %d bytes: %v, want EMSGSIZE at line %d", len(body), err, over)
	}
	// Just under the bound: parsed.
	body = "public_key=" + hexPub1 + "\n" + strings.Repeat(line, (DefaultMaxSetSize-100)/len(line)) + "\n"
	if c, err := ParseSet(strings.NewReader(body)); err != nil || len(c.Peers) != 1 {
		t.Errorf("ParseSet of %d bytes: %v", len(body), err)
	}
}
