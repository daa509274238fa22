// Package config reads and writes WireGuard configuration files in the
// format of wg-quick(8): the [Interface] and [Peer] sections that wg(8)
// setconf takes, plus wg-quick's Address, DNS, MTU, Table, PreUp, PostUp,
// PreDown, PostDown and SaveConfig, plus tapwire's own keys: Mode, Bridge,
// ClampMSS, MACAgeing and MaxMACsPerPeer in [Interface], AllowedMACs in
// [Peer]. The MAC keys need Mode = tap. WGConf leaves tapwire's keys out.
//
// Parsing follows wg and wg-quick (wireguard-tools) rather than a generic INI
// reader:
//
//   - Section names and keys are case-insensitive. A '#' starts a comment
//     anywhere on a line, except in PreUp, PostUp, PreDown and PostDown
//     values, which wg-quick (since 2025) passes whole to bash. A line whose
//     first non-blank character is ';' is a comment too; that is a tapwire
//     extension (wg rejects such lines).
//   - For the keys wg handles (PrivateKey, ListenPort, FwMark, PublicKey,
//     PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive) all white
//     space in the key and the value is ignored, as wg does; the other keys
//     and their values are trimmed, as wg-quick does.
//   - List keys (Address, DNS, AllowedIPs, and the hooks) may repeat and
//     accumulate; a repeated single-valued key replaces the earlier value, as
//     in wg. Address and DNS entries are separated by commas or spaces,
//     AllowedIPs entries by commas.
//   - Keys must be canonical base64 of 32 bytes, as wg checks them.
//   - Lines may end in CRLF, as in wg and wg-quick. A UTF-8 byte-order mark
//     at the start of the file (Windows Notepad writes one) is skipped; that
//     is a tapwire extension (wg and wg-quick reject the file).
//
// Stricter than wg-quick, a Config is checked whole: an unknown key, a key
// outside a section or in the wrong one, a second [Interface] section, a
// value wg or wg-quick would reject at `up` time (a bad address, port, MTU or
// endpoint), a missing PrivateKey or PublicKey, or two peers with the same
// public key is an *Error naming the file, line and key, and no Config is
// returned.
package config

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tapwire/tapwire/l2switch"
	"github.com/tapwire/tapwire/protocol"
)

// Config is a parsed configuration file.
type Config struct {
	Interface Interface
	Peers     []Peer
	Path      string // the file's name, as given to Parse or ParseFile
}

// Interface is the [Interface] section.
type Interface struct {
	PrivateKey protocol.Key
	ListenPort int    // 0: none (a random port)
	FwMark     uint32 // 0: none ("off")

	// wg-quick keys.
	Addresses []netip.Prefix // as written; a bare address is a host prefix (/32, /128)
	DNS       []string       // servers (IP addresses) and search domains, in file order
	DNSLine   int            // line of the first DNS key; 0 if not parsed from a file
	MTU       int            // 0: automatic
	Table     string         // "" (automatic, as "auto"), "off", "auto", or a table number or name
	PreUp     []string
	PostUp    []string
	PreDown   []string
	PostDown  []string
	// SaveConfig asks wg-quick, and tapwire up, to write the running state
	// back to the file on down.
	SaveConfig bool

	// tapwire extensions. wg and wg-quick do not know them: a file with them
	// is for tapwire only, and WGConf leaves them out.
	Mode   string // "tun" or "tap"; "" (no Mode line) means "tun"
	Bridge string // a Linux bridge to attach the tap device to; only with Mode "tap"
	// ClampMSS is "yes", "no" or "" (the default: yes in TAP mode, no in
	// TUN mode): lower the MSS of TCP connections through the tunnel to
	// what one datagram on each peer's path carries.
	ClampMSS string
	// TAP mode's MAC learning: seconds before an address not seen is
	// forgotten (0: 300), and the addresses learned per peer (0: 1024).
	MACAgeing      int
	MaxMACsPerPeer int
	// ListenTCP is the TCP port that accepts tunnel streams from peers
	// whose Transport is tcp or auto (0: none).
	ListenTCP int
}

