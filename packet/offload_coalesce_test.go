package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
)

// tcpStream hands out consecutive segments of one sender.
type tcpStream struct {
	spec pktSpec
	seq  uint32
	id   uint16
}

func newStream(s pktSpec) *tcpStream {
	if !s.udp && s.flags == 0 {
		s.flags = tcpFlagACK
	}
	if !s.udp && s.ack == 0 {
		s.ack = 5000
	}
	return &tcpStream{spec: s, seq: 1000 + s.seq, id: 100 + s.id}
}

// next returns the next segment with n payload bytes; mods apply to it
// only (the stream advances by n bytes and one IPv4 ID regardless).
func (st *tcpStream) next(n int, mods ...func(*pktSpec)) pktSpec {
	p := st.spec
	p.seq, p.id = st.seq, st.id
	p.payload = testPayload(n, byte(st.id)^byte(st.seq))
	for _, m := range mods {
		m(&p)
	}
	st.seq += uint32(n)
	st.id++
	return p
}

func withFlags(f uint8) func(*pktSpec) { return func(p *pktSpec) { p.flags |= f } }
func seqDelta(d int) func(*pktSpec)    { return func(p *pktSpec) { p.seq += uint32(d) } }

// coalesceCase is a batch of packets and how Coalesce must group them.
type coalesceCase struct {
	name string
	l2   int
	udp  bool
	mk   func() []pktSpec
	mod  map[int]func([]byte) []byte // rewrite packet i's bytes
	caps map[int]int                 // capacity after offset for packet i (default 65535+100)
	want [][]int                     // written packets: the inputs merged into each
}

func seqRange(a, b int) []int {
	r := make([]int, 0, b-a)
	for i := a; i < b; i++ {
		r = append(r, i)
	}
	return r
}

