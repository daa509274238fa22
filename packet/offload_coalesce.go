package packet

import (
	"bytes"
	"encoding/binary"
)

// Limits of a coalesced super-packet.
const (
	// maxCoalesceSegments is the largest number of segments merged into
	// one super-packet (the kernel's UDP GRO limit, UDP_GRO_CNT_MAX).
	maxCoalesceSegments = 64
	// maxCoalesceLen is the largest length of a coalesced packet, counted
	// from its first byte after the virtio-net header (link header
	// included): it keeps the IPv4 total length, the IPv6 payload length
	// and the UDP length within 16 bits, and the whole packet within the
	// kernel's 64 KiB GSO limit.
	maxCoalesceLen = 0xffff
)

// Coalescer merges consecutive segments of the same flow before they are
// written to a device with a virtio-net header: the user-space counterpart
// of the kernel's generic receive offload (GRO), whose rules it follows
// (net/ipv4/tcp_offload.c, net/ipv4/udp_offload.c). The kernel segments the
// resulting super-packets again where needed, so coalescing saves one trip
// through the stack per segment.
//
// A Coalescer is reusable, and Coalesce does not allocate once its internal
// tables have grown to the largest batch seen. The zero value is ready to
// use (for TUN devices, TCP only). A Coalescer must not be used by several
// goroutines at once.
type Coalescer struct {
	// L2Len is the length of the link header that precedes the IP header:
	// 0 for TUN devices, EthernetHeaderLen (14) for TAP devices, where
	// only untagged Ethernet frames carrying IPv4 or IPv6 are coalesced
	// (VLAN-tagged and non-IP frames pass untouched). With any other value
	// nothing is coalesced.
	L2Len int
	// UDP also coalesces UDP datagrams into GSOUDPL4 super-packets. Only
	// set it if the device accepted TUN_F_USO4|TUN_F_USO6 (Linux 6.2+).
	UDP bool
	// Trusted skips the verification of each packet's TCP or UDP checksum
	// before it joins a run. Set it only for packets authenticated on
	// their way, by a tunnel's AEAD say, which nothing can have corrupted
	// since their sender checksummed them: the kernel's WireGuard marks
	// decrypted packets CHECKSUM_UNNECESSARY for the same reason. (A
	// merged super-packet gets a fresh checksum, so a segment whose
	// checksum was wrong would no longer be caught by the receiver.)
	Trusted bool

	items    []groItem // heads of runs, in order of their first packet
	slots    []int32   // open-addressing hash table: 1 + index into items of a flow's latest run, 0 = empty
	openFrom int       // runs before items[openFrom] are closed (a barrier was seen)
}

// flowKey identifies a TCP or UDP flow.
type flowKey struct {
	src, dst     [IPv6AddrLen]byte // IPv4 addresses in the first 4 bytes
	sport, dport uint16
	proto        uint8
	v6           bool
}

func (k *flowKey) hash() uint64 {
	const (
		m1 = 0x9e3779b97f4a7c15
		m2 = 0xc2b2ae3d27d4eb4f
		m3 = 0x165667b19e3779f9
		m4 = 0xd6e8feb86659fd93
	)
	h := binary.LittleEndian.Uint64(k.src[0:]) * m1
	h ^= binary.LittleEndian.Uint64(k.src[8:]) * m2
	h ^= binary.LittleEndian.Uint64(k.dst[0:]) * m3
	h ^= binary.LittleEndian.Uint64(k.dst[8:]) * m4
	h ^= (uint64(k.sport)<<16 | uint64(k.dport) | uint64(k.proto)<<32) * m1
	h ^= h >> 31
	h *= m2
	h ^= h >> 29
	return h
}

// groItem is a run of segments coalesced into the packet bufs[idx].
type groItem struct {
	key     flowKey
	idx     int    // index into bufs of the head
	l4      int    // offset of the transport header in the packet
	hdrEnd  int    // offset of the payload in the packet
	gsoSize int    // payload size of the head and of every full segment
	segs    int    // number of segments merged, the head included
	nextSeq uint32 // TCP: sequence number the next segment must carry
	nextID  uint16 // IPv4: identification the next segment must carry
	closed  bool   // nothing more may be appended
}

