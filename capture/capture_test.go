//go:build linux

package capture

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// fakeSource hands out the packets queued in pkts, then end (or, with end
// nil, blocks until closed), as a real source does.
type fakeSource struct {
	lt     layers.LinkType
	pkts   chan Packet
	end    error
	closed chan struct{}
	once   sync.Once
}

func newFakeSource(lt layers.LinkType, end error, pkts ...Packet) *fakeSource {
	s := &fakeSource{lt: lt, pkts: make(chan Packet, len(pkts)), end: end, closed: make(chan struct{})}
	for _, p := range pkts {
		s.pkts <- p
	}
	close(s.pkts)
	return s
}

func (s *fakeSource) Name() string              { return "fake0" }
func (s *fakeSource) LinkType() layers.LinkType { return s.lt }
func (s *fakeSource) Close() error              { s.once.Do(func() { close(s.closed) }); return nil }

func (s *fakeSource) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *fakeSource) ReadPacket() (Packet, error) {
	if s.isClosed() {
		return Packet{}, os.ErrClosed
	}
	if p, ok := <-s.pkts; ok {
		return p, nil
	}
	if s.end != nil {
		return Packet{}, s.end
	}
	<-s.closed
	return Packet{}, os.ErrClosed
}

var t0 = time.Date(2025, 1, 2, 14, 3, 7, 123456789, time.Local)

func pkt(data []byte, i int, dir Direction) Packet {
	return Packet{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Data: data, Length: len(data), Direction: dir}
}

// readPcapng reads back what a Writer wrote.
func readPcapng(t *testing.T, b []byte) (*pcapgo.NgReader, []Packet) {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("read pcapng: %v", err)
	}
	var out []Packet
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			return r, out
		}
		if err != nil {
			t.Fatalf("read pcapng packet %d: %v", len(out), err)
		}
		p := Packet{Timestamp: ci.Timestamp, Data: data, Length: ci.Length}
		if opts.Flags != nil {
			switch opts.Flags.Direction {
			case pcapgo.NgEpbFlagDirectionInbound:
				p.Direction = DirIn
			case pcapgo.NgEpbFlagDirectionOutbound:
				p.Direction = DirOut
			}
		}
		out = append(out, p)
	}
}

func TestCaptureRunCountFilterWrite(t *testing.T) {
	in := []Packet{
		pkt(echo4(t, ip1, ip2, false, 7, 1), 0, DirOut),
		pkt(udp4(t, ip1, ip2, 5353, 53), 1, DirOut),
		pkt(echo4(t, ip2, ip1, true, 7, 1), 2, DirIn),
		pkt(tcp4(t, ip1, ip2, 40000, 80, 0), 3, DirOut),
		pkt(echo4(t, ip1, ip2, false, 7, 2), 4, DirOut),
	}
	in[2].Length = 1000 // truncated by the capture
	src := newFakeSource(layers.LinkTypeRaw, nil, in...)
	var file, lines bytes.Buffer
	w, err := NewWriter(&file, src.Name(), src.LinkType(), "icmp")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ParseFilter([]string{"icmp"}, nil, nil)
	st, err := Run(context.Background(), src, Options{Count: 2, Filter: f, Writer: w, Print: &lines})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st != (Stats{Captured: 3, Kept: 2}) {
		t.Errorf("Stats = %+v, want 3 captured, 2 kept", st)
	}
	if !src.isClosed() {
		t.Error("Run left the source open")
	}

	wantLines := "14:03:07.123456 Out IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 64\n" +
		"14:03:07.125456 In IP 192.0.2.2 > 192.0.2.1: ICMP echo reply, id 7, seq 1, length 64 [truncated]\n"
	if lines.String() != wantLines {
		t.Errorf("printed:\n%s\nwant:\n%s", lines.String(), wantLines)
	}

	r, got := readPcapng(t, file.Bytes())
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw", r.LinkType())
	}
	intf, err := r.Interface(0)
	if err != nil || intf.Name != "fake0" || intf.Filter != "icmp" {
		t.Errorf("interface description %+v, %v: want name fake0 and filter icmp", intf, err)
	}
	want := []Packet{in[0], in[2]}
	if len(got) != len(want) {
		t.Fatalf("file has %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Timestamp.Equal(want[i].Timestamp) || !bytes.Equal(got[i].Data, want[i].Data) ||
			got[i].Length != want[i].Length || got[i].Direction != want[i].Direction {
			t.Errorf("packet %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// A cancelled context (Ctrl-C) stops a blocked capture, and what was
// written so far is a complete file.
func TestCaptureRunCancel(t *testing.T) {
	src := newFakeSource(layers.LinkTypeEthernet, nil, pkt(arpRequest(t), 0, DirOut))
	var file bytes.Buffer
	w, err := NewWriter(&file, src.Name(), src.LinkType(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var st Stats
	go func() {
		var err error
		st, err = Run(ctx, src, Options{Writer: w})
		done <- err
	}()
	// Once the packet is read, Run is blocked reading the next.
	for len(src.pkts) > 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if st != (Stats{Captured: 1, Kept: 1}) {
		t.Errorf("Stats = %+v", st)
	}
	r, got := readPcapng(t, file.Bytes())
	if r.LinkType() != layers.LinkTypeEthernet || len(got) != 1 {
		t.Errorf("file: link type %v, %d packets; want Ethernet, 1", r.LinkType(), len(got))
	}
}

func TestCaptureRunDuration(t *testing.T) {
	src := newFakeSource(layers.LinkTypeRaw, nil)
	start := time.Now()
	st, err := Run(context.Background(), src, Options{Duration: 50 * time.Millisecond})
	if err != nil || st != (Stats{}) {
		t.Errorf("Run = %+v, %v; want nothing and nil", st, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("Run took %v, want 50ms", d)
	}
}

func TestCaptureRunErrors(t *testing.T) {
	// A source that fails is an error, with the packets so far counted.
	boom := errors.New("boom")
	src := newFakeSource(layers.LinkTypeRaw, boom, pkt(echo4(t, ip1, ip2, false, 7, 1), 0, DirOut))
	st, err := Run(context.Background(), src, Options{})
	if !errors.Is(err, boom) || st.Captured != 1 {
		t.Errorf("Run on a failing source = %+v, %v; want 1 captured and boom", st, err)
	}

	// So is output that cannot be written.
	src = newFakeSource(layers.LinkTypeRaw, nil, pkt(echo4(t, ip1, ip2, false, 7, 1), 0, DirOut))
	_, err = Run(context.Background(), src, Options{Print: failWriter{}})
	if err == nil || !strings.Contains(err.Error(), "print") {
		t.Errorf("Run printing to a failing writer: %v, want a print error", err)
	}
	if !src.isClosed() {
		t.Error("Run left the source open")
	}
	lim := &limitWriter{n: 200}
	w, err := NewWriter(lim, "fake0", layers.LinkTypeRaw, "")
	if err != nil {
		t.Fatal(err)
	}
	src = newFakeSource(layers.LinkTypeRaw, nil, pkt(echo4(t, ip1, ip2, false, 7, 1), 0, DirOut), pkt(echo4(t, ip1, ip2, false, 7, 2), 1, DirOut))
	if _, err = Run(context.Background(), src, Options{Writer: w}); err == nil {
		t.Error("Run writing to a full disk: no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// limitWriter takes n bytes, then fails.
type limitWriter struct{ n int }

func (l *limitWriter) Write(b []byte) (int, error) {
	if len(b) > l.n {
		n := l.n
		l.n = 0
		return n, errors.New("no space left on device")
	}
	l.n -= len(b)
	return len(b), nil
}
