package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
)

// utf8BOM is the byte-order mark U+FEFF in UTF-8: EF BB BF.
const utf8BOM = "\ufeff"

// MaxSize is the largest configuration file Parse reads.
const MaxSize = 16 << 20

// Options change how a file is parsed. The zero Options is what the
// package's Parse and ParseFile use.
type Options struct {
	// TableNames resolves a Table value that is neither off, auto nor a
	// number; nil: IPRoute2Tables("/"), the names of this host's ip(8).
	TableNames TableNames
}

// ParseFile parses the configuration file at path, with the zero Options.
func ParseFile(path string) (*Config, error) { return Options{}.ParseFile(path) }

// Parse parses a configuration file read from r, with the zero Options.
func Parse(name string, r io.Reader) (*Config, error) { return Options{}.Parse(name, r) }

// ParseFile parses the configuration file at path. Errors name path.
func (o Options) ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error(), err: err}
	}
	defer f.Close()
	return o.Parse(path, f)
}

// Parse parses a configuration file read from r; name is used in errors and
// as Config.Path. On error it returns a nil Config and an *Error.
func (o Options) Parse(name string, r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, &Error{File: name, Msg: "read: " + err.Error(), err: err}
	}
	if len(data) > MaxSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes: not a configuration file", MaxSize)}
	}
	// A file saved by Windows Notepad starts with a byte-order mark. Only
	// there is it skipped: anywhere else it is text like any other.
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	p := &parser{file: name, tableNames: o.TableNames}
	if p.tableNames == nil {
		p.tableNames = IPRoute2Tables("/")
	}
	p.cfg.Path = name
	for i, line := range strings.Split(string(data), "\n") {
		if err := p.line(i+1, line); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return &p.cfg, nil
}

type section int

const (
	noSection section = iota
	interfaceSection
	peerSection
)

type parser struct {
	file       string
	tableNames TableNames
	cfg        Config
	section    section
	ifaceLine  int      // line of [Interface]; 0: none yet
	havePriv   bool     // PrivateKey seen
	bridgeLine int      // line of the last Bridge key
	bridgeKey  string   // Bridge key as written
	tapOnly    []*Error // keys that need Mode = tap, reported if it is missing
	pubLines   []int    // per peer: line of its PublicKey, 0 if none
	pubKeys    []string // per peer: PublicKey as written
}

func (p *parser) errorf(line int, key, format string, args ...any) *Error {
	return &Error{File: p.file, Line: line, Key: clip(key), Msg: fmt.Sprintf(format, args...)}
}