// groPacket is what classify learnt about one packet.
type groPacket struct {
	key       flowKey
	l4        int
	hdrEnd    int
	candidate bool // may start a run or be appended to one
}

// Packet classes.
const (
	groPass    = iota // not part of a flow we track: written as is
	groBarrier        // IP, but the transport header cannot be found: closes all runs
	groFlow           // a TCP (or UDP, if Coalescer.UDP) packet: see groPacket
)

// Coalesce looks at the packets bufs[i][offset:] (len(bufs[i]) marks the end
// of each packet; cap(bufs[i]) may be larger) and merges runs of segments of
// the same flow into the first segment of each run, the head: it appends the
// payloads of the later segments to the head, extending it in place
// (bufs[head] = bufs[head][:newLen]) only if cap(bufs[head]) allows, and
// never beyond 65535 bytes after offset.
//
// It writes a virtio-net header into bufs[i][offset-VirtioNetHdrLen:offset]
// of every packet that must be written: a zero header (GSONone) for packets
// left alone, and for heads of runs of two or more segments a header with
// VirtioNetHdrFNeedsCsum, GSOTCPv4 or GSOTCPv6 (with GSOECN if the head
// carries CWR) or GSOUDPL4, HdrLen = link, IP and transport header lengths,
// GSOSize = payload size of the segments, CsumStart = link and IP header
// lengths, CsumOffset 16 (TCP) or 6 (UDP). In such a head the IPv4 total
// length and header checksum, or the IPv6 payload length, and the UDP
// length are updated, and the transport checksum field holds the folded
// pseudo-header sum over the new length, as VirtioNetHdrFNeedsCsum asks; a
// PSH flag of the last segment is moved to the head.
//
// It returns the indices of the packets to write, in increasing order,
// appended to out[:0] (give out enough capacity to avoid allocating).
// Packets merged into a head are not in the result. Order within a flow is
// preserved: a run only ever grows at its end, and a packet of a flow that
// is not appended to the flow's latest run ends that run. Packets of other
// flows keep their relative order.
//
// TCP segments are merged, as the kernel's GRO does, if they have the same
// addresses, ports, IP version, link header, TOS (IPv4) or traffic class and
// flow label (IPv6), TTL or hop limit, IPv4 DF and reserved bits, TCP header
// length and option bytes (timestamps included), acknowledgment number,
// window, urgent pointer, reserved bits and flags other than PSH and CWR;
// and if the IPv4 identification is the head's plus the number of segments
// so far, the sequence number follows the bytes so far exactly (nothing out
// of order or overlapping), and the payload is not larger than the head's.
// A segment shorter than the head's, or one with PSH, ends the run; so do 64
// segments, 65535 bytes, or a lack of capacity for the next segment. CWR is
// allowed only on the head. Segments with SYN, FIN, RST or URG, without
// payload (pure ACKs), with IPv4 options or fragmentation, or with IPv6
// extension headers, or whose length fields do not match the packet, are
// never merged (and end their flow's run). UDP datagrams (with c.UDP) are
// merged under the same IP rules if they have the same size but for a
// shorter last one, a non-zero checksum and a consistent length field.
//
// Packets of other protocols (ICMP, UDP without c.UDP, non-IP or
// VLAN-tagged frames) are written as they are and do not affect the runs.
// IP packets whose ports cannot be found (IPv4 fragments, IPv6 extension
// headers, truncated headers) could belong to any flow, so they end every
// run open at that point.
//
// Each packet's transport checksum is verified before it joins a run (not
// with Trusted); a packet whose checksum is wrong is written as it is.
//
// Coalesce panics if offset < VirtioNetHdrLen or a packet is shorter than
// offset.
func (c *Coalescer) Coalesce(bufs [][]byte, offset int, out []int) []int {
	if offset < VirtioNetHdrLen {
		panic("packet: Coalesce: offset smaller than VirtioNetHdrLen")
	}
	out = out[:0]
	c.reset(len(bufs))
	for i, b := range bufs {
		if len(b) < offset {
			panic("packet: Coalesce: packet shorter than offset")
		}
		var p groPacket
		switch c.classify(b[offset:], &p) {
		case groBarrier:
			c.openFrom = len(c.items)
		case groFlow:
			if c.add(bufs, offset, i, &p) {
				continue // merged
			}
		}
		clear(b[offset-VirtioNetHdrLen : offset])
		out = append(out, i)
	}
	for j := range c.items {
		if c.items[j].segs > 1 {
			c.finish(bufs, offset, &c.items[j])
		}
	}
	return out
}

