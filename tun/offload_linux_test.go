package tun_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/tun"
)

func TestOffloadsProbed(t *testing.T) {
	ns := nstest.New(t)
	on := openIn(t, ns, tun.Config{Name: "twoff0"})
	if o := on.Offloads(); !o.VnetHdr || !o.Checksum || !o.TSO || !o.CoalesceTCP {
		t.Errorf("default offloads on a 6.x kernel: %v", o)
	} else {
		t.Logf("offloads: %v", o)
	}
	// Super-packets are kept to what one read can split (a small MSS would
	// otherwise make 600-segment packets that are dropped whole).
	if out := ns.Run("ip", "-d", "link", "show", "twoff0"); !strings.Contains(out, "gso_max_segs 128 ") {
		t.Errorf("gso_max_segs not limited:\n%s", out)
	}
	off := openIn(t, ns, tun.Config{Name: "twoff1", NoOffload: true})
	if o := off.Offloads(); o.VnetHdr || o.String() != "off" {
		t.Errorf("NoOffload: %v", o)
	}
	t.Setenv("TAPWIRE_OFFLOAD", "off")
	env := openIn(t, ns, tun.Config{Name: "twoff2", Mode: tun.ModeTAP})
	if o := env.Offloads(); o.VnetHdr {
		t.Errorf("TAPWIRE_OFFLOAD=off: %v", o)
	}
	pi := openIn(t, ns, tun.Config{Name: "twoff3", PacketInfo: true})
	if o := pi.Offloads(); o.VnetHdr {
		t.Errorf("packet information with offloads: %v", o)
	}
}

// pumpBetween copies packets from src to dst until src is closed, and counts
// the packets the kernel refused in dropped.
func pumpBetween(src, dst *tun.Device, dropped *atomic.Int64) {
	bufs := make([][]byte, src.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, len(bufs))
	for {
		n, err := src.ReadBatch(bufs, sizes, tun.Headroom)
		if err != nil {
			return
		}
		for i := range n {
			bufs[i] = bufs[i][:tun.Headroom+sizes[i]]
		}
		if _, err := dst.WriteBatch(bufs[:n], tun.Headroom); err != nil {
			var pe *tun.PacketError
			if !errors.As(err, &pe) {
				return
			}
			dropped.Add(int64(pe.Dropped))
		}
		for i := range n {
			bufs[i] = bufs[i][:cap(bufs[i])]
		}
	}
}

// TestOffloadFallbackLosesNothing makes the receiving device refuse every
// coalesced super-packet, as some kernels do, and checks that a TCP stream
// still arrives whole: coalescing is switched off after the first refusal and
// the refused super-packet is re-sent as its segments.
func TestOffloadFallbackLosesNothing(t *testing.T) {
	left, right := nstest.New(t), nstest.New(t)
	a := openIn(t, left, tun.Config{Name: "twfa0"})
	b := openIn(t, right, tun.Config{Name: "twfb0"})
	tun.RefuseGSOForTest(b)
	left.Run("ip", "addr", "add", "192.0.2.1/24", "dev", "twfa0")
	left.Run("ip", "link", "set", "twfa0", "up")
	right.Run("ip", "addr", "add", "192.0.2.2/24", "dev", "twfb0")
	right.Run("ip", "link", "set", "twfb0", "up")
	// Pump only once both are up: a device that is down refuses writes (EIO).
	var dropped atomic.Int64
	go pumpBetween(a, b, &dropped)
	go pumpBetween(b, a, &dropped)

	var ln net.Listener
	if err := right.Do(func() (err error) { ln, err = net.Listen("tcp", "192.0.2.2:0"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 16<<20)
	rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		data, _ := io.ReadAll(c)
		got <- data
	}()
	var c net.Conn
	if err := left.Do(func() (err error) { c, err = net.Dial("tcp", ln.Addr().String()); return }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if data := <-got; !bytes.Equal(data, want) {
		t.Fatalf("received %d bytes, not the %d sent", len(data), len(want))
	}
	if o := b.Offloads(); o.CoalesceTCP {
		t.Errorf("coalescing still on after the kernel refused a super-packet: %v", o)
	}
	if st := b.OffloadStats(); st.SuperPacketsWritten != 0 || st.Resent == 0 {
		t.Errorf("super-packets written to a refusing device, or none re-sent: %+v", st)
	}
	if n := dropped.Load(); n != 0 {
		t.Errorf("%d packets dropped on the way", n)
	}
	if st := a.OffloadStats(); st.SuperPacketsRead == 0 {
		t.Errorf("no super-packets read on the sending side: %+v", st)
	}
}