func TestCoalesce(t *testing.T) {
	ts := []uint32{7, 8}
	base := pktSpec{df: true, ts: ts}
	flowB := pktSpec{df: true, ts: ts, sport: 40001}
	cases := []coalesceCase{
		{name: "three", mk: func() []pktSpec { a := newStream(base); return []pktSpec{a.next(1000), a.next(1000), a.next(1000)} },
			want: [][]int{{0, 1, 2}}},
		// A segment corrupted on the way must not hide in a super-packet,
		// whose checksum the kernel recomputes.
		{name: "bad-checksum-middle", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
			want: [][]int{{0}, {1}, {2}}},
		{name: "bad-checksum-udp", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{2: func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
			want: [][]int{{0, 1}, {2}}},
		{name: "no-options-no-df", mk: func() []pktSpec {
			a := newStream(pktSpec{})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, want: [][]int{{0, 1, 2}}},
		{name: "short-last", mk: func() []pktSpec { a := newStream(base); return []pktSpec{a.next(1000), a.next(1000), a.next(300)} },
			want: [][]int{{0, 1, 2}}},
		{name: "short-middle", mk: func() []pktSpec { a := newStream(base); return []pktSpec{a.next(1000), a.next(300), a.next(1000)} },
			want: [][]int{{0, 1}, {2}}},
		{name: "larger-after-head", mk: func() []pktSpec { a := newStream(base); return []pktSpec{a.next(300), a.next(1000)} },
			want: [][]int{{0}, {1}}},
		{name: "psh-last", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000, withFlags(tcpFlagPSH))}
		}, want: [][]int{{0, 1, 2}}},
		{name: "psh-middle", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagPSH)), a.next(1000), a.next(1000)}
		}, want: [][]int{{0, 1}, {2, 3}}},
		{name: "psh-head", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000, withFlags(tcpFlagPSH)), a.next(1000)}
		}, want: [][]int{{0}, {1}}},
		{name: "syn", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagSYN))}
		}, want: [][]int{{0}, {1}}},
		{name: "fin", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagFIN|tcpFlagPSH))}
		}, want: [][]int{{0}, {1}}},
		{name: "fin-middle-ends-run", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagFIN)), a.next(1000)}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "fin-head", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000, withFlags(tcpFlagFIN)), a.next(1000)}
		}, want: [][]int{{0}, {1}}},
		{name: "rst", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagRST))}
		}, want: [][]int{{0}, {1}}},
		{name: "urg", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagURG), func(p *pktSpec) { p.urgent = 10 })}
		}, want: [][]int{{0}, {1}}},
		{name: "urgent-pointer-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.urgent = 10 })}
		}, want: [][]int{{0}, {1}}},
		{name: "ece-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagECE))}
		}, want: [][]int{{0}, {1}}},
		{name: "ece-all", mk: func() []pktSpec {
			a := newStream(pktSpec{flags: tcpFlagACK | tcpFlagECE})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, want: [][]int{{0, 1, 2}}},
		{name: "cwr-head", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000, withFlags(tcpFlagCWR)), a.next(1000), a.next(1000)}
		}, want: [][]int{{0, 1, 2}}},
		{name: "cwr-second", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, withFlags(tcpFlagCWR)), a.next(1000)}
		}, want: [][]int{{0}, {1, 2}}},
		{name: "timestamps-differ", mk: func() []pktSpec {
			a := newStream(base)
			other := func(p *pktSpec) { p.ts = []uint32{9, 8} }
			return []pktSpec{a.next(1000), a.next(1000, other), a.next(1000, other)}
		}, want: [][]int{{0}, {1, 2}}},
		{name: "options-length-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.ts = nil })}
		}, want: [][]int{{0}, {1}}},
		{name: "out-of-order", mk: func() []pktSpec {
			a := newStream(base)
			p0, p1, p2 := a.next(1000), a.next(1000), a.next(1000)
			return []pktSpec{p0, p2, p1}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "retransmission", mk: func() []pktSpec {
			a := newStream(base)
			p0 := a.next(1000)
			p1 := p0
			p1.id++
			return []pktSpec{p0, p1}
		}, want: [][]int{{0}, {1}}},
		{name: "overlap", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, seqDelta(-500))}
		}, want: [][]int{{0}, {1}}},
		{name: "gap", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, seqDelta(1))}
		}, want: [][]int{{0}, {1}}},
		{name: "interleaved", mk: func() []pktSpec {
			a, b := newStream(base), newStream(flowB)
			return []pktSpec{a.next(1000), b.next(500), a.next(1000), b.next(500), a.next(1000)}
		}, want: [][]int{{0, 2, 4}, {1, 3}}},
		{name: "interleaved-v4-v6-same-ports", mk: func() []pktSpec {
			a, b := newStream(base), newStream(pktSpec{v6: true, ts: ts})
			return []pktSpec{a.next(1000), b.next(1000), a.next(1000), b.next(1000)}
		}, want: [][]int{{0, 2}, {1, 3}}},
		{name: "reverse-direction-is-another-flow", mk: func() []pktSpec {
			a := newStream(base)
			b := newStream(pktSpec{src: net.IPv4(198, 51, 100, 2), dst: net.IPv4(192, 0, 2, 1), sport: 443, dport: 40000, df: true})
			return []pktSpec{a.next(1000), b.next(1000), a.next(1000), b.next(1000)}
		}, want: [][]int{{0, 2}, {1, 3}}},
		{name: "ack-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.ack++ })}
		}, want: [][]int{{0}, {1}}},
		{name: "window-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.window = 1 })}
		}, want: [][]int{{0}, {1}}},
		{name: "ipv4-id-not-incrementing", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.id-- })}
		}, want: [][]int{{0}, {1}}},
		{name: "ipv4-id-wraps", mk: func() []pktSpec {
			a := newStream(pktSpec{id: 0xffff - 100})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, want: [][]int{{0, 1, 2}}},
		{name: "ipv4-options", mk: func() []pktSpec {
			a := newStream(pktSpec{ipOpts: true})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "ipv4-options-middle", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.ipOpts = true }), a.next(1000)}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "ipv6-extension-headers", mk: func() []pktSpec {
			a := newStream(pktSpec{v6: true, hbh: true})
			return []pktSpec{a.next(1000), a.next(1000)}
		}, want: [][]int{{0}, {1}}},
		{name: "ipv6-extension-header-is-a-barrier", mk: func() []pktSpec {
			a, b := newStream(base), newStream(pktSpec{v6: true, hbh: true})
			return []pktSpec{a.next(1000), b.next(1000), a.next(1000), a.next(1000)}
		}, want: [][]int{{0}, {1}, {2, 3}}},
		{name: "ttl-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.ttl = 3 })}
		}, want: [][]int{{0}, {1}}},
		{name: "tos-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.tos = 3 })}
		}, want: [][]int{{0}, {1}}},
		{name: "df-differs", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.df = false })}
		}, want: [][]int{{0}, {1}}},
		{name: "tcp6", mk: func() []pktSpec {
			a := newStream(pktSpec{v6: true, ts: ts, tos: 0x10, flowLabel: 0xabcde})
			return []pktSpec{a.next(1000), a.next(1000), a.next(10, withFlags(tcpFlagPSH))}
		}, want: [][]int{{0, 1, 2}}},
		{name: "traffic-class-differs", mk: func() []pktSpec {
			a := newStream(pktSpec{v6: true})
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.tos = 4 })}
		}, want: [][]int{{0}, {1}}},
		{name: "flow-label-differs", mk: func() []pktSpec {
			a := newStream(pktSpec{v6: true})
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.flowLabel = 4 })}
		}, want: [][]int{{0}, {1}}},
		{name: "hop-limit-differs", mk: func() []pktSpec {
			a := newStream(pktSpec{v6: true})
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.ttl = 4 })}
		}, want: [][]int{{0}, {1}}},
		{name: "pure-ack-between", mk: func() []pktSpec {
			a := newStream(base)
			p0 := a.next(1000)
			ack := a.next(0)
			return []pktSpec{p0, ack, a.next(1000)}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "pure-acks", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(0), a.next(0)}
		}, want: [][]int{{0}, {1}}},
		{name: "truncated", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { return b[:len(b)-10] }},
			want: [][]int{{0}, {1}, {2}}},
		{name: "ipv4-length-longer-than-packet", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[3]++; return b }},
			want: [][]int{{0}, {1}}},
		{name: "ipv6-length-shorter-than-packet", mk: func() []pktSpec {
			a := newStream(pktSpec{v6: true})
			return []pktSpec{a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[5]--; return b }},
			want: [][]int{{0}, {1}}},
		{name: "tcp-data-offset-past-end", mk: func() []pktSpec {
			a := newStream(pktSpec{})
			return []pktSpec{a.next(1000), a.next(10)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[32] = 0xf0; return b }},
			want: [][]int{{0}, {1}}},
		{name: "cut-ip-header-is-a-barrier", mk: func() []pktSpec {
			a, b := newStream(base), newStream(flowB)
			return []pktSpec{a.next(1000), b.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { return b[:12] }},
			want: [][]int{{0}, {1}, {2}}},
		{name: "icmp-between", mk: func() []pktSpec {
			a, b := newStream(base), newStream(flowB)
			return []pktSpec{a.next(1000), b.next(100), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[9] = ProtoICMP; return b }},
			want: [][]int{{0, 2}, {1}}},
		{name: "empty-packet-between", mk: func() []pktSpec {
			a, b := newStream(base), newStream(flowB)
			return []pktSpec{a.next(1000), b.next(100), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { return b[:0] }},
			want: [][]int{{0, 2}, {1}}},
		{name: "capacity-too-small", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, caps: map[int]int{0: 1052, 1: 2052 - 1}, want: [][]int{{0}, {1}, {2}}},
		{name: "capacity-exact", mk: func() []pktSpec {
			a := newStream(base)
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, caps: map[int]int{0: 1052, 1: 2052}, want: [][]int{{0}, {1, 2}}},
		{name: "64-segments", mk: func() []pktSpec {
			a := newStream(base)
			var ps []pktSpec
			for range 70 {
				ps = append(ps, a.next(100))
			}
			return ps
		}, want: [][]int{seqRange(0, 64), seqRange(64, 70)}},
		{name: "65535-bytes", mk: func() []pktSpec {
			a := newStream(base)
			var ps []pktSpec
			for range 50 {
				ps = append(ps, a.next(1448))
			}
			return ps
		}, want: [][]int{seqRange(0, 45), seqRange(45, 50)}},
		{name: "udp-disabled", mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1200), a.next(1200)}
		}, want: [][]int{{0}, {1}}},
		{name: "udp", udp: true, mk: func() []pktSpec {
			a, b := newStream(pktSpec{udp: true}), newStream(base)
			return []pktSpec{a.next(1200), b.next(1000), a.next(1200), b.next(1000), a.next(1200), a.next(7)}
		}, want: [][]int{{0, 2, 4, 5}, {1, 3}}},
		{name: "udp6", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true, v6: true})
			return []pktSpec{a.next(1200), a.next(1200), a.next(1000), a.next(1200)}
		}, want: [][]int{{0, 1, 2}, {3}}},
		{name: "udp-larger", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), a.next(1200)}
		}, want: [][]int{{0}, {1}}},
		{name: "udp-id-not-incrementing", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), a.next(1000, func(p *pktSpec) { p.id += 2 })}
		}, want: [][]int{{0}, {1}}},
		{name: "udp-zero-checksum", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[26], b[27] = 0, 0; return b }},
			want: [][]int{{0}, {1}, {2}}},
		{name: "udp-length-mismatch", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[25]--; return b }},
			want: [][]int{{0}, {1}}},
		{name: "udp-fragment-is-a-barrier", udp: true, mk: func() []pktSpec {
			a := newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[6] |= 0x20; return b }},
			want: [][]int{{0}, {1}, {2}}},
		{name: "udp-fragment-ignored-without-udp", mk: func() []pktSpec {
			a, b := newStream(base), newStream(pktSpec{udp: true})
			return []pktSpec{a.next(1000), b.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[6] |= 0x20; return b }},
			want: [][]int{{0, 2}, {1}}},
		{name: "tap", l2: 14, udp: true, mk: func() []pktSpec {
			a, b := newStream(pktSpec{l2: 14, ts: ts}), newStream(pktSpec{l2: 14, v6: true, udp: true})
			return []pktSpec{a.next(1000), b.next(1000), a.next(1000), b.next(1000), a.next(1000)}
		}, want: [][]int{{0, 2, 4}, {1, 3}}},
		{name: "tap-vlan-untouched", l2: 14, mk: func() []pktSpec {
			a := newStream(pktSpec{l2: 14, vlan: true})
			return []pktSpec{a.next(1000), a.next(1000)}
		}, want: [][]int{{0}, {1}}},
		{name: "tap-arp-between", l2: 14, mk: func() []pktSpec {
			a, b := newStream(pktSpec{l2: 14}), newStream(pktSpec{l2: 14, sport: 1})
			return []pktSpec{a.next(1000), b.next(100), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b[:42] }},
			want: [][]int{{0, 2}, {1}}},
		{name: "tap-mac-differs", l2: 14, mk: func() []pktSpec {
			a := newStream(pktSpec{l2: 14})
			return []pktSpec{a.next(1000), a.next(1000)}
		}, mod: map[int]func([]byte) []byte{1: func(b []byte) []byte { b[0] ^= 4; return b }},
			want: [][]int{{0}, {1}}},
		{name: "tap-padded-frame", l2: 14, mk: func() []pktSpec {
			a := newStream(pktSpec{l2: 14})
			return []pktSpec{a.next(1000), a.next(1)}
		}, want: [][]int{{0}, {1}}},
		{name: "l2len-unsupported", l2: 4, mk: func() []pktSpec {
			a := newStream(pktSpec{})
			return []pktSpec{a.next(1000), a.next(1000)}
		}, want: [][]int{{0}, {1}}},
	}
	var c Coalescer // reused across cases
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			specs := tc.mk()
			pkts := make([][]byte, len(specs))
			for i, s := range specs {
				if tc.l2 == 4 {
					s.l2 = 0
				}
				pkts[i] = buildPacket(t, s)
				if m := tc.mod[i]; m != nil {
					pkts[i] = m(pkts[i])
				}
				if tc.l2 == 4 {
					pkts[i] = append([]byte{1, 2, 3, 4}, pkts[i]...)
				}
			}
			c.L2Len, c.UDP = tc.l2, tc.udp
			for range 2 { // the second round reuses the tables
				checkCoalesce(t, &c, pkts, tc.caps, tc.want)
			}
		})
	}
}

