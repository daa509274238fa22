package tun_test

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/packet"
	"github.com/tapwire/tapwire/tun"
)

// echoDevice opens a TUN device in a fresh namespace with 192.0.2.1/24 on
// it, so that an echo request written into the device from 192.0.2.2 comes
// back out of it as the kernel's echo reply: a round trip through the
// kernel that needs no other program.
func echoDevice(tb testing.TB) *tun.Device {
	tb.Helper()
	ns := nstest.New(tb)
	dev, err := tun.Open(tun.Config{Name: "twbench0", NetNS: ns.Name})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dev.Close() })
	ns.Run("ip", "addr", "add", "192.0.2.1/24", "dev", "twbench0")
	ns.Run("ip", "link", "set", "twbench0", "up")
	return dev
}

// echoRequest writes an IPv4 ICMP echo request from 192.0.2.2 to
// 192.0.2.1 with a payload of size bytes into b and returns its length.
func echoRequest(b []byte, size int, seq uint16) int {
	n := 20 + 8 + size
	ip := b[:20]
	clear(ip)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	ip[8], ip[9] = 64, 1 // TTL, ICMP
	copy(ip[12:], []byte{192, 0, 2, 2})
	copy(ip[16:], []byte{192, 0, 2, 1})
	binary.BigEndian.PutUint16(ip[10:], packet.Checksum(ip, 0))
	icmp := b[20:n]
	clear(icmp[:8])
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], 0x7477)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	for i := 8; i < len(icmp); i++ {
		icmp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(icmp[2:], packet.Checksum(icmp, 0))
	return n
}

// isEchoReply reports whether p is the kernel's reply to echoRequest.
func isEchoReply(p []byte) bool {
	return len(p) >= 28 && p[0]>>4 == 4 && p[9] == 1 && p[20] == 0 &&
		binary.BigEndian.Uint16(p[24:]) == 0x7477
}

// roundTrip sends a batch of echo requests and reads until every reply is
// back. The buffers are the caller's; nothing is allocated.
type roundTrip struct {
	dev   *tun.Device
	reqs  [][]byte // requests, at offset Headroom
	bufs  [][]byte // read buffers
	sizes []int
}

func newRoundTrip(dev *tun.Device, batch, size int) *roundTrip {
	rt := &roundTrip{dev: dev, sizes: make([]int, batch)}
	for i := range batch {
		req := make([]byte, tun.Headroom+2048)
		n := echoRequest(req[tun.Headroom:], size, uint16(i))
		rt.reqs = append(rt.reqs, req[:tun.Headroom+n])
		rt.bufs = append(rt.bufs, make([]byte, tun.Headroom+2048))
	}
	return rt
}

func (rt *roundTrip) batch(tb testing.TB) {
	if n, err := rt.dev.WriteBatch(rt.reqs, tun.Headroom); err != nil || n != len(rt.reqs) {
		tb.Fatalf("WriteBatch: %d, %v", n, err)
	}
	for want := len(rt.reqs); want > 0; {
		n, err := rt.dev.ReadBatch(rt.bufs, rt.sizes, tun.Headroom)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			if isEchoReply(rt.bufs[i][tun.Headroom : tun.Headroom+rt.sizes[i]]) {
				want--
			}
		}
	}
}

func (rt *roundTrip) single(tb testing.TB) {
	if _, err := rt.dev.Write(rt.reqs[0][tun.Headroom:]); err != nil {
		tb.Fatal(err)
	}
	for {
		n, err := rt.dev.Read(rt.bufs[0])
		if err != nil {
			tb.Fatal(err)
		}
		if isEchoReply(rt.bufs[0][:n]) {
			return
		}
	}
}

// TestBatchIONoAllocs proves the batch and single read and write paths
// allocate nothing per call.
func TestBatchIONoAllocs(t *testing.T) {
	dev := echoDevice(t)
	rt := newRoundTrip(dev, 32, 1400)
	rt.batch(t) // warm up: poller registration, first wake-ups
	if a := testing.AllocsPerRun(200, func() { rt.batch(t) }); a != 0 {
		t.Errorf("batch write+read of 32 packets: %.1f allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(500, func() { rt.single(t) }); a != 0 {
		t.Errorf("single write+read: %.1f allocations, want 0", a)
	}
}

// BenchmarkRoundTrip measures a packet's trip into the kernel and back out
// of the device: one write and one read per packet, singly or in batches.
// ns/pkt is the cost per packet, both system calls and the kernel's ICMP
// answer included.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run("single/"+itoa(size), func(b *testing.B) {
			rt := newRoundTrip(echoDevice(b), 1, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rt.single(b)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
		})
		b.Run("batch64/"+itoa(size), func(b *testing.B) {
			rt := newRoundTrip(echoDevice(b), 64, size)
			b.SetBytes(int64(64 * size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rt.batch(b)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(64*b.N), "ns/pkt")
		})
	}
}

// BenchmarkWrite measures writing packets the kernel then drops (to an
// address that is not local, with forwarding off): the cost of the write
// path alone.
func BenchmarkWrite(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run("batch"+itoa(batch), func(b *testing.B) {
			dev := echoDevice(b)
			rt := newRoundTrip(dev, batch, 1400)
			for _, r := range rt.reqs {
				p := r[tun.Headroom:]
				p[19] = 9 // to 192.0.2.9
				p[10], p[11] = 0, 0
				binary.BigEndian.PutUint16(p[10:], packet.Checksum(p[:20], 0))
			}
			b.SetBytes(int64(batch * 1428))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := dev.WriteBatch(rt.reqs, tun.Headroom); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(batch*b.N), "ns/pkt")
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