// Peer is a [Peer] section.
type Peer struct {
	PublicKey           protocol.Key
	PresharedKey        protocol.Key   // zero: none
	AllowedIPs          []netip.Prefix // host bits cleared, as WireGuard stores them
	Endpoint            string         // host:port or [IPv6]:port as written; host may be a DNS name
	PersistentKeepalive int            // seconds; 0: off
	// AllowedMACs (tapwire, TAP mode): the only source MAC addresses the
	// peer may send frames from; none: any.
	AllowedMACs []l2switch.MAC
	// Transport (tapwire): "udp", "tcp" or "auto"; "" is udp. tcp reaches
	// the peer by a TCP stream to its Endpoint; auto uses UDP and moves to
	// TCP while UDP gets no handshake through.
	Transport string
	Line      int // line of the [Peer] header; 0 if not parsed from a file
}

// Error is a problem with a configuration file. Error() is
// "FILE:LINE: KEY: MSG"; ":LINE" is left out when Line is 0 (the problem is
// with the whole file) and "KEY: " when Key is empty.
type Error struct {
	File string // as given to Parse
	Line int    // 1-based; 0: no particular line
	Key  string // the key (or section header) as written in the file
	Msg  string
	err  error // underlying error, for Unwrap
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the I/O error behind an Error, if any.
func (e *Error) Unwrap() error { return e.err }

// utf8BOM is the byte-order mark U+FEFF in UTF-8: EF BB BF.
const utf8BOM = "\ufeff"

// MaxSize is the largest configuration file Parse reads.
const MaxSize = 16 << 20

// ParseFile parses the configuration file at path. Errors name path.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error(), err: err}
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse parses a configuration file read from r; name is used in errors and
// as Config.Path. On error it returns a nil Config and an *Error.
func Parse(name string, r io.Reader) (*Config, error) {
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
	p := &parser{file: name}
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

// clip shortens text from the file for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
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
		"listentcp": "ListenTCP",
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
		return p.errorf(n, t, "not a `Key = value' line, an [Interface] or [Peer] header, or a # comment")
	}
	key, value := trimSpace(t[:eq]), trimSpace(t[eq+1:])
	if key == "" {
		return p.errorf(n, "", "a line starting with `=': the key is missing")
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
		return p.errorf(n, key, "unknown key in [Interface]: want PrivateKey, ListenPort, FwMark, Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown, SaveConfig, Mode, Bridge, ClampMSS, MACAgeing, MaxMACsPerPeer or ListenTCP")
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
		if err := checkTable(value); err != nil {
			return p.errorf(n, key, "%q: %v", clip(value), err)
		}
		in.Table = value
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
		switch m := lower(value); m {
		case "tun", "tap":
			in.Mode = m
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
			in.ClampMSS = "yes"
		case "no", "false", "off":
			in.ClampMSS = "no"
		default:
			return p.errorf(n, key, "%q: want yes or no", clip(value))
		}
	case "MACAgeing":
		v, ok := parseDecimal(value, 1<<31-1)
		if !ok || v == 0 {
			return p.errorf(n, key, "%q: want seconds, from 1 (the default is 300)", clip(value))
		}
		in.MACAgeing = int(v)
		p.tapOnly = append(p.tapOnly, p.errorf(n, key, "a MAC table needs a tap device: add Mode = tap to [Interface], or remove %s", canon))
	case "ListenTCP":
		v, ok := parseDecimal(value, 65535)
		if !ok || v == 0 {
			return p.errorf(n, key, "%q: want a TCP port from 1 to 65535", clip(value))
		}
		in.ListenTCP = int(v)
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
		peer.PersistentKeepalive = int(s)
	}
	return nil
}

