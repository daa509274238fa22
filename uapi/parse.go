package uapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
)

// MaxLineLen bounds one protocol line, without its newline. The longest line
// wg(8) sends is an IPv6 endpoint with a zone, under 100 bytes.
const MaxLineLen = 4096

// DefaultMaxSetSize bounds one set=1 transaction: the bytes of its lines
// after "set=1\n", newlines and the blank line that ends it included. A
// bigger one is refused with EMSGSIZE and nothing of it is applied (or
// kept in memory). wg(8) sends far less: `wg setconf` of 10,000 peers, each
// with a preshared key, an IPv6 endpoint, a keepalive and 2 allowed IPs,
// is 3,184,515 bytes (70,006 lines); with 10 allowed IPs each, 5,299,523
// bytes (150,006 lines); one peer with 100,000 allowed IPs, 2,278,889
// bytes. wireguard-go sets no bound: it applies each line as it reads it.
const DefaultMaxSetSize = 16 << 20

var errLineTooLong = errors.New("line too long")

// readLine reads one '\n'-terminated line of at most max bytes and returns
// it without the newline. At end of input it returns io.EOF if nothing was
// read, and the partial line with io.ErrUnexpectedEOF otherwise. It never
// buffers more than the reader's buffer plus max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		n := len(frag)
		if err == nil {
			n-- // the newline
		}
		if len(line)+n > max {
			return "", errLineTooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return string(line[:len(line)-1]), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return "", io.EOF
			}
			return string(line), io.ErrUnexpectedEOF
		default:
			return string(line), err
		}
	}
}

// ParseSet parses the body of a set=1 request (the lines after "set=1"), up
// to and including the blank line that ends it, or to the end of r. Nothing
// is applied: the result is for Backend.Apply. Errors are *devconf.Error:
// EINVAL for an unknown key, a bad value or a key in the wrong section,
// EPROTO for a line without '=', EIO for a read error, EMSGSIZE for a body
// of more than DefaultMaxSetSize bytes; the message names the line.
//
// If r is a *bufio.Reader, ParseSet reads nothing past the blank line;
// otherwise it may read ahead.
func ParseSet(r io.Reader) (devconf.DeviceConfig, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	cfg, _, err := parseSet(br, DefaultMaxSetSize)
	return cfg, err
}

// parseSet is ParseSet with a bound of max bytes on the body, that also
// reports whether the body ended with its blank line (rather than at the
// end of the input). A body longer than max is read to its blank line and
// dropped as it is read: the error is EMSGSIZE, with terminated true when
// the blank line came, so that the connection can carry the next request.
func parseSet(br *bufio.Reader, max int) (cfg devconf.DeviceConfig, terminated bool, err error) {
	var p setParser
	size := 0
	for {
		line, rerr := readLine(br, MaxLineLen)
		if rerr == nil {
			if size += len(line) + 1; size > max {
				err := devconf.Errorf(syscall.EMSGSIZE, "line %d: the transaction is longer than %d bytes", p.n+1, max)
				p = setParser{} // let go of what was parsed before the rest is read
				return devconf.DeviceConfig{}, discardSet(br, line == "" || line == "\r"), err
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			return p.finish(), false, nil
		case errors.Is(rerr, io.ErrUnexpectedEOF):
			// wireguard-go processes a last line without its newline.
			if line = strings.TrimSuffix(line, "\r"); line != "" {
				if err := p.line(line); err != nil {
					return devconf.DeviceConfig{}, false, err
				}
			}
			return p.finish(), false, nil
		case errors.Is(rerr, errLineTooLong):
			return devconf.DeviceConfig{}, false, devconf.Errorf(syscall.EINVAL, "line %d: longer than %d bytes", p.n+1, MaxLineLen)
		default:
			return devconf.DeviceConfig{}, false, devconf.Errorf(syscall.EIO, "line %d: read: %w", p.n+1, rerr)
		}
		line = strings.TrimSuffix(line, "\r") // as bufio.ScanLines in wireguard-go
		if line == "" {
			return p.finish(), true, nil
		}
		if err := p.line(line); err != nil {
			return devconf.DeviceConfig{}, false, err
		}
	}
}

// discardSet reads and drops the rest of a set=1 body, up to and
// including the blank line that ends it (already read if ended), holding
// no more than the reader's buffer. It reports whether the blank line came
// (false: the input ended or failed first).
func discardSet(br *bufio.Reader, ended bool) bool {
	lineLen := 0 // bytes of the current line so far, its newline not counted
	for !ended {
		frag, err := br.ReadSlice('\n')
		if err == nil { // frag ends the line
			content := len(frag) - 1
			ended = lineLen == 0 && (content == 0 || content == 1 && frag[0] == '\r')
			lineLen = 0
			continue
		}
		lineLen += len(frag)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return false
		}
	}
	return true
}

