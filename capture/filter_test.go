//go:build linux

package capture

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
)

func TestCaptureParseFilter(t *testing.T) {
	f, err := ParseFilter([]string{"icmp,ICMP6", "icmp"}, []string{"192.0.2.2", "2001:db8::/32, fe80::1%eth0"}, []string{"53", "80,443"})
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{
		Protos: []string{"icmp", "icmp6"},
		Hosts: []netip.Prefix{
			netip.MustParsePrefix("192.0.2.2/32"),
			netip.MustParsePrefix("2001:db8::/32"),
			netip.MustParsePrefix("fe80::1/128"),
		},
		Ports: []uint16{53, 80, 443},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("ParseFilter = %+v, want %+v", f, want)
	}
	if s, want := f.String(), "(icmp or icmp6) and (host 192.0.2.2 or net 2001:db8::/32 or host fe80::1) and (port 53 or port 80 or port 443)"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	if f.IsEmpty() {
		t.Error("IsEmpty is true")
	}

	f, err = ParseFilter(nil, []string{"192.0.2.9/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := f.String(); s != "net 192.0.2.0/24" {
		t.Errorf("String = %q, want the masked prefix", s)
	}
	if f, err := ParseFilter(nil, nil, nil); err != nil || !f.IsEmpty() || f.String() != "" {
		t.Errorf("empty ParseFilter = %+v, %v", f, err)
	}

	for _, bad := range []struct{ protos, hosts, ports []string }{
		{protos: []string{"sctp"}},
		{protos: []string{"icmp,bogus"}},
		{hosts: []string{"192.0.2"}},
		{hosts: []string{"192.0.2.0/33"}},
		{hosts: []string{"host.example"}},
		{ports: []string{"65536"}},
		{ports: []string{"-1"}},
		{ports: []string{"http"}},
	} {
		if f, err := ParseFilter(bad.protos, bad.hosts, bad.ports); err == nil {
			t.Errorf("ParseFilter(%q, %q, %q) = %+v, want an error", bad.protos, bad.hosts, bad.ports, f)
		}
	}
}

func TestCaptureFilterMatch(t *testing.T) {
	ip3 := net.IP{198, 51, 100, 3}
	pkts := map[string]gopacket.Packet{
		"icmp":  rawPacket(echo4(t, ip1, ip2, false, 7, 1)),
		"icmp6": rawPacket(echo6(t, ip61, ip62)),
		"tcp":   rawPacket(tcp4(t, ip1, ip3, 40000, 80, 0)),
		"udp":   rawPacket(udp4(t, ip3, ip2, 5353, 53)),
		"udp6":  rawPacket(udp6(t, ip61, ip62, 40000, 443)),
		"arp":   ethPacket(arpRequest(t)),
	}
	for _, tc := range []struct {
		protos, hosts, ports []string
		want                 []string // the packets that match
	}{
		{want: []string{"icmp", "icmp6", "tcp", "udp", "udp6", "arp"}},
		{protos: []string{"icmp"}, want: []string{"icmp"}},
		{protos: []string{"icmp6"}, want: []string{"icmp6"}},
		{protos: []string{"tcp"}, want: []string{"tcp"}},
		{protos: []string{"udp"}, want: []string{"udp", "udp6"}},
		{protos: []string{"arp"}, want: []string{"arp"}},
		{protos: []string{"ip"}, want: []string{"icmp", "tcp", "udp"}},
		{protos: []string{"ip6"}, want: []string{"icmp6", "udp6"}},
		{protos: []string{"icmp,arp"}, want: []string{"icmp", "arp"}},
		// A host is a source or destination, or an ARP sender or target.
		{hosts: []string{"192.0.2.2"}, want: []string{"icmp", "udp", "arp"}},
		{hosts: []string{"198.51.100.3"}, want: []string{"tcp", "udp"}},
		{hosts: []string{"2001:db8::2"}, want: []string{"icmp6", "udp6"}},
		{hosts: []string{"192.0.2.0/24"}, want: []string{"icmp", "tcp", "udp", "arp"}},
		{hosts: []string{"2001:db8::/32", "198.51.100.3"}, want: []string{"icmp6", "tcp", "udp", "udp6"}},
		// A port is a TCP or UDP source or destination port.
		{ports: []string{"53"}, want: []string{"udp"}},
		{ports: []string{"80", "443"}, want: []string{"tcp", "udp6"}},
		{ports: []string{"40000"}, want: []string{"tcp", "udp6"}},
		// Kinds combine with and.
		{protos: []string{"udp"}, ports: []string{"443"}, want: []string{"udp6"}},
		{protos: []string{"icmp"}, hosts: []string{"198.51.100.3"}, want: nil},
		{protos: []string{"tcp", "udp"}, hosts: []string{"198.51.100.3"}, ports: []string{"53"}, want: []string{"udp"}},
		{protos: []string{"icmp"}, ports: []string{"53"}, want: nil},
	} {
		f, err := ParseFilter(tc.protos, tc.hosts, tc.ports)
		if err != nil {
			t.Fatal(err)
		}
		for name, pkt := range pkts {
			want := false
			for _, w := range tc.want {
				want = want || w == name
			}
			if got := f.Match(pkt); got != want {
				t.Errorf("filter %q: Match(%s) = %v, want %v", f, name, got, want)
			}
		}
	}
}
