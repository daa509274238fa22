package config

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
)

// Keys of the test files (made with wg genkey, wg pubkey, wg genpsk).
const (
	priv1 = "UEXQ6j2NmxJOIZNHrSzhSpvXYjXf+f6A+zHLPDfhClE="
	pub1  = "M9OpAoxITV03HQnLQLwkW2phlcVbN/o/wXBU5B9BLRo="
	psk1  = "jr3+87IouAtL2mS/Ysgr2OSqdPgf6E36OaUXJ+EzYnQ="
	priv2 = "4HYuCGdqgNa7sPT4dAELoEDfXrpGZQbTrPbS4CPlu0E="
	pub2  = "XPuXB5OiiadCafPmALSSgru+uLZXg49Vz+RX+Zy5C0o="
	pub3  = "V91HnQtcASIratR1nmIaVSAVBxtSsUZnByrGWwpY/HM="
	pub4  = "MualrHaGuJ2q1edN8AhDptsQMIjPAl8putbqlpGx41c="
	pub5  = "CY6I4tUrhncY//9anTAuTsyIqMJVfA94gi3jpV6sGG8="
)

func key(s string) protocol.Key {
	k, err := protocol.ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

func pfxs(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

func TestKeyPairs(t *testing.T) {
	if key(priv1).PublicKey() != key(pub1) || key(priv2).PublicKey() != key(pub2) {
		t.Fatal("test keys are not pairs")
	}
}

func mustParse(t *testing.T, name, text string) *Config {
	t.Helper()
	c, err := Parse(name, strings.NewReader(text))
	if err != nil {
		t.Fatalf("Parse(%s): %v\n%s", name, err, text)
	}
	return c
}

// withoutLines returns a copy of c with the line fields (Peer.Line,
// Interface.DNSLine) zeroed.
func withoutLines(c *Config) *Config {
	d := *c
	d.Peers = append([]Peer(nil), c.Peers...)
	for i := range d.Peers {
		d.Peers[i].Line = 0
	}
	d.Interface.DNSLine = 0
	return &d
}

func TestTestdata(t *testing.T) {
	want := map[string]*Config{
		"client.conf": {
			Interface: Interface{
				PrivateKey: key(priv1),
				Addresses:  pfxs("10.200.0.2/32", "fd00:200::2/128"),
				DNS:        []string{"10.200.0.1", "fd00:200::1", "vpn.example.com"},
				MTU:        1420,
			},
			Peers: []Peer{{
				PublicKey: key(pub2), PresharedKey: key(psk1),
				AllowedIPs: pfxs("0.0.0.0/0", "::/0"), Endpoint: "vpn.example.com:51820",
				PersistentKeepalive: 25 * time.Second, Line: 8,
			}},
		},
		"server.conf": {
			Interface: Interface{
				PrivateKey: key(priv2), ListenPort: 51820, FwMark: 0xca6c,
				Addresses: pfxs("10.200.0.1/24", "fd00:200::1/64"),
				Table:     TableOff(),
				PostUp:    []string{"iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE"},
				PostDown:  []string{"iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE"},
			},
			Peers: []Peer{
				{PublicKey: key(pub1), PresharedKey: key(psk1), AllowedIPs: pfxs("10.200.0.2/32", "fd00:200::2/128"), Line: 13},
				{PublicKey: key(pub3), AllowedIPs: pfxs("10.200.0.3/32", "192.168.50.0/24"), Endpoint: "[2001:db8::3]:51821", Line: 19},
				{PublicKey: key(pub4), AllowedIPs: pfxs("10.200.0.4/32"), Endpoint: "198.51.100.4:51820", Line: 25},
			},
		},
		"quirks.conf": {
			Interface: Interface{
				PrivateKey: key(priv1), ListenPort: 51820, FwMark: 1234,
				Addresses:  pfxs("10.9.0.1/32", "fd00:9::1/64", "10.9.1.1/24"),
				DNS:        []string{"9.9.9.9"},
				Table:      Table{kind: tableID, id: 1234, text: "1234"},
				PreUp:      []string{`echo "up #1" >/dev/null   # a hook keeps its # (bash decides)`},
				SaveConfig: true,
			},
			Peers: []Peer{
				{PublicKey: key(pub2), AllowedIPs: pfxs("10.9.0.0/24", "10.8.0.0/16", "::ffff:10.0.0.0/104"), Endpoint: "[fe80::1%eth0]:51820", Line: 13},
				{PublicKey: key(pub3), Line: 18},
			},
		},
		"tap.conf": {
			Interface: Interface{PrivateKey: key(priv2), ListenPort: 51820, Mode: ModeTAP, Bridge: "br0",
				ClampMSS: SwitchOn, MACAgeing: 120 * time.Second, MaxMACsPerPeer: 64, FloodLimit: 1000},
			Peers: []Peer{{
				PublicKey: key(pub5), AllowedIPs: pfxs("0.0.0.0/0", "::/0"), Endpoint: "peer.example.net:51820", Line: 12,
				AllowedMACs: []l2switch.MAC{{0x02, 0, 0x5e, 0, 0x53, 1}, {0x02, 0, 0x5e, 0, 0x53, 2}},
			}},
		},
		"crlf.conf": {
			Interface: Interface{PrivateKey: key(priv1), Addresses: pfxs("10.1.0.2/24"), PostUp: []string{"echo crlf"}},
			Peers:     []Peer{{PublicKey: key(pub2), AllowedIPs: pfxs("10.1.0.0/24"), Endpoint: "192.0.2.1:51820", Line: 6}},
		},
	}
	files, _ := filepath.Glob("testdata/*.conf")
	if len(files) != len(want) {
		t.Errorf("testdata has %d .conf files, the test knows %d", len(files), len(want))
	}
	for name, w := range want {
		path := filepath.Join("testdata", name)
		w.Path = path
		c, err := ParseFile(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(c.Interface.DNS) > 0 && c.Interface.DNSLine == 0 {
			t.Errorf("%s: DNS without its line", name)
		}
		c.Interface.DNSLine = 0
		if !reflect.DeepEqual(c, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, c, w)
		}
		roundTrip(t, c)
	}
}

// roundTrip checks that c survives Marshal and Parse, and that WGConf
// parses to c's wg part.
func roundTrip(t *testing.T, c *Config) {
	t.Helper()
	out := c.Marshal()
	c2, err := Parse(c.Path, bytes.NewReader(out))
	if err != nil {
		t.Fatalf("Parse(Marshal()) of %s: %v\n%s", c.Path, err, out)
	}
	if !reflect.DeepEqual(withoutLines(c), withoutLines(c2)) {
		t.Fatalf("round trip of %s changed it:\n got %+v\nwant %+v\n%s", c.Path, c2, c, out)
	}
	if again := c2.Marshal(); !bytes.Equal(again, out) {
		t.Fatalf("Marshal not stable for %s:\n%s\n---\n%s", c.Path, out, again)
	}
	wgc, err := Parse(c.Path, bytes.NewReader(c.WGConf()))
	if err != nil {
		t.Fatalf("Parse(WGConf()) of %s: %v\n%s", c.Path, err, c.WGConf())
	}
	if want := wgPart(c); !reflect.DeepEqual(withoutLines(wgc), withoutLines(want)) {
		t.Fatalf("WGConf of %s:\n got %+v\nwant %+v", c.Path, wgc, want)
	}
}

// wgPart returns what of c wg setconf takes.
func wgPart(c *Config) *Config {
	peers := make([]Peer, len(c.Peers))
	for i, p := range c.Peers {
		p.AllowedMACs = nil // tapwire's
		peers[i] = p
	}
	if len(c.Peers) == 0 {
		peers = c.Peers
	}
	return &Config{
		Path:      c.Path,
		Interface: Interface{PrivateKey: c.Interface.PrivateKey, ListenPort: c.Interface.ListenPort, FwMark: c.Interface.FwMark},
		Peers:     peers,
	}
}

type goodCase struct {
	name, text string
	check      func(*Config) bool
}

// goodCases are files that parse, with a check of the result.
func goodCases() []goodCase {
	base := "[Interface]\nPrivateKey = " + priv1 + "\n"
	peer := "[Peer]\nPublicKey = " + pub2 + "\n"
	return []goodCase{
		{"minimal", base, func(c *Config) bool { return c.Interface.PrivateKey == key(priv1) && c.Peers == nil }},
		{"no trailing newline", strings.TrimSuffix(base, "\n"), func(c *Config) bool { return c.Interface.PrivateKey == key(priv1) }},
		{"comments and blanks", "# top\n\n  ; ini\n" + base + "   # indented\n\t\n", func(c *Config) bool { return true }},
		{"key case", "[INTERFACE]\nPRIVATEKEY = " + priv1 + "\nlistenport = 1\n[pEeR]\npublickey=" + pub2, func(c *Config) bool {
			return c.Interface.ListenPort == 1 && len(c.Peers) == 1
		}},
		{"bare address is a host prefix", base + "Address = 10.0.0.1, fd00::1, ::ffff:10.0.0.1\n", func(c *Config) bool {
			return reflect.DeepEqual(c.Interface.Addresses, pfxs("10.0.0.1/32", "fd00::1/128", "::ffff:10.0.0.1/128"))
		}},
		{"address keeps host bits", base + "Address = 10.0.0.1/24\n", func(c *Config) bool {
			return c.Interface.Addresses[0].String() == "10.0.0.1/24"
		}},
		{"lists accumulate", base + "Address = 10.0.0.1/24\nAddress = 10.0.1.1/24 , ,10.0.2.1/24\nDNS = 1.1.1.1\nDNS = example.com 8.8.8.8\n" + peer +
			"AllowedIPs = 10.0.0.0/24\nAllowedIPs = 10.1.0.0/24,10.2.0.0/24\n", func(c *Config) bool {
			return len(c.Interface.Addresses) == 3 && reflect.DeepEqual(c.Interface.DNS, []string{"1.1.1.1", "example.com", "8.8.8.8"}) &&
				reflect.DeepEqual(c.Peers[0].AllowedIPs, pfxs("10.0.0.0/24", "10.1.0.0/24", "10.2.0.0/24"))
		}},
		{"allowed IPs masked, default length", base + peer + "AllowedIPs = 10.1.2.3/8, 10.1.2.3, fd00::1/8, fd00::1, ::ffff:17.2.3.4/100, 0.0.0.0/000\n", func(c *Config) bool {
			return reflect.DeepEqual(c.Peers[0].AllowedIPs, pfxs("10.0.0.0/8", "10.1.2.3/32", "fd00::/8", "fd00::1/128", "::ffff:16.0.0.0/100", "0.0.0.0/0"))
		}},
		{"last single value wins", base + "ListenPort = 1\nListenPort = 2\nMTU = 1400\nMTU = 1280\n", func(c *Config) bool {
			return c.Interface.ListenPort == 2 && c.Interface.MTU == 1280
		}},
		{"fwmark forms", base + "FwMark = 0x10\n", func(c *Config) bool { return c.Interface.FwMark == 16 }},
		{"fwmark decimal", base + "FwMark = 010\n", func(c *Config) bool { return c.Interface.FwMark == 10 }},
		{"fwmark max", base + "FwMark = 0xffffffff\n", func(c *Config) bool { return c.Interface.FwMark == 0xffffffff }},
		{"fwmark off", base + "FwMark = 7\nFwMark = Off\n", func(c *Config) bool { return c.Interface.FwMark == 0 }},
		{"keepalive off", base + peer + "PersistentKeepalive = 25\nPersistentKeepalive = OFF\n", func(c *Config) bool { return c.Peers[0].PersistentKeepalive == 0 }},
		{"keepalive max", base + peer + "PersistentKeepalive = 65535\n", func(c *Config) bool { return c.Peers[0].PersistentKeepalive == 65535*time.Second }},
		{"listen port 0 and 65535", base + "ListenPort = 0\nListenPort = 65535\n", func(c *Config) bool { return c.Interface.ListenPort == 65535 }},
		{"mtu bounds", base + "MTU = 68\nMTU = 65535\n", func(c *Config) bool { return c.Interface.MTU == 65535 }},
		{"mtu empty is automatic", base + "MTU = 1400\nMTU =\n", func(c *Config) bool { return c.Interface.MTU == 0 }},
		{"table name", base + "Table = main\n", func(c *Config) bool {
			id, ok := c.Interface.Table.ID()
			return id == 254 && ok && c.Interface.Table.String() == "main"
		}},
		{"table auto", base + "Table = auto\n", func(c *Config) bool { return c.Interface.Table.Auto() && c.Interface.Table.String() == "auto" }},
		{"hooks keep # and =", base + "PostUp = echo a=b # c\nPostUp = echo 2\nPreDown=x\nPostDown =\n", func(c *Config) bool {
			return reflect.DeepEqual(c.Interface.PostUp, []string{"echo a=b # c", "echo 2"}) &&
				reflect.DeepEqual(c.Interface.PreDown, []string{"x"}) && reflect.DeepEqual(c.Interface.PostDown, []string{""})
		}},
		{"save config", base + "SaveConfig = true\n", func(c *Config) bool { return c.Interface.SaveConfig }},
		{"mode tun", base + "Mode = TUN\n", func(c *Config) bool { return c.Interface.Mode == ModeTUN }},
		{"endpoints", base + peer + "Endpoint = 192.0.2.1:1\n[Peer]\nPublicKey = " + pub3 + "\nEndpoint = [2001:db8::1]:65535\n" +
			"[Peer]\nPublicKey = " + pub4 + "\nEndpoint = a-b.example_x.com.:51820\n[Peer]\nPublicKey = " + pub5 + "\nEndpoint = localhost:51820\n", func(c *Config) bool {
			return c.Peers[0].Endpoint == "192.0.2.1:1" && c.Peers[1].Endpoint == "[2001:db8::1]:65535" && c.Peers[2].Endpoint == "a-b.example_x.com.:51820"
		}},
		{"zero preshared key is none", base + peer + "PresharedKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", func(c *Config) bool {
			return c.Peers[0].PresharedKey.IsZero()
		}},
		{"peer without allowed IPs", base + peer, func(c *Config) bool { return c.Peers[0].AllowedIPs == nil && c.Peers[0].Line == 3 }},
		{"interface after peers", peer + "AllowedIPs = 10.0.0.0/8\n" + base, func(c *Config) bool {
			return c.Interface.PrivateKey == key(priv1) && c.Peers[0].Line == 1
		}},
		{"whitespace inside wg keys and values", base + "[Peer]\nPublic Key = " + pub2[:10] + " " + pub2[10:] + "\nEnd point = exam ple.com : 5 1820\n", func(c *Config) bool {
			return c.Peers[0].PublicKey == key(pub2) && c.Peers[0].Endpoint == "example.com:51820"
		}},
		{"metrics address", base + "MetricsAddress = 127.0.0.1:9586\n", func(c *Config) bool {
			return c.Interface.MetricsAddress == netip.MustParseAddrPort("127.0.0.1:9586")
		}},
		{"metrics address IPv6, last wins", base + "metricsaddress = 0.0.0.0:1\nMetricsAddress = [::1]:09586\n", func(c *Config) bool {
			return c.Interface.MetricsAddress == netip.MustParseAddrPort("[::1]:9586")
		}},
		{"metrics address zone", base + "MetricsAddress = [fe80::1%eth0]:65535\n", func(c *Config) bool {
			return c.Interface.MetricsAddress.String() == "[fe80::1%eth0]:65535"
		}},
		{"comment right after value", "[Interface]#x\nPrivateKey=" + priv1 + "#comment\n", func(c *Config) bool { return c.Interface.PrivateKey == key(priv1) }},
	}
}

func TestParseGood(t *testing.T) {
	for _, c := range goodCases() {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, "good.conf", c.text)
			if !c.check(cfg) {
				t.Errorf("unexpected result: %+v", cfg)
			}
			roundTrip(t, cfg)
		})
	}
}

