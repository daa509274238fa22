package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Marshal returns c in wg-quick format. For every Config that Parse
// returns, Parse(Marshal()) returns an equal Config (but for Peer.Line).
// A newline in a string value is written as a space, so that a value
// cannot add lines to the file, and a duration is written in whole
// seconds, rounded up.
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
	if t := in.Table.String(); t != "" {
		kv(&b, "Table", t)
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
	if in.Mode != ModeDefault {
		kv(&b, "Mode", in.Mode.String())
	}
	if in.Bridge != "" {
		kv(&b, "Bridge", in.Bridge)
	}
	if in.ClampMSS != SwitchDefault {
		kv(&b, "ClampMSS", in.ClampMSS.String())
	}
	if in.MACAgeing != 0 {
		kv(&b, "MACAgeing", seconds(in.MACAgeing))
	}
	if in.MaxMACsPerPeer != 0 {
		kv(&b, "MaxMACsPerPeer", strconv.Itoa(in.MaxMACsPerPeer))
	}
	if in.FloodLimit != 0 {
		kv(&b, "FloodLimit", strconv.FormatUint(uint64(in.FloodLimit), 10))
	}
	if in.ListenTCP != 0 {
		kv(&b, "ListenTCP", strconv.Itoa(in.ListenTCP))
	}
	if in.MetricsAddress.IsValid() {
		kv(&b, "MetricsAddress", in.MetricsAddress.String())
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
			kv(b, "PersistentKeepalive", seconds(p.PersistentKeepalive))
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

// seconds formats d in whole seconds, rounded up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
