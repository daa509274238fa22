// Package config reads and writes WireGuard configuration files in the
// format of wg-quick(8): the [Interface] and [Peer] sections that wg(8)
// setconf takes, plus wg-quick's Address, DNS, MTU, Table, PreUp, PostUp,
// PreDown, PostDown and SaveConfig, plus tapwire's own keys: Mode, Bridge,
// ClampMSS, MACAgeing, MaxMACsPerPeer, FloodLimit, ListenTCP and
// MetricsAddress in [Interface], AllowedMACs and Transport in [Peer]. The MAC keys and
// FloodLimit need Mode = tap. WGConf leaves tapwire's keys out.
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
// Values are parsed once, into types: Mode, Switch (ClampMSS), bool
// (SaveConfig), time.Duration (MACAgeing, PersistentKeepalive), uint32
// (FloodLimit), netip.AddrPort (MetricsAddress) and Table.
// Table reads off and auto as wg-quick does, in lower case only, and any
// other value as ip(8) reads a routing table: a number, or a name that
// Options.TableNames resolves (by default from iproute2's rt_tables files),
// so that a name nothing knows is refused with the file, line and key
// rather than when the interface is coming up. Marshal writes a Table back
// as it was written, and the other values in their canonical spelling.
//
// Stricter than wg-quick, a Config is checked whole: an unknown key, a key
// outside a section or in the wrong one, a second [Interface] section, a
// value wg or wg-quick would reject at `up` time (a bad address, port, MTU or
// endpoint), a missing PrivateKey or PublicKey, or two peers with the same
// public key is an *Error naming the file, line and key, and no Config is
// returned.
package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

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
	// Table: auto (no Table line, or Table = auto), off, or a routing
	// table given by number or by name, resolved when the file is parsed.
	Table    Table
	PreUp    []string
	PostUp   []string
	PreDown  []string
	PostDown []string
	// SaveConfig asks wg-quick, and tapwire up, to write the running state
	// back to the file on down.
	SaveConfig bool

	// tapwire extensions. wg and wg-quick do not know them: a file with them
	// is for tapwire only, and WGConf leaves them out.
	Mode   Mode   // ModeDefault (no Mode line) is a tun device
	Bridge string // a Linux bridge to attach the tap device to; only with ModeTAP
	// ClampMSS: lower the MSS of TCP connections through the tunnel to
	// what one datagram on each peer's path carries. SwitchDefault (no
	// ClampMSS line) is on in TAP mode and off in TUN mode.
	ClampMSS Switch
	// TAP mode's MAC learning: how long an address not seen is remembered
	// (whole seconds; 0: 300 s), and the addresses learned per peer (0:
	// 1024).
	MACAgeing      time.Duration
	MaxMACsPerPeer int
	// FloodLimit (TAP mode): the frames each peer may send a second that
	// the hub floods (broadcast, multicast, unknown unicast: what a
	// switch's storm control bounds), one second's worth at once; frames
	// over it are dropped. 0: no limit.
	FloodLimit uint32
	// ListenTCP is the TCP port that accepts tunnel streams from peers
	// whose Transport is tcp or auto (0: none).
	ListenTCP int
	// MetricsAddress is where the daemon serves its metrics over HTTP
	// (/metrics, in the Prometheus text format): an IP address and a TCP
	// port, such as 127.0.0.1:9586 (0.0.0.0 or [::]: every address). The
	// zero AddrPort (no MetricsAddress line): no metrics.
	MetricsAddress netip.AddrPort
}

// Peer is a [Peer] section.
type Peer struct {
	PublicKey           protocol.Key
	PresharedKey        protocol.Key   // zero: none
	AllowedIPs          []netip.Prefix // host bits cleared, as WireGuard stores them
	Endpoint            string         // host:port or [IPv6]:port as written; host may be a DNS name
	PersistentKeepalive time.Duration  // whole seconds; 0: off
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