// TestParseBOM reads files as Windows Notepad saves them: a UTF-8
// byte-order mark first, and CRLF line ends. wg-quick rejects such a file,
// so it is not in testdata (the interop tests run wg-quick on those).
func TestParseBOM(t *testing.T) {
	crlf, err := os.ReadFile("testdata/crlf.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := mustParse(t, "bom.conf", string(crlf))
	got := mustParse(t, "bom.conf", "\xef\xbb\xbf"+string(crlf))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with a byte-order mark:\n got %+v\nwant %+v", got, want)
	}
	roundTrip(t, got)
	if out := got.Marshal(); bytes.HasPrefix(out, []byte("\xef\xbb\xbf")) {
		t.Errorf("Marshal writes the byte-order mark back:\n%s", out)
	}

	// Line numbers count from the mark's line as before.
	_, err = Parse("bom.conf", strings.NewReader("\ufeff[Interface]\r\nPrivateKey = "+priv1+"\r\nListenPort = x\r\n"))
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Key != "ListenPort" {
		t.Errorf("error after a byte-order mark: %v, want one at line 3, key ListenPort", err)
	}
	// Only the first character of the file may be one.
	for _, text := range []string{
		"\ufeff\ufeff[Interface]\nPrivateKey = " + priv1 + "\n",
		"\n\ufeff[Interface]\nPrivateKey = " + priv1 + "\n",
	} {
		if c, err := Parse("bom.conf", strings.NewReader(text)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", text, c)
		}
	}
}

