//go:build linux

package capture

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Protocols are the names Filter.Protos accepts, and the layer each needs.
var protocols = map[string]gopacket.LayerType{
	"icmp":  layers.LayerTypeICMPv4,
	"icmp6": layers.LayerTypeICMPv6,
	"tcp":   layers.LayerTypeTCP,
	"udp":   layers.LayerTypeUDP,
	"arp":   layers.LayerTypeARP,
	"ip":    layers.LayerTypeIPv4,
	"ip6":   layers.LayerTypeIPv6,
}

// ProtocolNames lists the protocols a Filter knows, for help texts.
const ProtocolNames = "icmp, icmp6, tcp, udp, arp, ip (IPv4), ip6"

// Filter keeps the packets that match it. Within a kind the values are
// alternatives (any protocol, any host, any port); between kinds all must
// hold (a protocol and a host and a port). The zero Filter matches every
// packet.
type Filter struct {
	// Protos are protocol names: icmp, icmp6, tcp, udp, arp, ip (IPv4)
	// and ip6. A packet matches if it contains that protocol's header.
	Protos []string
	// Hosts match the source or destination address of an IPv4 or IPv6
	// packet, or the sender or target protocol address of an ARP packet. A
	// single address is a prefix of full length.
	Hosts []netip.Prefix
	// Ports match the source or destination port of TCP and UDP.
	Ports []uint16
}

// ParseFilter builds a Filter from command-line values; each value may be a
// comma-separated list. Hosts are addresses (192.0.2.2, 2001:db8::2) or
// prefixes (192.0.2.0/24).
func ParseFilter(protos, hosts, ports []string) (Filter, error) {
	var f Filter
	for _, name := range splitList(protos) {
		name = strings.ToLower(name)
		if _, ok := protocols[name]; !ok {
			return Filter{}, fmt.Errorf("unknown protocol %q: want one of %s", name, ProtocolNames)
		}
		if !slices.Contains(f.Protos, name) {
			f.Protos = append(f.Protos, name)
		}
	}
	for _, h := range splitList(hosts) {
		p, err := parseHost(h)
		if err != nil {
			return Filter{}, err
		}
		f.Hosts = append(f.Hosts, p)
	}
	for _, s := range splitList(ports) {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return Filter{}, fmt.Errorf("bad port %q: want a number from 0 to 65535", s)
		}
		f.Ports = append(f.Ports, uint16(n))
	}
	return f, nil
}

// splitList splits comma-separated values and drops empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

func parseHost(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad host %q: want an IP address or prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad host %q: want an IP address or prefix", s)
	}
	a = a.WithZone("").Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// IsEmpty reports whether the filter matches every packet.
func (f Filter) IsEmpty() bool {
	return len(f.Protos) == 0 && len(f.Hosts) == 0 && len(f.Ports) == 0
}

// Match reports whether a decoded packet passes the filter.
func (f Filter) Match(pkt gopacket.Packet) bool {
	return f.matchProto(pkt) && f.matchHost(pkt) && f.matchPort(pkt)
}

func (f Filter) matchProto(pkt gopacket.Packet) bool {
	if len(f.Protos) == 0 {
		return true
	}
	for _, name := range f.Protos {
		if pkt.Layer(protocols[name]) != nil {
			return true
		}
	}
	return false
}

func (f Filter) matchHost(pkt gopacket.Packet) bool {
	if len(f.Hosts) == 0 {
		return true
	}
	for _, a := range addresses(pkt) {
		for _, p := range f.Hosts {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// addresses returns the packet's network-layer addresses: those of its
// (outermost) IPv4 or IPv6 header, or of its ARP message.
func addresses(pkt gopacket.Packet) []netip.Addr {
	var raw [][]byte
	if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		raw = append(raw, ip.SrcIP, ip.DstIP)
	}
	if ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		raw = append(raw, ip.SrcIP, ip.DstIP)
	}
	if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		raw = append(raw, arp.SourceProtAddress, arp.DstProtAddress)
	}
	var out []netip.Addr
	for _, b := range raw {
		if a, ok := netip.AddrFromSlice(b); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func (f Filter) matchPort(pkt gopacket.Packet) bool {
	if len(f.Ports) == 0 {
		return true
	}
	var ports []uint16
	if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		ports = append(ports, uint16(tcp.SrcPort), uint16(tcp.DstPort))
	}
	if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		ports = append(ports, uint16(udp.SrcPort), uint16(udp.DstPort))
	}
	for _, p := range ports {
		if slices.Contains(f.Ports, p) {
			return true
		}
	}
	return false
}

// String returns the filter in tcpdump's syntax, for example
// "(icmp or icmp6) and host 192.0.2.2 and port 53"; "" for the empty filter.
func (f Filter) String() string {
	var kinds []string
	add := func(items []string) {
		switch len(items) {
		case 0:
		case 1:
			kinds = append(kinds, items[0])
		default:
			kinds = append(kinds, "("+strings.Join(items, " or ")+")")
		}
	}
	add(f.Protos)
	var hosts []string
	for _, p := range f.Hosts {
		if p.IsSingleIP() {
			hosts = append(hosts, "host "+p.Addr().String())
		} else {
			hosts = append(hosts, "net "+p.String())
		}
	}
	add(hosts)
	var ports []string
	for _, p := range f.Ports {
		ports = append(ports, "port "+strconv.Itoa(int(p)))
	}
	add(ports)
	return strings.Join(kinds, " and ")
}