// finish checks what needs the whole file and reports the first problem by
// line.
func (p *parser) finish() *Error {
	if p.ifaceLine == 0 {
		return p.errorf(0, "", "no [Interface] section: a file needs one, with the PrivateKey")
	}
	var errs []*Error
	if !p.havePriv {
		errs = append(errs, p.errorf(p.ifaceLine, "PrivateKey", "missing: [Interface] needs the interface's PrivateKey (`wg genkey` makes one)"))
	}
	if p.cfg.Interface.Bridge != "" && p.cfg.Interface.Mode != "tap" {
		errs = append(errs, p.errorf(p.bridgeLine, p.bridgeKey, "a bridge takes a tap device: add Mode = tap to [Interface], or remove Bridge"))
	}
	if p.cfg.Interface.Mode != "tap" {
		errs = append(errs, p.tapOnly...)
	}
	first := map[protocol.Key]int{} // public key -> peer index
	for i, peer := range p.cfg.Peers {
		if p.pubLines[i] == 0 {
			errs = append(errs, p.errorf(peer.Line, "PublicKey", "missing: the [Peer] needs the peer's PublicKey (`wg pubkey` prints it)"))
			continue
		}
		if j, dup := first[peer.PublicKey]; dup {
			errs = append(errs, p.errorf(p.pubLines[i], p.pubKeys[i],
				"the same peer twice: the [Peer] at line %d has this public key too (its PublicKey is at line %d); merge the two sections",
				p.cfg.Peers[j].Line, p.pubLines[j]))
			continue
		}
		first[peer.PublicKey] = i
	}
	if len(errs) == 0 {
		return nil
	}
	firstErr := errs[0]
	for _, e := range errs[1:] {
		if e.Line < firstErr.Line {
			firstErr = e
		}
	}
	return firstErr
}

// parseKey parses a key as wg does: canonical base64 of 32 bytes (44
// characters ending in '=', no stray bits in the last character).
func parseKey(s string) (protocol.Key, bool) {
	k, err := protocol.ParseKey(s)
	if err != nil {
		return protocol.Key{}, false
	}
	if subtle.ConstantTimeCompare([]byte(k.String()), []byte(s)) != 1 {
		return protocol.Key{}, false
	}
	return k, true
}

// parseDecimal parses digits only (leading zeros allowed, as strtoul does)
// up to max.
func parseDecimal(s string, max uint64) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v <= max
}

// parseFwMark parses as wg does: "off", or a number starting with a digit,
// in hexadecimal after "0x" (lower case x), else decimal.
func parseFwMark(s string) (uint32, bool) {
	if equalFold(s, "off") {
		return 0, true
	}
	if len(s) > 2 && s[0] == '0' && s[1] == 'x' {
		v, err := strconv.ParseUint(s[2:], 16, 32)
		return uint32(v), err == nil
	}
	v, ok := parseDecimal(s, 0xffffffff)
	return uint32(v), ok
}

// splitList splits an Address or DNS value as wg-quick does: at commas and
// white space, dropping empty entries.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r < 0x80 && isSpace(byte(r)) })
}

// parseAddress parses an interface address with or without a prefix length;
// the host bits are kept (10.0.0.1/24 is the address 10.0.0.1 on a /24).
func parseAddress(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("not an IP address")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address with a prefix length (such as 10.0.0.1/24 or fd00::1/64)")
	}
	return pfx, nil
}

// parseAllowedIP parses an AllowedIPs entry as wg does (the length defaults
// to the whole address) and clears the host bits, as the kernel does.
func parseAllowedIP(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry: a stray comma?")
	}
	ip, length, hasLength := strings.Cut(s, "/")
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an IP address, or address/length (such as 10.0.0.0/24 or fd00::/64)")
	}
	bits := uint64(a.BitLen())
	if hasLength {
		n, ok := parseDecimal(length, bits)
		if !ok {
			if strings.ContainsAny(length, ".:") {
				return netip.Prefix{}, fmt.Errorf("two entries run together: separate them with commas")
			}
			return netip.Prefix{}, fmt.Errorf("the prefix length is not a number from 0 to %d", bits)
		}
		bits = n
	}
	return netip.PrefixFrom(a, int(bits)).Masked(), nil
}