type setParser struct {
	n    int // lines read
	cfg  devconf.DeviceConfig
	peer *devconf.PeerConfig   // the peer section being parsed, nil in the device section
	seen map[netip.Prefix]bool // prefixes in the peer section's lists
}

func (p *setParser) finish() devconf.DeviceConfig {
	p.endPeer()
	return p.cfg
}

func (p *setParser) endPeer() {
	if p.peer != nil {
		p.cfg.Peers = append(p.cfg.Peers, *p.peer)
		p.peer = nil
	}
}

// isDeviceKey and isPeerKey tell the keys of each section apart, for messages.
func isDeviceKey(k string) bool {
	switch k {
	case "private_key", "listen_port", "fwmark", "replace_peers", "tapwire_listen_tcp", "tapwire_flood_limit":
		return true
	}
	return false
}

func isPeerKey(k string) bool {
	switch k {
	case "update_only", "remove", "preshared_key", "endpoint", "persistent_keepalive_interval",
		"replace_allowed_ips", "allowed_ip", "protocol_version", "tapwire_transport":
		return true
	}
	return false
}

func (p *setParser) line(line string) error {
	p.n++
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return devconf.Errorf(syscall.EPROTO, "line %d %s: no '='", p.n, quote(line))
	}
	if key == "public_key" {
		k, err := protocol.ParseHexKey(value)
		if err != nil {
			return p.errf(key, "bad public key %s: want 64 hex digits", quote(value))
		}
		p.endPeer()
		p.peer = &devconf.PeerConfig{PublicKey: k}
		clear(p.seen)
		return nil
	}
	if p.peer == nil {
		return p.device(key, value)
	}
	return p.peerLine(key, value)
}

// errf returns an EINVAL *devconf.Error naming the current line by number and key.
func (p *setParser) errf(key, format string, args ...any) *devconf.Error {
	return devconf.Errorf(syscall.EINVAL, "line %d (%s): %s", p.n, quote(key), fmt.Sprintf(format, args...))
}

func (p *setParser) device(key, value string) error {
	switch key {
	case "private_key":
		k, err := protocol.ParseHexKey(value)
		if err != nil { // the value is secret: not quoted
			return p.errf(key, "bad private key: want 64 hex digits")
		}
		p.cfg.PrivateKey = &k
	case "listen_port":
		port, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return p.errf(key, "bad port %s: want 0 to 65535", quote(value))
		}
		v := uint16(port)
		p.cfg.ListenPort = &v
	case "fwmark":
		mark, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return p.errf(key, "bad fwmark %s: want 0 to 4294967295", quote(value))
		}
		v := uint32(mark)
		p.cfg.FwMark = &v
	case "replace_peers":
		if value != "true" {
			return p.errf(key, "bad value %s: only \"true\" is allowed", quote(value))
		}
		p.cfg.ReplacePeers = true
	case "tapwire_listen_tcp":
		port, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return p.errf(key, "bad port %s: want 0 (none) to 65535", quote(value))
		}
		v := uint16(port)
		p.cfg.ListenTCP = &v
	case "tapwire_flood_limit":
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return p.errf(key, "bad flood limit %s: want frames a second, 0 (none) to 4294967295", quote(value))
		}
		v := uint32(n)
		p.cfg.FloodLimit = &v
	default:
		if isPeerKey(key) {
			return p.errf(key, "peer key before any public_key")
		}
		return p.errf(key, "unknown device key")
	}
	return nil
}