// checkCoalesce coalesces pkts and checks that the written packets are
// the groups want: single packets untouched with a zero virtio-net header,
// groups as super-packets that split back into exactly their inputs.
func checkCoalesce(t *testing.T, c *Coalescer, pkts [][]byte, caps map[int]int, want [][]int) {
	t.Helper()
	const offset = 12
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		capacity := maxCoalesceLen + 100
		if n, ok := caps[i]; ok {
			capacity = n
		}
		bufs[i] = withHeadroom(p, offset, capacity)
		for j := range offset {
			bufs[i][j] = 0xa5 // the header must be written
		}
	}
	out := c.Coalesce(bufs, offset, make([]int, 0, len(bufs)))
	got := fmt.Sprint(out)
	var heads []int
	for _, g := range want {
		heads = append(heads, g[0])
	}
	if got != fmt.Sprint(heads) {
		t.Fatalf("written %v, want heads %v", got, heads)
	}
	for k, g := range want {
		b := bufs[out[k]]
		if len(b)-offset > maxCoalesceLen || len(b) > cap(b) {
			t.Fatalf("packet %d: %d bytes", out[k], len(b)-offset)
		}
		var hdr VirtioNetHdr
		if err := hdr.Decode(b[offset-VirtioNetHdrLen:]); err != nil {
			t.Fatal(err)
		}
		if len(g) == 1 {
			if hdr != (VirtioNetHdr{}) {
				t.Fatalf("packet %d alone has header %+v", g[0], hdr)
			}
			if !bytes.Equal(b[offset:], pkts[g[0]]) {
				t.Fatalf("packet %d alone was modified", g[0])
			}
			continue
		}
		l2 := c.L2Len
		head := l4Offsets(t, pkts[g[0]], l2)
		wantHdr := VirtioNetHdr{
			Flags:      VirtioNetHdrFNeedsCsum,
			HdrLen:     uint16(head.hdrEnd),
			GSOSize:    uint16(len(head.payload)),
			CsumStart:  uint16(head.l4),
			CsumOffset: 16,
		}
		switch {
		case head.udp:
			wantHdr.GSOType, wantHdr.CsumOffset = GSOUDPL4, 6
		case head.v6:
			wantHdr.GSOType = GSOTCPv6
		default:
			wantHdr.GSOType = GSOTCPv4
		}
		if !head.udp && head.flags&tcpFlagCWR != 0 {
			wantHdr.GSOType |= GSOECN
		}
		if hdr != wantHdr {
			t.Fatalf("group %v: header %+v, want %+v", g, hdr, wantHdr)
		}
		checkPartialChecksum(t, b[offset:], l2)
		segs := splitWritten(t, b, offset, l2)
		if len(segs) != len(g) {
			t.Fatalf("group %v splits into %d segments", g, len(segs))
		}
		for j, seg := range segs {
			if !bytes.Equal(seg, pkts[g[j]]) {
				t.Fatalf("group %v: segment %d differs from input %d:\n got % x\nwant % x", g, j, g[j], seg, pkts[g[j]])
			}
		}
	}
}

