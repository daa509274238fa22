//go:build linux

package main

import (
	"bytes"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/tapwire/tapwire/packet"
)

// echoPayload is the data of each client's echo request.
var echoPayload = []byte("tapwire bench/hub echo request")

// echoRequest writes into b an IPv4 ICMP echo request from src to dst with
// identifier id and sequence 1, and returns its length (b must hold 20 + 8
// + len(echoPayload) bytes).
func echoRequest(b []byte, src, dst netip.Addr, id uint16) int {
	body, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(id), Seq: 1, Data: echoPayload}}).Marshal(nil)
	if err != nil { // only for a message icmp cannot encode
		panic("hub: icmp: " + err.Error())
	}
	h := ipv4.Header{Version: ipv4.Version, Len: ipv4.HeaderLen, TotalLen: ipv4.HeaderLen + len(body), TTL: 64,
		Protocol: 1, Src: src.AsSlice(), Dst: dst.AsSlice()}
	hdr, err := h.Marshal()
	if err != nil {
		panic("hub: ipv4 header: " + err.Error())
	}
	// Marshal leaves the checksum to the raw socket it is made for (and
	// writes the fields in network order on Linux, as on the wire).
	c := packet.Checksum(hdr, 0)
	hdr[10], hdr[11] = byte(c>>8), byte(c)
	n := copy(b, hdr)
	return n + copy(b[n:], body)
}

// isEchoReply reports whether pkt is the IPv4 ICMP echo reply from src to
// dst answering echoRequest's request with identifier id.
func isEchoReply(pkt []byte, src, dst netip.Addr, id uint16) bool {
	h, err := ipv4.ParseHeader(pkt)
	if err != nil || h.Protocol != 1 || h.TotalLen > len(pkt) || h.Len > h.TotalLen {
		return false
	}
	if s, ok := netip.AddrFromSlice(h.Src); !ok || s.Unmap() != src {
		return false
	}
	if d, ok := netip.AddrFromSlice(h.Dst); !ok || d.Unmap() != dst {
		return false
	}
	m, err := icmp.ParseMessage(1, pkt[h.Len:h.TotalLen])
	if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
		return false
	}
	e, ok := m.Body.(*icmp.Echo)
	return ok && e.ID == int(id) && e.Seq == 1 && bytes.Equal(e.Data, echoPayload)
}