func (p *setParser) peerLine(key, value string) error {
	pc := p.peer
	// After remove=true wireguard-go still checks the section's lines but
	// ignores them: parse into a scratch copy.
	if pc.Remove {
		scratch := devconf.PeerConfig{PublicKey: pc.PublicKey}
		pc = &scratch
	}
	switch key {
	case "remove":
		if value != "true" {
			return p.errf(key, "bad value %s: only \"true\" is allowed", quote(value))
		}
		*p.peer = devconf.PeerConfig{PublicKey: p.peer.PublicKey, Remove: true}
	case "update_only":
		if value != "true" {
			return p.errf(key, "bad value %s: only \"true\" is allowed", quote(value))
		}
		pc.UpdateOnly = true
	case "preshared_key":
		k, err := protocol.ParseHexKey(value)
		if err != nil { // the value is secret: not quoted
			return p.errf(key, "bad preshared key: want 64 hex digits")
		}
		pc.PresharedKey = &k
	case "endpoint":
		ap, err := netip.ParseAddrPort(value)
		if err != nil {
			return p.errf(key, "bad endpoint %s: want IPv4:port or [IPv6]:port", quote(value))
		}
		pc.Endpoint = &ap
	case "tapwire_transport":
		t, err := devconf.ParseTransport(value)
		if err != nil {
			return p.errf(key, "bad transport %s: want udp, tcp or auto", quote(value))
		}
		pc.Transport = &t
	case "persistent_keepalive_interval":
		secs, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return p.errf(key, "bad interval %s: want 0 to 65535 seconds", quote(value))
		}
		v := uint16(secs)
		pc.PersistentKeepalive = &v
	case "replace_allowed_ips":
		if value != "true" {
			return p.errf(key, "bad value %s: only \"true\" is allowed", quote(value))
		}
		// Lines are applied in order: this drops what came before too.
		pc.ReplaceAllowedIPs = true
		pc.AllowedIPs = nil
		pc.RemoveAllowedIPs = nil
		clear(p.seen)
	case "allowed_ip":
		remove := strings.HasPrefix(value, "-")
		pfx, err := netip.ParsePrefix(strings.TrimPrefix(value, "-"))
		if err != nil {
			return p.errf(key, "bad prefix %s: want ADDRESS/BITS", quote(value))
		}
		pfx = pfx.Masked()
		if pc != p.peer {
			break // after remove=true: checked, ignored
		}
		// Keep the two lists disjoint and free of duplicates so that their
		// order does not matter: the last line about a prefix wins.
		if p.seen[pfx] {
			pc.AllowedIPs = slices.DeleteFunc(pc.AllowedIPs, func(q netip.Prefix) bool { return q == pfx })
			pc.RemoveAllowedIPs = slices.DeleteFunc(pc.RemoveAllowedIPs, func(q netip.Prefix) bool { return q == pfx })
		} else {
			if p.seen == nil {
				p.seen = make(map[netip.Prefix]bool)
			}
			p.seen[pfx] = true
		}
		if remove {
			pc.RemoveAllowedIPs = append(pc.RemoveAllowedIPs, pfx)
		} else {
			pc.AllowedIPs = append(pc.AllowedIPs, pfx)
		}
	case "protocol_version":
		if value != "1" {
			return p.errf(key, "unsupported protocol version %s: only 1 is known", quote(value))
		}
	default:
		if isDeviceKey(key) {
			return p.errf(key, "device key after a public_key: device keys come first")
		}
		return p.errf(key, "unknown peer key")
	}
	return nil
}

// quote quotes s for a message, shortened, with what may be a key hidden
// (protocol.HideKeys): a client's mistyped private_key line is a secret.
func quote(s string) string {
	s = protocol.HideKeys(s)
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