// reset empties the tables for a batch of n packets.
func (c *Coalescer) reset(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if cap(c.slots) < size {
		c.slots = make([]int32, size)
	}
	c.slots = c.slots[:size]
	clear(c.slots)
	c.items = c.items[:0]
	c.openFrom = 0
}

// classify parses the packet p (after the virtio-net header).
func (c *Coalescer) classify(p []byte, g *groPacket) int {
	l3 := c.L2Len
	var etherType uint16
	switch c.L2Len {
	case 0:
	case EthernetHeaderLen:
		etherType = EtherType(p)
		if etherType != EtherTypeIPv4 && etherType != EtherTypeIPv6 {
			return groPass // tagged, ARP, ...
		}
	default:
		return groPass
	}
	if len(p) <= l3 {
		return groPass
	}
	ip := p[l3:]
	var proto uint8
	switch ip[0] >> 4 {
	case 4:
		if c.L2Len != 0 && etherType != EtherTypeIPv4 {
			return groPass
		}
		if len(ip) < IPv4HeaderLen {
			return groBarrier
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < IPv4HeaderLen || len(ip) < ihl {
			return groBarrier
		}
		proto = ip[ipv4ProtoOffset]
		if proto != ProtoTCP && (proto != ProtoUDP || !c.UDP) {
			return groPass
		}
		if binary.BigEndian.Uint16(ip[ipv4FlagsOffset:])&(ipv4FlagMF|ipv4FragOffMask) != 0 {
			return groBarrier
		}
		copy(g.key.src[:], ip[ipv4SrcOffset:ipv4SrcOffset+IPv4AddrLen])
		copy(g.key.dst[:], ip[ipv4SrcOffset+IPv4AddrLen:ipv4SrcOffset+2*IPv4AddrLen])
		g.l4 = l3 + ihl
		g.candidate = ihl == IPv4HeaderLen && int(binary.BigEndian.Uint16(ip[2:])) == len(ip)
	case 6:
		if c.L2Len != 0 && etherType != EtherTypeIPv6 {
			return groPass
		}
		if len(ip) < IPv6HeaderLen {
			return groBarrier
		}
		proto = ip[ipv6NextHdrOffset]
		if proto != ProtoTCP && (proto != ProtoUDP || !c.UDP) {
			if isIPv6ExtHdr(proto) {
				return groBarrier
			}
			return groPass
		}
		copy(g.key.src[:], ip[ipv6SrcOffset:ipv6SrcOffset+IPv6AddrLen])
		copy(g.key.dst[:], ip[ipv6SrcOffset+IPv6AddrLen:ipv6SrcOffset+2*IPv6AddrLen])
		g.key.v6 = true
		g.l4 = l3 + IPv6HeaderLen
		g.candidate = int(binary.BigEndian.Uint16(ip[4:])) == len(ip)-IPv6HeaderLen
	default:
		return groPass
	}
	if len(p)-g.l4 < 4 {
		return groBarrier // no ports
	}
	g.key.proto = proto
	g.key.sport = binary.BigEndian.Uint16(p[g.l4:])
	g.key.dport = binary.BigEndian.Uint16(p[g.l4+2:])
	if len(p) > maxCoalesceLen {
		g.candidate = false
	}
	if proto == ProtoTCP {
		if len(p)-g.l4 < TCPHeaderLen {
			g.candidate = false
			return groFlow
		}
		thLen := int(p[g.l4+12]>>4) * 4
		g.hdrEnd = g.l4 + thLen
		if thLen < TCPHeaderLen || len(p) <= g.hdrEnd || // no payload
			p[g.l4+tcpFlagsOffset]&(tcpFlagSYN|tcpFlagFIN|tcpFlagRST|tcpFlagURG) != 0 {
			g.candidate = false
		}
		if g.candidate && !c.Trusted && !transportChecksumValid(p[l3:], p[g.l4:], proto, g.key.v6) {
			g.candidate = false
		}
		return groFlow
	}
	g.hdrEnd = g.l4 + UDPHeaderLen
	if len(p) <= g.hdrEnd || // no payload
		int(binary.BigEndian.Uint16(p[g.l4+udpLenOffset:])) != len(p)-g.l4 ||
		p[g.l4+udpCsumOffset] == 0 && p[g.l4+udpCsumOffset+1] == 0 {
		g.candidate = false
	}
	if g.candidate && !c.Trusted && !transportChecksumValid(p[l3:], p[g.l4:], proto, g.key.v6) {
		g.candidate = false
	}
	return groFlow
}

// transportChecksumValid verifies the TCP or UDP checksum of seg (the
// transport header and payload) inside the IP packet ip. A merged
// super-packet is written with a partial checksum that the kernel
// completes, so a segment corrupted on the way must never join one: the
// kernel's GRO checks the same.
func transportChecksumValid(ip, seg []byte, proto uint8, v6 bool) bool {
	var src, dst []byte
	if v6 {
		src, dst = ip[ipv6SrcOffset:ipv6SrcOffset+IPv6AddrLen], ip[ipv6SrcOffset+IPv6AddrLen:ipv6SrcOffset+2*IPv6AddrLen]
	} else {
		src, dst = ip[ipv4SrcOffset:ipv4SrcOffset+IPv4AddrLen], ip[ipv4SrcOffset+IPv4AddrLen:ipv4SrcOffset+2*IPv4AddrLen]
	}
	return Checksum(seg, PseudoHeaderSum(proto, src, dst, len(seg))) == 0
}

// add handles packet i of a tracked flow. It returns true if the packet
// was appended to its flow's run, false if it must be written itself (as
// the head of a new run if it is a candidate).
func (c *Coalescer) add(bufs [][]byte, offset, i int, g *groPacket) bool {
	pos := int(g.key.hash()) & (len(c.slots) - 1)
	latest := -1
	for {
		s := c.slots[pos]
		if s == 0 {
			break
		}
		if c.items[s-1].key == g.key {
			latest = int(s - 1)
			break
		}
		pos = (pos + 1) & (len(c.slots) - 1)
	}
	if latest >= 0 {
		it := &c.items[latest]
		if g.candidate && latest >= c.openFrom && !it.closed && c.appendTo(bufs, offset, it, i, g) {
			return true
		}
		// Whatever comes next in this flow must not jump ahead of
		// packet i.
		it.closed = true
	}
	if !g.candidate {
		return false
	}
	p := bufs[i][offset:]
	l3 := c.L2Len
	item := groItem{
		key:     g.key,
		idx:     i,
		l4:      g.l4,
		hdrEnd:  g.hdrEnd,
		gsoSize: len(p) - g.hdrEnd,
		segs:    1,
	}
	if !g.key.v6 {
		item.nextID = binary.BigEndian.Uint16(p[l3+4:]) + 1
	}
	if g.key.proto == ProtoTCP {
		item.nextSeq = binary.BigEndian.Uint32(p[g.l4+4:]) + uint32(item.gsoSize)
		item.closed = p[g.l4+tcpFlagsOffset]&tcpFlagPSH != 0
	}
	c.items = append(c.items, item)
	c.slots[pos] = int32(len(c.items))
	return false
}

// appendTo appends the payload of the candidate packet i to the run it, if
// the rules allow.
func (c *Coalescer) appendTo(bufs [][]byte, offset int, it *groItem, i int, g *groPacket) bool {
	if g.l4 != it.l4 || g.hdrEnd != it.hdrEnd || it.segs >= maxCoalesceSegments {
		return false
	}
	hb := bufs[it.idx]
	p := bufs[i][offset:]
	payload := len(p) - g.hdrEnd
	newLen := len(hb) + payload
	if payload > it.gsoSize || newLen-offset > maxCoalesceLen || newLen > cap(hb) {
		return false
	}
	h := hb[offset:]
	l3 := c.L2Len
	if !bytes.Equal(h[:l3], p[:l3]) {
		return false
	}
	hip, pip := h[l3:], p[l3:]
	if g.key.v6 {
		// Version, traffic class, flow label; hop limit.
		if !bytes.Equal(hip[:4], pip[:4]) || hip[ipv6HopLimitOffset] != pip[ipv6HopLimitOffset] {
			return false
		}
	} else {
		// TOS; DF and reserved bits (MF and fragment offset are 0);
		// TTL; identification.
		if hip[1] != pip[1] || hip[6] != pip[6] || hip[7] != pip[7] || hip[8] != pip[8] ||
			binary.BigEndian.Uint16(pip[4:]) != it.nextID {
			return false
		}
	}
	var pshSet bool
	if g.key.proto == ProtoTCP {
		ht, pt := h[it.l4:it.hdrEnd], p[g.l4:g.hdrEnd]
		if binary.BigEndian.Uint32(pt[4:]) != it.nextSeq {
			return false
		}
		hf, pf := ht[tcpFlagsOffset], pt[tcpFlagsOffset]
		if pf&tcpFlagCWR != 0 || (hf^pf)&^(tcpFlagPSH|tcpFlagCWR) != 0 {
			return false
		}
		// Acknowledgment number, data offset and reserved bits; window
		// (and checksum), urgent pointer, options.
		if !bytes.Equal(ht[8:13], pt[8:13]) || !bytes.Equal(ht[14:16], pt[14:16]) ||
			!bytes.Equal(ht[18:], pt[18:]) {
			return false
		}
		pshSet = pf&tcpFlagPSH != 0
	}
	// Ports (the flow key) are all the UDP header holds besides the
	// length and checksum, which finish recomputes.

	copy(hb[len(hb):newLen], p[g.hdrEnd:])
	bufs[it.idx] = hb[:newLen]
	it.segs++
	it.nextID++
	it.nextSeq += uint32(payload)
	if payload < it.gsoSize {
		it.closed = true
	}
	if pshSet {
		h[it.l4+tcpFlagsOffset] |= tcpFlagPSH
		it.closed = true
	}
	return true
}

// finish fixes up the headers of the head of a run of several segments and
// writes its virtio-net header.
func (c *Coalescer) finish(bufs [][]byte, offset int, it *groItem) {
	p := bufs[it.idx][offset:]
	l3 := c.L2Len
	ip := p[l3:]
	hdr := VirtioNetHdr{
		Flags:     VirtioNetHdrFNeedsCsum,
		HdrLen:    uint16(it.hdrEnd),
		GSOSize:   uint16(it.gsoSize),
		CsumStart: uint16(it.l4),
	}
	var src, dst []byte
	if it.key.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-IPv6HeaderLen))
		src = ip[ipv6SrcOffset : ipv6SrcOffset+IPv6AddrLen]
		dst = ip[ipv6SrcOffset+IPv6AddrLen : ipv6SrcOffset+2*IPv6AddrLen]
		hdr.GSOType = GSOTCPv6
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		ip[ipv4CsumOffset], ip[ipv4CsumOffset+1] = 0, 0
		binary.BigEndian.PutUint16(ip[ipv4CsumOffset:], Checksum(ip[:it.l4-l3], 0))
		src = ip[ipv4SrcOffset : ipv4SrcOffset+IPv4AddrLen]
		dst = ip[ipv4SrcOffset+IPv4AddrLen : ipv4SrcOffset+2*IPv4AddrLen]
		hdr.GSOType = GSOTCPv4
	}
	l4 := p[it.l4:]
	if it.key.proto == ProtoTCP {
		hdr.CsumOffset = tcpCsumOffset
		if l4[tcpFlagsOffset]&tcpFlagCWR != 0 {
			hdr.GSOType |= GSOECN
		}
	} else {
		hdr.GSOType = GSOUDPL4
		hdr.CsumOffset = udpCsumOffset
		binary.BigEndian.PutUint16(l4[udpLenOffset:], uint16(len(l4)))
	}
	partial := Fold(PseudoHeaderSum(it.key.proto, src, dst, len(l4)))
	binary.BigEndian.PutUint16(l4[hdr.CsumOffset:], partial)
	hdr.Encode(bufs[it.idx][offset-VirtioNetHdrLen : offset])
}
