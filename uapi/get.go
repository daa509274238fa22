package uapi

import (
	"bytes"
	"io"
	"strconv"
	"syscall"

	"github.com/tapwire/tapwire/devconf"
	"github.com/tapwire/tapwire/protocol"
)

// WriteGet writes the body of a get=1 answer for s, in wireguard-go's order,
// without the final "errno=0" line. The private key, listen port and fwmark
// are left out when zero; every peer has its preshared key (zeros for none),
// protocol_version, its endpoint if any, the last handshake time, counters,
// keepalive interval and allowed IPs. It writes once, with one Write call.
func WriteGet(w io.Writer, s devconf.DeviceStatus) error {
	var b bytes.Buffer
	appendGet(&b, s)
	if _, err := w.Write(b.Bytes()); err != nil {
		return devconf.Errorf(syscall.EIO, "write get answer: %w", err)
	}
	return nil
}

func appendGet(b *bytes.Buffer, s devconf.DeviceStatus) {
	b.Grow(64 + len(s.Peers)*400)
	key := func(name string, k protocol.Key) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(k.Hex())
		b.WriteByte('\n')
	}
	num := func(name string, v uint64) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(v, 10))
		b.WriteByte('\n')
	}
	if !s.PrivateKey.IsZero() {
		key("private_key", s.PrivateKey)
	}
	if s.ListenPort != 0 {
		num("listen_port", uint64(s.ListenPort))
	}
	if s.FwMark != 0 {
		num("fwmark", uint64(s.FwMark))
	}
	for _, p := range s.Peers {
		key("public_key", p.PublicKey)
		key("preshared_key", p.PresharedKey)
		version := p.ProtocolVersion
		if version <= 0 {
			version = 1
		}
		num("protocol_version", uint64(version))
		if p.Endpoint.IsValid() {
			b.WriteString("endpoint=")
			b.WriteString(p.Endpoint.String()) // 192.0.2.1:51820, [2001:db8::1]:51820
			b.WriteByte('\n')
		}
		var sec, nsec uint64
		if t := p.LastHandshake; !t.IsZero() && t.Unix() >= 0 {
			sec, nsec = uint64(t.Unix()), uint64(t.Nanosecond())
		}
		num("last_handshake_time_sec", sec)
		num("last_handshake_time_nsec", nsec)
		num("tx_bytes", p.TxBytes)
		num("rx_bytes", p.RxBytes)
		num("persistent_keepalive_interval", uint64(p.PersistentKeepalive))
		for _, pfx := range p.AllowedIPs {
			if !pfx.IsValid() {
				continue
			}
			b.WriteString("allowed_ip=")
			b.WriteString(pfx.String())
			b.WriteByte('\n')
		}
	}
}