// clip shortens text from the file for an error message, and hides what
// may be a key in it (see protocol.HideKeys): a private or preshared key
// written where the file wants something else is still a secret.
func clip(s string) string {
	s = protocol.HideKeys(s)
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

// secretKeys are the keys whose values are secrets.
var secretKeys = [...]string{"PrivateKey", "PresharedKey"}

// secretLine returns the secret key that text (a line, or what comes
// before its '=') starts with, ignoring case and white space, when text
// is longer than the key's name: a line such as "PrivateKey: KEY" or
// "PresharedKey KEY" holds the secret in what an error would quote.
func secretLine(text string) (string, bool) {
	w := lower(removeSpace(text))
	for _, k := range secretKeys {
		if len(w) > len(k) && strings.HasPrefix(w, lower(k)) {
			return k, true
		}
	}
	return "", false
}

// isSpace is wg's and (in the C locale) bash's white space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// lower maps ASCII upper case to lower case, and nothing else: wg
// (strncasecmp) and wg-quick (bash, C locale) compare keys in ASCII only.
func lower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// equalFold compares s and t ignoring ASCII case only.
func equalFold(s, t string) bool { return len(s) == len(t) && lower(s) == lower(t) }

// removeSpace drops all white space, as wg does to every line it reads.
func removeSpace(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if !isSpace(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// The keys of each section, lower case. wg-quick's keys are matched after
// trimming, wg's with all white space removed, as each tool does.
var (
	quickKeys = map[string]string{
		"address": "Address", "dns": "DNS", "mtu": "MTU", "table": "Table",
		"preup": "PreUp", "postup": "PostUp", "predown": "PreDown", "postdown": "PostDown",
		"saveconfig": "SaveConfig", "mode": "Mode", "bridge": "Bridge",
		"clampmss": "ClampMSS", "macageing": "MACAgeing", "macaging": "MACAgeing", "maxmacsperpeer": "MaxMACsPerPeer",
		"listentcp": "ListenTCP", "floodlimit": "FloodLimit", "metricsaddress": "MetricsAddress",
	}
	tapwirePeerKeys = map[string]string{"allowedmacs": "AllowedMACs", "transport": "Transport"}
	wgInterfaceKeys = map[string]string{"privatekey": "PrivateKey", "listenport": "ListenPort", "fwmark": "FwMark"}
	wgPeerKeys      = map[string]string{
		"publickey": "PublicKey", "presharedkey": "PresharedKey", "allowedips": "AllowedIPs",
		"endpoint": "Endpoint", "persistentkeepalive": "PersistentKeepalive",
	}
)

func (p *parser) line(n int, raw string) *Error {
	stripped, _, _ := strings.Cut(raw, "#")
	t := trimSpace(stripped)
	if t == "" || t[0] == ';' {
		return nil
	}
	if t[0] == '[' {
		return p.header(n, t)
	}
	eq := strings.IndexByte(t, '=')
	if eq < 0 {
		if k, ok := secretLine(t); ok {
			return p.errorf(n, k, "not a `%s = KEY' line (the line is not shown: it may hold a secret)", k)
		}
		return p.errorf(n, t, "not a `Key = value' line, an [Interface] or [Peer] header, or a # comment")
	}
	key, value := trimSpace(t[:eq]), trimSpace(t[eq+1:])
	if key == "" {
		return p.errorf(n, "", "a line starting with `=': the key is missing")
	}
	if k, ok := secretLine(key); ok {
		return p.errorf(n, k, "not a `%s = KEY' line (the line is not shown: it may hold a secret)", k)
	}
	// The hooks keep the rest of the line, # included: wg-quick hands it to
	// bash, which knows a comment from a quoted or escaped #. The '=' found
	// in the comment-stripped line is the first one of the raw line too.
	hook := trimSpace(raw[strings.IndexByte(raw, '=')+1:])

	lk, wk := lower(key), lower(removeSpace(key))
	switch p.section {
	case interfaceSection:
		if canon, ok := quickKeys[lk]; ok {
			return p.interfaceQuick(n, key, canon, value, hook)
		}
		if canon, ok := wgInterfaceKeys[wk]; ok {
			return p.interfaceWG(n, key, canon, removeSpace(value))
		}
		if canon, ok := wgPeerKeys[wk]; ok {
			return p.errorf(n, key, "%s belongs in a [Peer] section, not in [Interface]", canon)
		}
		if canon, ok := tapwirePeerKeys[lk]; ok {
			return p.errorf(n, key, "%s belongs in a [Peer] section, not in [Interface]", canon)
		}
		return p.errorf(n, key, "unknown key in [Interface]: want PrivateKey, ListenPort, FwMark, Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown, SaveConfig, Mode, Bridge, ClampMSS, MACAgeing, MaxMACsPerPeer, FloodLimit, ListenTCP or MetricsAddress")
	case peerSection:
		if canon, ok := wgPeerKeys[wk]; ok {
			return p.peerWG(n, key, canon, removeSpace(value))
		}
		if canon, ok := tapwirePeerKeys[lk]; ok {
			return p.peerTapwire(n, key, canon, value)
		}
		if canon, ok := quickKeys[lk]; ok {
			return p.errorf(n, key, "%s belongs in the [Interface] section, not in [Peer]", canon)
		}
		if canon, ok := wgInterfaceKeys[wk]; ok {
			return p.errorf(n, key, "%s belongs in the [Interface] section, not in [Peer]", canon)
		}
		return p.errorf(n, key, "unknown key in [Peer]: want PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive, AllowedMACs or Transport")
	}
	return p.errorf(n, key, "outside any section: put it under [Interface] or [Peer]")
}

func (p *parser) header(n int, t string) *Error {
	// wg ignores white space inside the brackets too.
	switch lower(removeSpace(t)) {
	case "[interface]":
		if p.ifaceLine != 0 {
			return p.errorf(n, t, "a second [Interface] section (the first is at line %d): a file has one", p.ifaceLine)
		}
		p.ifaceLine = n
		p.section = interfaceSection
	case "[peer]":
		p.cfg.Peers = append(p.cfg.Peers, Peer{Line: n})
		p.pubLines = append(p.pubLines, 0)
		p.pubKeys = append(p.pubKeys, "")
		p.section = peerSection
	default:
		return p.errorf(n, t, "unknown section: want [Interface] or [Peer]")
	}
	return nil
}

// interfaceQuick handles the wg-quick and tapwire keys of [Interface].
func (p *parser) interfaceQuick(n int, key, canon, value, hook string) *Error {
	in := &p.cfg.Interface
	switch canon {
	case "Address":
		for _, f := range splitList(value) {
			pfx, err := parseAddress(f)
			if err != nil {
				return p.errorf(n, key, "%q: %v", clip(f), err)
			}
			in.Addresses = append(in.Addresses, pfx)
		}
	case "DNS":
		if in.DNSLine == 0 {
			in.DNSLine = n
		}
		for _, f := range splitList(value) {
			if err := checkDNS(f); err != nil {
				return p.errorf(n, key, "%q: %v", clip(f), err)
			}
			in.DNS = append(in.DNS, f)
		}
	case "MTU":
		if value == "" { // wg-quick: automatic
			in.MTU = 0
			return nil
		}
		mtu, ok := parseDecimal(value, 65535)
		if !ok || mtu < 68 {
			return p.errorf(n, key, "%q: want a number from 68 to 65535, or no MTU line for automatic", clip(value))
		}
		in.MTU = int(mtu)
	case "Table":
		t, err := parseTable(value, p.tableNames)
		if err != nil {
			return p.errorf(n, key, "%q: %v", clip(value), err)
		}
		in.Table = t
	case "PreUp", "PostUp", "PreDown", "PostDown":
		// An empty hook does nothing, but wg-quick keeps it: so do we.
		h := map[string]*[]string{"PreUp": &in.PreUp, "PostUp": &in.PostUp, "PreDown": &in.PreDown, "PostDown": &in.PostDown}[canon]
		*h = append(*h, hook)
	case "SaveConfig":
		switch {
		case equalFold(value, "true"):
			in.SaveConfig = true
		case equalFold(value, "false"):
			in.SaveConfig = false
		default:
			return p.errorf(n, key, "%q is neither true nor false", clip(value))
		}
	case "Mode":
		switch lower(value) {
		case "tun":
			in.Mode = ModeTUN
		case "tap":
			in.Mode = ModeTAP
		default:
			return p.errorf(n, key, "%q: want tun or tap", clip(value))
		}
	case "Bridge":
		if err := checkIfName(value); err != nil {
			return p.errorf(n, key, "%q: %v", clip(value), err)
		}
		in.Bridge, p.bridgeLine, p.bridgeKey = value, n, key
	case "ClampMSS":
		switch lower(value) {
		case "yes", "true", "on":
			in.ClampMSS = SwitchOn
		case "no", "false", "off":
			in.ClampMSS = SwitchOff
		default:
			return p.errorf(n, key, "%q: want yes or no", clip(value))
		}
	case "MACAgeing":
		v, ok := parseDecimal(value, 1<<31-1)
		if !ok || v == 0 {
			return p.errorf(n, key, "%q: want seconds, from 1 (the default is 300)", clip(value))
		}
		in.MACAgeing = time.Duration(v) * time.Second
		p.tapOnly = append(p.tapOnly, p.errorf(n, key, "a MAC table needs a tap device: add Mode = tap to [Interface], or remove %s", canon))
	case "ListenTCP":
		v, ok := parseDecimal(value, 65535)
		if !ok || v == 0 {
			return p.errorf(n, key, "%q: want a TCP port from 1 to 65535", clip(value))
		}
		in.ListenTCP = int(v)
	case "MetricsAddress":
		ap, err := parseMetricsAddress(value)
		if err != nil {
			return p.errorf(n, key, "%q: %v", clip(value), err)
		}
		in.MetricsAddress = ap
	case "FloodLimit":
		v, ok := parseDecimal(value, 1<<32-1)
		if !ok {
			return p.errorf(n, key, "%q: want frames a second each peer may have flooded, 0 (no limit) to 4294967295", clip(value))
		}
		in.FloodLimit = uint32(v)
		p.tapOnly = append(p.tapOnly, p.errorf(n, key, "a flood limit needs a tap device: add Mode = tap to [Interface], or remove %s", canon))
	case "MaxMACsPerPeer":
		v, ok := parseDecimal(value, 1<<20)
		if !ok || v == 0 {
			return p.errorf(n, key, "%q: want a number from 1 to 1048576 (the default is 1024)", clip(value))
		}
		in.MaxMACsPerPeer = int(v)
		p.tapOnly = append(p.tapOnly, p.errorf(n, key, "a MAC table needs a tap device: add Mode = tap to [Interface], or remove %s", canon))
	}
	return nil
}

// peerTapwire handles the tapwire keys of [Peer].
func (p *parser) peerTapwire(n int, key, canon, value string) *Error {
	peer := &p.cfg.Peers[len(p.cfg.Peers)-1]
	switch canon {
	case "AllowedMACs":
		for _, f := range splitList(value) {
			m, err := l2switch.ParseMAC(f)
			if err != nil || m.IsGroup() || m.IsZero() {
				return p.errorf(n, key, "%q: want unicast MAC addresses such as 02:00:5e:00:53:01, separated by commas", clip(f))
			}
			peer.AllowedMACs = append(peer.AllowedMACs, m)
		}
		p.tapOnly = append(p.tapOnly, p.errorf(n, key, "MAC addresses need a tap device: add Mode = tap to [Interface], or remove %s", canon))
	case "Transport":
		switch t := lower(value); t {
		case "udp", "tcp", "auto":
			peer.Transport = t
		default:
			return p.errorf(n, key, "%q: want udp, tcp or auto", clip(value))
		}
	}
	return nil
}

// interfaceWG handles the wg keys of [Interface]; v has no white space.
func (p *parser) interfaceWG(n int, key, canon, v string) *Error {
	if v == "" {
		return p.errorf(n, key, "empty value")
	}
	in := &p.cfg.Interface
	switch canon {
	case "PrivateKey":
		k, ok := parseKey(v)
		if !ok { // the value is secret: not in the message
			return p.errorf(n, key, "not a key: want 32 bytes in base64, as `wg genkey` prints")
		}
		in.PrivateKey, p.havePriv = k, true
	case "ListenPort":
		port, ok := parseDecimal(v, 65535)
		if !ok {
			return p.errorf(n, key, "%q: want a port number from 0 to 65535", clip(v))
		}
		in.ListenPort = int(port)
	case "FwMark":
		m, ok := parseFwMark(v)
		if !ok {
			return p.errorf(n, key, "%q: want off, or a number from 0 to 0xffffffff (decimal, or hexadecimal after 0x)", clip(v))
		}
		in.FwMark = m
	}
	return nil
}

// peerWG handles the keys of [Peer]; v has no white space.
func (p *parser) peerWG(n int, key, canon, v string) *Error {
	if v == "" {
		return p.errorf(n, key, "empty value")
	}
	i := len(p.cfg.Peers) - 1
	peer := &p.cfg.Peers[i]
	switch canon {
	case "PublicKey":
		k, ok := parseKey(v)
		if !ok {
			return p.errorf(n, key, "%q is not a key: want 32 bytes in base64, as `wg pubkey` prints", clip(v))
		}
		peer.PublicKey, p.pubLines[i], p.pubKeys[i] = k, n, key
	case "PresharedKey":
		k, ok := parseKey(v)
		if !ok {
			return p.errorf(n, key, "not a key: want 32 bytes in base64, as `wg genpsk` prints")
		}
		peer.PresharedKey = k
	case "AllowedIPs":
		for _, f := range strings.Split(v, ",") {
			pfx, err := parseAllowedIP(f)
			if err != nil {
				return p.errorf(n, key, "%q: %v", clip(f), err)
			}
			peer.AllowedIPs = append(peer.AllowedIPs, pfx)
		}
	case "Endpoint":
		if err := checkEndpoint(v); err != nil {
			return p.errorf(n, key, "%q: %v", clip(v), err)
		}
		peer.Endpoint = v
	case "PersistentKeepalive":
		if equalFold(v, "off") {
			peer.PersistentKeepalive = 0
			return nil
		}
		s, ok := parseDecimal(v, 65535)
		if !ok {
			return p.errorf(n, key, "%q: want off, or seconds from 0 to 65535", clip(v))
		}
		peer.PersistentKeepalive = time.Duration(s) * time.Second
	}
	return nil
}

// splitList splits an Address or DNS value as wg-quick does: at commas and
// white space, dropping empty entries.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r < 0x80 && isSpace(byte(r)) })
}