func TestParseBad(t *testing.T) {
	base := "[Interface]\nPrivateKey = " + priv1 + "\n" // lines 1-2
	peer := "[Peer]\nPublicKey = " + pub2 + "\n"
	for _, c := range []struct {
		name, text string
		line       int
		key        string
		msg        string // a part of the message
	}{
		{"empty file", "", 0, "", "no [Interface] section"},
		{"only comments", "# nothing\n", 0, "", "no [Interface] section"},
		{"no private key", "# x\n[Interface]\nListenPort = 1\n", 2, "PrivateKey", "missing"},
		{"peers only", peer, 0, "", "no [Interface] section"},
		{"key outside sections", "ListenPort = 1\n" + base, 1, "ListenPort", "outside any section"},
		{"unknown interface key", base + "Foo = bar\n", 3, "Foo", "unknown key in [Interface]"},
		{"unknown peer key", base + peer + "Bar = 1\n", 5, "Bar", "unknown key in [Peer]"},
		{"peer key in interface", base + "PublicKey = " + pub2 + "\n", 3, "PublicKey", "belongs in a [Peer]"},
		{"interface key in peer", base + peer + "Address = 10.0.0.1/24\n", 5, "Address", "belongs in the [Interface]"},
		{"wg interface key in peer", base + peer + "listenport = 1\n", 5, "listenport", "belongs in the [Interface]"},
		{"wg-quick key split", base + "Save Config = true\n", 3, "Save Config", "unknown key"},
		{"unknown section", base + "[Peers]\n", 3, "[Peers]", "unknown section"},
		{"second interface", base + peer + "[Interface]\n", 5, "[Interface]", "second [Interface] section (the first is at line 1)"},
		{"no equals", base + "ListenPort 51820\n", 3, "ListenPort 51820", "not a `Key = value' line"},
		{"no key", base + " = 3\n", 3, "", "key is missing"},
		{"bad private key", base + "PrivateKey = abc\n", 3, "PrivateKey", "not a key"},
		{"private key not canonical", "[Interface]\nPrivateKey = UEXQ6j2NmxJOIZNHrSzhSpvXYjXf+f6A+zHLPDfhClF=\n", 2, "PrivateKey", "not a key"},
		{"private key no padding", "[Interface]\nPrivateKey = UEXQ6j2NmxJOIZNHrSzhSpvXYjXf+f6A+zHLPDfhClE\n", 2, "PrivateKey", "not a key"},
		{"empty private key", "[Interface]\nPrivateKey =\n", 2, "PrivateKey", "empty value"},
		{"bad public key", base + "[Peer]\nPublicKey = " + pub2[:20] + "\n", 4, "PublicKey", "is not a key"},
		{"bad preshared key", base + peer + "PresharedKey = x\n", 5, "PresharedKey", "not a key"},
		{"peer without public key", base + "[Peer]\nAllowedIPs = 10.0.0.0/8\n" + peer, 3, "PublicKey", "missing"},
		{"duplicate peer", base + peer + "AllowedIPs = 10.0.0.1/32\n\n[Peer]\n AllowedIPs = 10.0.0.2/32\n publickey = " + pub2 + "\n", 9, "publickey", "the [Peer] at line 3 has this public key too (its PublicKey is at line 4)"},
		{"listen port range", base + "ListenPort = 65536\n", 3, "ListenPort", "port number from 0 to 65535"},
		{"listen port name", base + "ListenPort = https\n", 3, "ListenPort", "port number"},
		{"listen port sign", base + "ListenPort = +5\n", 3, "ListenPort", "port number"},
		{"fwmark range", base + "FwMark = 4294967296\n", 3, "FwMark", "0xffffffff"},
		{"fwmark hex range", base + "FwMark = 0x100000000\n", 3, "FwMark", "0xffffffff"},
		{"fwmark 0X", base + "FwMark = 0X10\n", 3, "FwMark", "0xffffffff"},
		{"fwmark 0x only", base + "FwMark = 0x\n", 3, "FwMark", "0xffffffff"},
		{"fwmark negative", base + "FwMark = -1\n", 3, "FwMark", "0xffffffff"},
		{"keepalive range", base + peer + "PersistentKeepalive = 65536\n", 5, "PersistentKeepalive", "0 to 65535"},
		{"keepalive word", base + peer + "PersistentKeepalive = on\n", 5, "PersistentKeepalive", "want off"},
		{"mtu low", base + "MTU = 67\n", 3, "MTU", "68 to 65535"},
		{"mtu high", base + "MTU = 65536\n", 3, "MTU", "68 to 65535"},
		{"mtu word", base + "MTU = auto\n", 3, "MTU", "68 to 65535"},
		{"address bad", base + "Address = 10.0.0.1/24, 10.0.0.300\n", 3, "Address", `"10.0.0.300"`},
		{"address bad length", base + "Address = 10.0.0.1/33\n", 3, "Address", "prefix length"},
		{"address zone", base + "Address = fe80::1%eth0\n", 3, "Address", "not an IP address"},
		{"allowed IPs bad", base + peer + "AllowedIPs = 10.0.0.0/8, 10.0.0.x/8\n", 5, "AllowedIPs", `"10.0.0.x/8"`},
		{"allowed IPs length", base + peer + "AllowedIPs = fd00::/129\n", 5, "AllowedIPs", "0 to 128"},
		{"allowed IPs v4 length", base + peer + "AllowedIPs = 10.0.0.0/33\n", 5, "AllowedIPs", "0 to 32"},
		{"allowed IPs no length", base + peer + "AllowedIPs = 10.0.0.0/\n", 5, "AllowedIPs", "prefix length"},
		{"allowed IPs trailing comma", base + peer + "AllowedIPs = 10.0.0.0/8,\n", 5, "AllowedIPs", "empty entry"},
		{"allowed IPs space separated", base + peer + "AllowedIPs = 10.0.0.0/8 10.1.0.0/16\n", 5, "AllowedIPs", "separate them with commas"},
		{"allowed IPs empty", base + peer + "AllowedIPs =\n", 5, "AllowedIPs", "empty value"},
		{"allowed IPs incremental", base + peer + "AllowedIPs = +10.0.0.0/8\n", 5, "AllowedIPs", "not an IP address"},
		{"dns bad server", base + "DNS = 1.2.3\n", 3, "DNS", "not an IP address"},
		{"dns bad domain", base + "DNS = exa$mple.com\n", 3, "DNS", "not a domain name"},
		{"endpoint no port", base + peer + "Endpoint = 192.0.2.1\n", 5, "Endpoint", "no port"},
		{"endpoint port 0", base + peer + "Endpoint = 192.0.2.1:0\n", 5, "Endpoint", "1 to 65535"},
		{"endpoint port range", base + peer + "Endpoint = 192.0.2.1:65536\n", 5, "Endpoint", "1 to 65535"},
		{"endpoint empty port", base + peer + "Endpoint = host:\n", 5, "Endpoint", "1 to 65535"},
		{"endpoint port name", base + peer + "Endpoint = host:https\n", 5, "Endpoint", "1 to 65535"},
		{"endpoint bare v6", base + peer + "Endpoint = 2001:db8::1:51820\n", 5, "Endpoint", "must be in brackets"},
		{"endpoint v4 in brackets", base + peer + "Endpoint = [192.0.2.1]:51820\n", 5, "Endpoint", "not an IPv6 address"},
		{"endpoint no close bracket", base + peer + "Endpoint = [2001:db8::1:51820\n", 5, "Endpoint", "no ]"},
		{"endpoint junk after bracket", base + peer + "Endpoint = [2001:db8::1]51820\n", 5, "Endpoint", "no :port"},
		{"endpoint bad host", base + peer + "Endpoint = bad_host!:51820\n", 5, "Endpoint", "neither an IPv4 address nor a DNS name"},
		{"endpoint numeric non-IP", base + peer + "Endpoint = 192.0.2.256:51820\n", 5, "Endpoint", "neither an IPv4 address nor a DNS name"},
		{"endpoint no host", base + peer + "Endpoint = :51820\n", 5, "Endpoint", "no host"},
		{"table bad", base + "Table = a b\n", 3, "Table", "want off, auto"},
		{"table number range", base + "Table = 4294967296\n", 3, "Table", "routing table number"},
		{"save config", base + "SaveConfig = yes\n", 3, "SaveConfig", "neither true nor false"},
		{"save config empty", base + "SaveConfig =\n", 3, "SaveConfig", "neither true nor false"},
		{"mode", base + "Mode = tunnel\n", 3, "Mode", "want tun or tap"},
		{"bridge without tap", base + "Bridge = br0\n", 3, "Bridge", "add Mode = tap"},
		{"bridge with tun", base + "Mode = tun\nBridge = br0\n", 4, "Bridge", "add Mode = tap"},
		{"bridge name", base + "Mode = tap\nBridge = a/b\n", 4, "Bridge", "not a Linux interface name"},
		{"bridge long", base + "Mode = tap\nBridge = abcdefghijklmnop\n", 4, "Bridge", "longer than 15"},
		{"clampmss", base + "ClampMSS = maybe\n", 3, "ClampMSS", "want yes or no"},
		{"ageing without tap", base + "MACAgeing = 60\n", 3, "MACAgeing", "add Mode = tap"},
		{"ageing zero", base + "Mode = tap\nMACAgeing = 0\n", 4, "MACAgeing", "want seconds"},
		{"max macs", base + "Mode = tap\nMaxMACsPerPeer = lots\n", 4, "MaxMACsPerPeer", "want a number"},
		{"flood limit without tap", base + "FloodLimit = 1000\n", 3, "FloodLimit", "add Mode = tap"},
		{"private key as a peer's", base + "[Peer]\nPublicKey = " + priv1 + "\n", 4, "PublicKey", "this is the interface's PrivateKey"},
		{"allowed macs without tap", base + "[Peer]\nPublicKey = " + pub2 + "\nAllowedMACs = 02:00:5e:00:53:01\n", 5, "AllowedMACs", "add Mode = tap"},
		{"allowed macs bad", base + "Mode = tap\n[Peer]\nPublicKey = " + pub2 + "\nAllowedMACs = 02:00:5e:00:53:01, ff:ff:ff:ff:ff:ff\n", 6, "AllowedMACs", "want unicast MAC"},
		{"allowed macs in interface", base + "AllowedMACs = 02:00:5e:00:53:01\n", 3, "AllowedMACs", "belongs in a [Peer]"},
		{"metrics address name", base + "MetricsAddress = localhost:9586\n", 3, "MetricsAddress", "a host name: want an IP address and a TCP port"},
		{"metrics address no host", base + "MetricsAddress = :9586\n", 3, "MetricsAddress", "no address before the port"},
		{"metrics address no port", base + "MetricsAddress = 127.0.0.1\n", 3, "MetricsAddress", "no port"},
		{"metrics address port 0", base + "MetricsAddress = 127.0.0.1:0\n", 3, "MetricsAddress", "port 0"},
		{"metrics address port range", base + "MetricsAddress = 127.0.0.1:65536\n", 3, "MetricsAddress", "such as 127.0.0.1:9586"},
		{"metrics address bare v6", base + "MetricsAddress = ::1:9586\n", 3, "MetricsAddress", "must be in brackets"},
		{"metrics address v4 in brackets", base + "MetricsAddress = [127.0.0.1]:9586\n", 3, "MetricsAddress", "want an IP address"},
		{"metrics address empty", base + "MetricsAddress =\n", 3, "MetricsAddress", "empty value"},
		{"metrics address in peer", base + peer + "MetricsAddress = 127.0.0.1:9586\n", 5, "MetricsAddress", "belongs in the [Interface]"},
		{"unicode case folding", base + "Persistent\u212aeepalive = 1\n", 3, "Persistent\u212aeepalive", "unknown key"},
		{"unicode fold in value", base + "SaveConfig = fal\u017fe\n", 3, "SaveConfig", "neither true nor false"},
		{"first error by line", "[Interface]\n" + peer + "[Peer]\n", 1, "PrivateKey", "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("bad.conf", strings.NewReader(c.text))
			if err == nil {
				t.Fatalf("no error; parsed %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("a Config with the error: %+v", cfg)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if e.File != "bad.conf" || e.Line != c.line || e.Key != c.key {
				t.Errorf("error at %s:%d key %q, want bad.conf:%d key %q: %v", e.File, e.Line, e.Key, c.line, c.key, err)
			}
			prefix := "bad.conf"
			if c.line > 0 {
				prefix += ":" + strconv.Itoa(c.line)
			}
			prefix += ": "
			if c.key != "" {
				prefix += c.key + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q, want it to start with %q and contain %q", err, prefix, c.msg)
			}
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	bad := "UEXQ6j2NmxJOIZNHrSzhSpvXYjXf+f6A+zHLPDfhCl"
	for _, k := range []string{"PrivateKey", "PresharedKey"} {
		text := "[Interface]\nPrivateKey = " + priv1 + "\n[Peer]\nPublicKey = " + pub2 + "\n"
		if k == "PrivateKey" {
			text = "[Interface]\nPrivateKey = " + bad + "\n"
		} else {
			text += "PresharedKey = " + bad + "\n"
		}
		_, err := Parse("s.conf", strings.NewReader(text))
		if err == nil || strings.Contains(err.Error(), bad[:20]) {
			t.Errorf("%s: error %v shows the key", k, err)
		}
	}

	// A key written where it does not belong, or on a malformed line: the
	// error still names the file, line and key, and shows no 8 characters
	// in a row of the secret (in base64 or in hex).
	hexKey := key(priv1).Hex()
	iface := "[Interface]\nPrivateKey = " + priv2 + "\n"
	peer := "[Peer]\nPublicKey = " + pub2 + "\n"
	for _, c := range []struct {
		name, text string
		line       int
		key        string
	}{
		{"colon instead of =", "[Interface]\nPrivateKey: " + priv1 + "\n", 2, "PrivateKey"},
		{"no = at all", "[Interface]\nPrivateKey " + priv1[:43] + "\n", 2, "PrivateKey"},
		{"spaced name and colon", "[Interface]\n private key : " + priv1 + "\n", 2, "PrivateKey"},
		{"psk with colon", iface + peer + "PresharedKey: " + priv1 + "\n", 5, "PresharedKey"},
		{"psk no =", iface + peer + "presharedkey " + priv1[:43] + "\n", 5, "PresharedKey"},
		{"almost valid", "[Interface]\nPrivateKey = " + priv1[:42] + "F=\n", 2, "PrivateKey"},
		{"too long", "[Interface]\nPrivateKey = " + priv1[:43] + priv1 + "\n", 2, "PrivateKey"},
		{"in hex", "[Interface]\nPrivateKey = " + hexKey + "\n", 2, "PrivateKey"},
		{"psk in hex", iface + peer + "PresharedKey = " + hexKey + "\n", 5, "PresharedKey"},
		{"as an address", iface + "Address = " + priv1 + "\n", 3, "Address"},
		{"as a DNS server", iface + "DNS = " + priv1[:43] + "\n", 3, "DNS"},
		{"as a table", iface + "Table = " + priv1[:43] + "\n", 3, "Table"},
		{"as a port", iface + "ListenPort = " + hexKey + "\n", 3, "ListenPort"},
		{"as an endpoint", iface + peer + "Endpoint = " + priv1[:43] + ":51820\n", 5, "Endpoint"},
		{"as allowed IPs", iface + peer + "AllowedIPs = 10.0.0.0/8, " + priv1 + "\n", 5, "AllowedIPs"},
		{"pasted as the public key", iface + "[Peer]\nPublicKey = " + priv1[:43] + "\n", 4, "PublicKey"},
		{"in a header", "[Interface " + priv1 + "]\n", 1, "[Interface [44 characters hidden]]"},
		{"as a key name", iface + priv1[:43] + " = 1\n", 3, "[43 characters hidden]"},
	} {
		_, err := Parse("s.conf", strings.NewReader(c.text))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v, want an *Error", c.name, err)
			continue
		}
		if e.Line != c.line || e.Key != c.key {
			t.Errorf("%s: error at line %d key %q, want line %d key %q: %v", c.name, e.Line, e.Key, c.line, c.key, err)
		}
		for _, secret := range []string{priv1, hexKey} {
			for i := 0; i+8 <= len(secret); i++ {
				if strings.Contains(err.Error(), secret[i:i+8]) {
					t.Errorf("%s: error %q shows the key (%q)", c.name, err, secret[i:i+8])
					break
				}
			}
		}
	}
}

func TestMarshal(t *testing.T) {
	c, err := ParseFile("testdata/server.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := `[Interface]
PrivateKey = ` + priv2 + `
ListenPort = 51820
FwMark = 0xca6c
Address = 10.200.0.1/24, fd00:200::1/64
Table = off
PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
PostDown = iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE

[Peer]
PublicKey = ` + pub1 + `
PresharedKey = ` + psk1 + `
AllowedIPs = 10.200.0.2/32, fd00:200::2/128

[Peer]
PublicKey = ` + pub3 + `
AllowedIPs = 10.200.0.3/32, 192.168.50.0/24
Endpoint = [2001:db8::3]:51821

[Peer]
PublicKey = ` + pub4 + `
AllowedIPs = 10.200.0.4/32
Endpoint = 198.51.100.4:51820
`
	if got := string(c.Marshal()); got != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", got, want)
	}
	wantWG := `[Interface]
PrivateKey = ` + priv2 + `
ListenPort = 51820
FwMark = 0xca6c

[Peer]
PublicKey = ` + pub1 + `
PresharedKey = ` + psk1 + `
AllowedIPs = 10.200.0.2/32, fd00:200::2/128

[Peer]
PublicKey = ` + pub3 + `
AllowedIPs = 10.200.0.3/32, 192.168.50.0/24
Endpoint = [2001:db8::3]:51821

[Peer]
PublicKey = ` + pub4 + `
AllowedIPs = 10.200.0.4/32
Endpoint = 198.51.100.4:51820
`
	if got := string(c.WGConf()); got != wantWG {
		t.Errorf("WGConf:\n%s\nwant:\n%s", got, wantWG)
	}

	tap, err := ParseFile("testdata/tap.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tap.WGConf()); strings.Contains(got, "Mode") || strings.Contains(got, "Bridge") || strings.Contains(got, "MAC") {
		t.Errorf("WGConf keeps tapwire keys:\n%s", got)
	}
	if got := string(tap.Marshal()); !strings.Contains(got, "Mode = tap\nBridge = br0\n") {
		t.Errorf("Marshal lost Mode/Bridge:\n%s", got)
	}

	// MetricsAddress is tapwire's: Marshal keeps it, WGConf leaves it out.
	m := mustParse(t, "m.conf", "[Interface]\nPrivateKey = "+priv1+"\nMetricsAddress = [::1]:9586\n")
	if got := string(m.Marshal()); !strings.Contains(got, "\nMetricsAddress = [::1]:9586\n") {
		t.Errorf("Marshal lost MetricsAddress:\n%s", got)
	}
	if got := string(m.WGConf()); strings.Contains(got, "Metrics") {
		t.Errorf("WGConf keeps MetricsAddress:\n%s", got)
	}
}

// TestMarshalBuilt checks a Config built in code, newline in a value included.
func TestMarshalBuilt(t *testing.T) {
	c := &Config{
		Interface: Interface{
			PrivateKey: key(priv1),
			Addresses:  pfxs("10.0.0.1/24"),
			PostUp:     []string{"echo a\n[Peer]"},
		},
		Peers: []Peer{{PublicKey: key(pub2), AllowedIPs: pfxs("10.0.0.2/32")}},
	}
	c2 := mustParse(t, "built", string(c.Marshal()))
	if len(c2.Peers) != 1 || c2.Interface.PostUp[0] != "echo a [Peer]" {
		t.Errorf("a newline in a value changed the file's structure:\n%s", c.Marshal())
	}
}

func TestInterfaceName(t *testing.T) {
	for path, want := range map[string]string{
		"/etc/wireguard/wg0.conf":  "wg0",
		"wg0.conf":                 "wg0",
		"a_b=c+d.e-f.conf":         "a_b=c+d.e-f",
		"/x/123456789012345.conf":  "123456789012345",
		"/x/1234567890123456.conf": "",
		"/x/wg0":                   "",
		"/x/wg 0.conf":             "",
		"/x/.conf":                 "",
		"/x/..conf":                "",
		"/x/wg0.conf.bak":          "",
		"/x/wg/0.conf":             "0",
	} {
		got, err := InterfaceName(path)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("InterfaceName(%q) = %q, %v; want %q", path, got, err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("InterfaceName(%q) error %q does not name the file", path, err)
		}
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile("testdata/nonexistent.conf")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, fs.ErrNotExist) || e.File != "testdata/nonexistent.conf" {
		t.Errorf("ParseFile(missing) = %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	big := strings.Repeat("# padding\n", MaxSize/10+1)
	if _, err := Parse("big", strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse(big) = %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Key: "K", Msg: "m"}, "f:3: K: m"},
		{Error{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{File: "f", Key: "K", Msg: "m"}, "f: K: m"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse("fuzz.conf", strings.NewReader(text))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || c != nil {
				t.Fatalf("Parse returned %v (%T) and %v", err, err, c)
			}
			if e.Line < 0 || e.Line > strings.Count(text, "\n")+1 || e.File != "fuzz.conf" {
				t.Fatalf("error at line %d of a %d-line file: %v", e.Line, strings.Count(text, "\n")+1, err)
			}
			return
		}
		roundTrip(t, c)
	})
}