// checkPartialChecksum checks a coalesced super-packet: lengths and IPv4
// header checksum are valid, and the transport checksum field holds the
// folded pseudo-header sum.
func checkPartialChecksum(t *testing.T, p []byte, l2 int) {
	t.Helper()
	ip := p[l2:]
	var src, dst []byte
	var proto uint8
	var l4 []byte
	if ip[0]>>4 == 4 {
		if int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
			t.Fatal("super-packet IPv4 total length")
		}
		if refChecksum(ip[:20], 0) != 0 {
			t.Fatal("super-packet IPv4 header checksum")
		}
		src, dst, proto, l4 = ip[12:16], ip[16:20], ip[9], ip[20:]
	} else {
		if int(binary.BigEndian.Uint16(ip[4:])) != len(ip)-40 {
			t.Fatal("super-packet IPv6 payload length")
		}
		src, dst, proto, l4 = ip[8:24], ip[24:40], ip[6], ip[40:]
	}
	at := 16
	if proto == ProtoUDP {
		at = 6
		if int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			t.Fatal("super-packet UDP length")
		}
	}
	if got, want := binary.BigEndian.Uint16(l4[at:]), uint16(refPseudo(src, dst, proto, len(l4))); got != want {
		t.Fatalf("partial checksum %#x, want %#x", got, want)
	}
}

// With Trusted (packets a tunnel authenticated) a segment whose checksum is
// wrong is merged all the same: nothing verifies it; without, it is not.
func TestCoalesceTrusted(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		a := newStream(pktSpec{df: true})
		pkts := make([][]byte, 3)
		for i := range pkts {
			p := buildPacket(t, a.next(1000))
			b := make([]byte, 12, 12+65535)
			pkts[i] = append(b, p...)
		}
		pkts[1][len(pkts[1])-1] ^= 0xff
		c := Coalescer{Trusted: trusted}
		out := c.Coalesce(pkts, 12, nil)
		if want := map[bool]int{false: 3, true: 1}[trusted]; len(out) != want {
			t.Errorf("Trusted %v: %d packets written, want %d", trusted, len(out), want)
		}
	}
}

func TestCoalescePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"offset":       func() { new(Coalescer).Coalesce([][]byte{make([]byte, 20)}, 9, nil) },
		"short-packet": func() { new(Coalescer).Coalesce([][]byte{make([]byte, 5)}, 10, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	// Empty batches are fine.
	if out := new(Coalescer).Coalesce(nil, 10, nil); len(out) != 0 {
		t.Fatal(out)
	}
}
