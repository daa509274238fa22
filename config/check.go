package config

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tapwire/tapwire/protocol"
)

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
	if p.cfg.Interface.Bridge != "" && !p.cfg.Interface.Mode.TAP() {
		errs = append(errs, p.errorf(p.bridgeLine, p.bridgeKey, "a bridge takes a tap device: add Mode = tap to [Interface], or remove Bridge"))
	}
	if !p.cfg.Interface.Mode.TAP() {
		errs = append(errs, p.tapOnly...)
	}
	first := map[protocol.Key]int{} // public key -> peer index
	for i, peer := range p.cfg.Peers {
		if p.pubLines[i] == 0 {
			errs = append(errs, p.errorf(peer.Line, "PublicKey", "missing: the [Peer] needs the peer's PublicKey (`wg pubkey` prints it)"))
			continue
		}
		if p.havePriv && peer.PublicKey == p.cfg.Interface.PrivateKey {
			// A secret pasted in the wrong place would be logged and
			// shown as a public key from then on: refused, never quoted.
			errs = append(errs, p.errorf(p.pubLines[i], p.pubKeys[i],
				"this is the interface's PrivateKey, not a peer's public key: give the peer's (`wg pubkey` on the peer prints it)"))
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

var ifNameRE = regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}$`)

// parseTable parses a Table value as wg-quick reads it: off and auto as
// written (wg-quick compares them case sensitively), anything else as ip(8)
// reads a table: a number (decimal, hexadecimal after 0x, octal after a
// leading 0) up to 4294967295, or a name that names resolves. An empty
// value is the zero Table (auto), as in wg-quick.
func parseTable(s string, names TableNames) (Table, error) {
	switch s {
	case "":
		return Table{}, nil
	case "off":
		return TableOff(), nil
	case "auto":
		return TableAuto(), nil
	}
	if '0' <= s[0] && s[0] <= '9' {
		id, ok := parseCNumber(s)
		if !ok {
			return Table{}, fmt.Errorf("not a routing table number (0 to 4294967295; ip reads 0x... as hexadecimal and a leading 0 as octal)")
		}
		return Table{kind: tableID, id: id, text: s}, nil
	}
	id, ok, err := names(s)
	if err != nil {
		return Table{}, err
	}
	if !ok {
		hint := ""
		if equalFold(s, "off") || equalFold(s, "auto") {
			hint = " (wg-quick reads off and auto in lower case only)"
		}
		return Table{}, fmt.Errorf("want off, auto, a routing table number, or a table name of /etc/iproute2/rt_tables%s", hint)
	}
	return Table{kind: tableID, id: id, text: s}, nil
}

// parseCNumber parses an unsigned 32-bit number as strtoul(3) with base 0
// does, signs and white space aside: hexadecimal after 0x or 0X, octal
// after a leading 0, else decimal.
func parseCNumber(s string) (uint32, bool) {
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	v, err := strconv.ParseUint(s, base, 32) // digits only: no sign, prefix or _
	return uint32(v), err == nil
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

// parseMetricsAddress parses MetricsAddress: an IP address (IPv6 in
// brackets, a zone allowed) and a TCP port from 1 to 65535. A host name is
// refused, as a port without an address: what is listened on must not
// depend on DNS, and every address is said with 0.0.0.0 or [::].
func parseMetricsAddress(s string) (netip.AddrPort, error) {
	const want = "want an IP address and a TCP port, such as 127.0.0.1:9586 or [::1]:9586 (0.0.0.0:9586 or [::]:9586: every address)"
	if s == "" {
		return netip.AddrPort{}, fmt.Errorf("empty value: %s", want)
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		i := strings.LastIndexByte(s, ':')
		switch {
		case i < 0:
			return netip.AddrPort{}, fmt.Errorf("no port: %s", want)
		case i == 0:
			return netip.AddrPort{}, fmt.Errorf("no address before the port: %s", want)
		case !strings.HasPrefix(s, "[") && strings.Contains(s[:i], ":"):
			return netip.AddrPort{}, fmt.Errorf("an IPv6 address must be in brackets: %s", want)
		}
		if _, err := netip.ParseAddr(strings.Trim(s[:i], "[]")); err != nil && isHostname(s[:i]) {
			return netip.AddrPort{}, fmt.Errorf("a host name: %s", want)
		}
		return netip.AddrPort{}, errors.New(want)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0: %s", want)
	}
	return ap, nil
}