// checkDNS checks a DNS entry: wg-quick takes one of digits and dots, or
// with a colon, for a server address, anything else for a search domain.
func checkDNS(s string) error {
	if strings.Trim(s, "0123456789.") == "" || strings.Contains(s, ":") {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("not an IP address (a DNS server) nor a domain name (a search domain)")
		}
		return nil
	}
	if !isHostname(s) {
		return fmt.Errorf("not a domain name (a search domain) nor an IP address (a DNS server)")
	}
	return nil
}

var (
	tableNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	ifNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}$`)
)

// checkTable checks a Table value: off, auto, a number or a name of
// /etc/iproute2/rt_tables.
func checkTable(s string) error {
	if s == "" || s == "off" || s == "auto" {
		return nil
	}
	if s[0] >= '0' && s[0] <= '9' {
		if _, ok := parseDecimal(s, 0xffffffff); !ok {
			return fmt.Errorf("not a routing table number (0 to 4294967295)")
		}
		return nil
	}
	if !tableNameRE.MatchString(s) {
		return fmt.Errorf("want off, auto, or a routing table number or name")
	}
	return nil
}

// checkIfName checks a Linux interface name as the kernel does.
func checkIfName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty: name the bridge, or remove the line")
	case len(s) > 15:
		return fmt.Errorf("longer than 15 bytes: not a Linux interface name")
	case s == "." || s == ".." || strings.ContainsAny(s, "/:") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }):
		return fmt.Errorf("not a Linux interface name")
	}
	return nil
}

// isHostname reports whether s is a DNS name: dot-separated labels of
// letters, digits, '-' and '_', each 1 to 63 bytes, 253 in all, an optional
// final dot, the last label not all digits.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// checkEndpoint checks host:port, where host is an IPv4 address or a DNS
// name, or [IPv6]:port (a zone allowed), port 1 to 65535.
func checkEndpoint(s string) error {
	var host, port string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fmt.Errorf("no ] after [: want [IPv6]:port")
		}
		host, port = s[1:end], s[end+1:]
		if !strings.HasPrefix(port, ":") {
			return fmt.Errorf("no :port after the ]: want [IPv6]:port")
		}
		port = port[1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("%q in brackets is not an IPv6 address", clip(host))
		}
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return fmt.Errorf("no port: want host:port, or [IPv6]:port")
		}
		host, port = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return fmt.Errorf("an IPv6 address must be in brackets: [IPv6]:port")
		}
		if host == "" {
			return fmt.Errorf("no host before the port")
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.Is4() {
				return fmt.Errorf("%q is not an IPv4 address", clip(host))
			}
		} else if !isHostname(host) {
			return fmt.Errorf("%q is neither an IPv4 address nor a DNS name", clip(host))
		}
	}
	if n, ok := parseDecimal(port, 65535); !ok || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", clip(port))
	}
	return nil
}

// InterfaceName returns the interface name wg-quick derives from a
// configuration file path: the file's base name without ".conf", which must
// match ^[a-zA-Z0-9_=+.-]{1,15}$ (and, for Linux, not be "." or "..").
func InterfaceName(path string) (string, error) {
	base := filepath.Base(path)
	name, ok := strings.CutSuffix(base, ".conf")
	if !ok || !ifNameRE.MatchString(name) || name == "." || name == ".." {
		return "", &Error{File: path, Msg: "the file name must be an interface name followed by .conf: 1 to 15 of a-z A-Z 0-9 _ = + . - (as wg-quick wants)"}
	}
	return name, nil
}

// Marshal returns c in wg-quick format. For every Config that Parse
// returns, Parse(Marshal()) returns an equal Config (but for Peer.Line).
// A newline in a string value is written as a space, so that a value
// cannot add lines to the file.
func (c *Config) Marshal() []byte {
	var b bytes.Buffer
	in := &c.Interface
	c.writeWG(&b)
	if len(in.Addresses) > 0 {
		kv(&b, "Address", joinPrefixes(in.Addresses))
	}
	if len(in.DNS) > 0 {
		kv(&b, "DNS", strings.Join(in.DNS, ", "))
	}
	if in.MTU != 0 {
		kv(&b, "MTU", strconv.Itoa(in.MTU))
	}
	if in.Table != "" {
		kv(&b, "Table", in.Table)
	}
	for _, h := range []struct {
		key  string
		cmds []string
	}{{"PreUp", in.PreUp}, {"PostUp", in.PostUp}, {"PreDown", in.PreDown}, {"PostDown", in.PostDown}} {
		for _, cmd := range h.cmds {
			kv(&b, h.key, cmd)
		}
	}
	if in.SaveConfig {
		kv(&b, "SaveConfig", "true")
	}
	if in.Mode != "" {
		kv(&b, "Mode", in.Mode)
	}
	if in.Bridge != "" {
		kv(&b, "Bridge", in.Bridge)
	}
	if in.ClampMSS != "" {
		kv(&b, "ClampMSS", in.ClampMSS)
	}
	if in.MACAgeing != 0 {
		kv(&b, "MACAgeing", strconv.Itoa(in.MACAgeing))
	}
	if in.MaxMACsPerPeer != 0 {
		kv(&b, "MaxMACsPerPeer", strconv.Itoa(in.MaxMACsPerPeer))
	}
	if in.ListenTCP != 0 {
		kv(&b, "ListenTCP", strconv.Itoa(in.ListenTCP))
	}
	c.writePeers(&b, true)
	return b.Bytes()
}

// WGConf returns what `wg setconf` takes, as `wg-quick strip` does: the
// [Interface] keys PrivateKey, ListenPort and FwMark, and the peers.
func (c *Config) WGConf() []byte {
	var b bytes.Buffer
	c.writeWG(&b)
	c.writePeers(&b, false)
	return b.Bytes()
}

func (c *Config) writeWG(b *bytes.Buffer) {
	in := &c.Interface
	b.WriteString("[Interface]\n")
	kv(b, "PrivateKey", in.PrivateKey.String())
	if in.ListenPort != 0 {
		kv(b, "ListenPort", strconv.Itoa(in.ListenPort))
	}
	if in.FwMark != 0 {
		kv(b, "FwMark", fmt.Sprintf("0x%x", in.FwMark))
	}
}

// writePeers writes the [Peer] sections, with tapwire's keys if tapwire.
func (c *Config) writePeers(b *bytes.Buffer, tapwire bool) {
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		kv(b, "PublicKey", p.PublicKey.String())
		if !p.PresharedKey.IsZero() {
			kv(b, "PresharedKey", p.PresharedKey.String())
		}
		if len(p.AllowedIPs) > 0 {
			kv(b, "AllowedIPs", joinPrefixes(p.AllowedIPs))
		}
		if p.Endpoint != "" {
			kv(b, "Endpoint", p.Endpoint)
		}
		if p.PersistentKeepalive != 0 {
			kv(b, "PersistentKeepalive", strconv.Itoa(p.PersistentKeepalive))
		}
		if tapwire && len(p.AllowedMACs) > 0 {
			macs := make([]string, len(p.AllowedMACs))
			for i, m := range p.AllowedMACs {
				macs[i] = m.String()
			}
			kv(b, "AllowedMACs", strings.Join(macs, ", "))
		}
		if tapwire && p.Transport != "" {
			kv(b, "Transport", p.Transport)
		}
	}
}

func kv(b *bytes.Buffer, key, value string) {
	b.WriteString(key)
	if value == "" {
		b.WriteString(" =\n")
		return
	}
	b.WriteString(" = ")
	b.WriteString(strings.ReplaceAll(value, "\n", " "))
	b.WriteByte('\n')
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
