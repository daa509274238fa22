package tun

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWinCheckConfig(t *testing.T) {
	t.Parallel()
	notSupported := []Config{
		{Queues: 2},
		{MultiQueue: true},
		{PacketInfo: true},
		{Persist: true},
		{Owner: ID(1000)},
		{Group: ID(1000)},
		{SendBuffer: 1 << 20},
		{NetNS: "other"},
		{CarrierOff: true},
		{Mode: ModeTAP, Exclusive: true},
		{Mode: ModeTAP, MAC: []byte{2, 0, 0, 0, 0, 1}},
	}
	for _, cfg := range notSupported {
		err := winCheckConfig(cfg, false)
		var nse *NotSupportedError
		if !errors.As(err, &nse) || nse.OS != "windows" || !errors.Is(err, ErrNotSupported) {
			t.Errorf("winCheckConfig(%+v) = %v, want a NotSupportedError for windows", cfg, err)
		}
	}
	ok := []Config{
		{},
		{Name: "wg0", MTU: 1420, NoOffload: true},
		{Name: "tapwire%d", Queues: 1, Exclusive: true},
		{Mode: ModeTAP, CarrierOff: true},
		{Mode: ModeTAP, Name: "OpenVPN TAP-Windows6"},
	}
	for _, cfg := range ok {
		if err := winCheckConfig(cfg, false); err != nil {
			t.Errorf("winCheckConfig(%+v) = %v, want nil", cfg, err)
		}
	}
	invalid := []struct {
		cfg    Config
		attach bool
	}{
		{Config{MAC: []byte{2, 0, 0, 0, 0, 1}}, false}, // TUN has no MAC
		{Config{Name: strings.Repeat("x", 128)}, false},
		{Config{Name: "tapwire%d"}, true},
		{Config{}, true},
		{Config{Mode: ModeTAP, Name: "tap%d"}, false},
		{Config{Mode: 7}, false},
		{Config{Queues: -1}, false},
	}
	for _, tt := range invalid {
		err := winCheckConfig(tt.cfg, tt.attach)
		var oe *OpError
		if !errors.As(err, &oe) {
			t.Errorf("winCheckConfig(%+v, attach %v) = %v, want an *OpError", tt.cfg, tt.attach, err)
		}
	}
	// Attach to a TAP adapter without a name takes the first free one.
	if err := winCheckConfig(Config{Mode: ModeTAP}, true); err != nil {
		t.Errorf("winCheckConfig(TAP, attach) = %v, want nil", err)
	}
}

func TestWinExpandName(t *testing.T) {
	t.Parallel()
	taken := map[string]bool{"tapwire0": true, "tapwire1": true, "tapwire3": true}
	has := func(s string) bool { return taken[s] }
	for _, tt := range []struct{ in, want string }{
		{"tapwire%d", "tapwire2"},
		{"wg%d", "wg0"},
		{"tapwire0", "tapwire0"}, // no pattern: as is, taken or not
		{"my %d tunnel", "my 0 tunnel"},
	} {
		got, err := winExpandName(tt.in, has)
		if err != nil || got != tt.want {
			t.Errorf("winExpandName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := winExpandName("a%db%d", has); err == nil {
		t.Error("winExpandName with two patterns: no error")
	}
	if _, err := winExpandName("x%d", func(string) bool { return true }); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("winExpandName with every name taken = %v, want EEXIST", err)
	}
}

func TestWinNameGUID(t *testing.T) {
	t.Parallel()
	a1, a2, a3, a4 := winNameGUID("tapwire0")
	b1, b2, b3, b4 := winNameGUID("TAPWIRE0") // Windows names ignore case
	if a1 != b1 || a2 != b2 || a3 != b3 || a4 != b4 {
		t.Error("winNameGUID differs by case")
	}
	c1, _, _, _ := winNameGUID("tapwire1")
	if c1 == a1 {
		t.Error("winNameGUID(tapwire0) and (tapwire1) share Data1")
	}
	if a3>>12 != 8 {
		t.Errorf("version nibble = %x, want 8", a3>>12)
	}
	if a4[0]>>6 != 2 {
		t.Errorf("variant bits = %b, want 10", a4[0]>>6)
	}
}

func TestWinTAPCandidates(t *testing.T) {
	t.Parallel()
	all := []winTAPAdapter{
		{GUID: "{11111111-0000-0000-0000-000000000001}", Component: "PCI\\VEN_8086", Connection: "Ethernet"},
		{GUID: "{22222222-0000-0000-0000-000000000002}", Component: "tap0901", Connection: "OpenVPN TAP-Windows6"},
		{GUID: "{33333333-0000-0000-0000-000000000003}", Component: "ROOT\\TAP0901", Connection: "Lab"},
		{GUID: "{44444444-0000-0000-0000-000000000004}", Component: "wintun", Connection: "tapwire0"},
	}
	got, err := winTAPCandidates(all, "")
	if err != nil || len(got) != 2 || got[0].Connection != "OpenVPN TAP-Windows6" || got[1].Connection != "Lab" {
		t.Errorf("winTAPCandidates(all, \"\") = %v, %v; want the two TAP adapters in order", got, err)
	}
	got, err = winTAPCandidates(all, "lab")
	if err != nil || len(got) != 1 || got[0].GUID != all[2].GUID {
		t.Errorf("winTAPCandidates(all, lab) = %v, %v; want Lab", got, err)
	}
	_, err = winTAPCandidates(all, "Ethernet") // exists, but is not a TAP adapter
	var oe *OpError
	if !errors.As(err, &oe) || !strings.Contains(oe.Hint, `"Lab"`) {
		t.Errorf("winTAPCandidates(all, Ethernet) = %v, want an error listing the TAP adapters", err)
	}
	_, err = winTAPCandidates(all[:1], "")
	if !errors.As(err, &oe) || !strings.Contains(oe.Hint, "tapctl") {
		t.Errorf("winTAPCandidates without TAP adapters = %v, want the install hint", err)
	}
}

func TestWinCtlCode(t *testing.T) {
	t.Parallel()
	// Values from tap-windows.h as OpenVPN and water compute them.
	for _, tt := range []struct{ got, want uint32 }{
		{winTAPIoctlGetMAC, 0x220004},
		{winTAPIoctlGetMTU, 0x22000c},
		{winTAPIoctlSetMediaStatus, 0x220018},
	} {
		if tt.got != tt.want {
			t.Errorf("ioctl = %#x, want %#x", tt.got, tt.want)
		}
	}
}

func TestWinWaitMillis(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	for _, tt := range []struct {
		dl      int64
		ms      uint32
		expired bool
	}{
		{0, winInfinite, false},
		{now.UnixNano(), 0, true},
		{now.UnixNano() - 1, 0, true},
		{now.UnixNano() + 1, 1, false}, // rounded up: never wake early
		{now.Add(1500 * time.Microsecond).UnixNano(), 2, false},
		{now.Add(2 * time.Second).UnixNano(), 2000, false},
		{now.Add(100 * 24 * time.Hour).UnixNano(), winInfinite - 1, false},
	} {
		ms, expired := winWaitMillis(tt.dl, now)
		if ms != tt.ms || expired != tt.expired {
			t.Errorf("winWaitMillis(%d) = %d, %v; want %d, %v", tt.dl-now.UnixNano(), ms, expired, tt.ms, tt.expired)
		}
	}
}

type fakeSource struct {
	queue    [][]byte
	err      error
	released int
}

func (f *fakeSource) receive() ([]byte, error) {
	if len(f.queue) == 0 {
		return nil, f.err
	}
	p := f.queue[0]
	f.queue = f.queue[1:]
	return p, nil
}

func (f *fakeSource) release([]byte) { f.released++ }

func TestWinFillBatch(t *testing.T) {
	t.Parallel()
	bufs := make([][]byte, 3)
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+8)
	}
	sizes := make([]int, len(bufs))
	src := &fakeSource{queue: [][]byte{[]byte("one"), []byte("two"), []byte("three"), []byte("four")}}
	n, err := winFillBatch(src, bufs, sizes, Headroom)
	if n != 3 || err != nil || src.released != 3 {
		t.Fatalf("winFillBatch = %d, %v (released %d); want 3, nil (3)", n, err, src.released)
	}
	if got := string(bufs[2][Headroom : Headroom+sizes[2]]); got != "three" {
		t.Errorf("packet 2 = %q", got)
	}
	// One left: it comes alone, nothing blocks.
	n, err = winFillBatch(src, bufs, sizes, Headroom)
	if n != 1 || err != nil || string(bufs[0][Headroom:Headroom+sizes[0]]) != "four" {
		t.Errorf("second winFillBatch = %d, %v", n, err)
	}
	// Empty: 0 and no error, the caller waits.
	if n, err = winFillBatch(src, bufs, sizes, Headroom); n != 0 || err != nil {
		t.Errorf("empty winFillBatch = %d, %v", n, err)
	}
	// A packet longer than its buffer is truncated.
	src.queue = [][]byte{[]byte("0123456789")}
	if n, _ = winFillBatch(src, bufs, sizes, Headroom); n != 1 || sizes[0] != 8 {
		t.Errorf("long packet: n %d size %d, want 1, 8", n, sizes[0])
	}
	// An error after packets waits for the next call.
	boom := errors.New("boom")
	src.queue, src.err = [][]byte{[]byte("a")}, boom
	if n, err = winFillBatch(src, bufs, sizes, 0); n != 1 || err != nil {
		t.Errorf("packet then error = %d, %v; want 1, nil", n, err)
	}
	if n, err = winFillBatch(src, bufs, sizes, 0); n != 0 || err != boom {
		t.Errorf("error = %d, %v; want 0, boom", n, err)
	}
}

type fakeSink struct {
	got    []string
	refuse map[string]bool
	fatal  string
}

var errRefused = errors.New("refused")

func (f *fakeSink) send(p []byte) (bool, error) {
	switch s := string(p); {
	case f.refuse[s]:
		return true, errRefused
	case s == f.fatal:
		return false, ErrClosed
	default:
		f.got = append(f.got, s)
		return false, nil
	}
}

func TestWinWriteEach(t *testing.T) {
	t.Parallel()
	mk := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, append(make([]byte, 4), s...))
		}
		return out
	}
	sink := &fakeSink{refuse: map[string]bool{"b": true, "d": true}}
	n, err := winWriteEach(sink, mk("a", "b", "c", "d", "e"), 4)
	var pe *PacketError
	if n != 3 || !errors.As(err, &pe) || pe.Index != 1 || pe.Dropped != 2 || pe.Err != errRefused {
		t.Errorf("winWriteEach = %d, %v; want 3 and PacketError{1, 2}", n, err)
	}
	if fmt.Sprint(sink.got) != "[a c e]" {
		t.Errorf("written %v, want [a c e]", sink.got)
	}
	sink = &fakeSink{fatal: "b"}
	n, err = winWriteEach(sink, mk("a", "b", "c"), 4)
	if n != 1 || !errors.Is(err, ErrClosed) {
		t.Errorf("fatal: winWriteEach = %d, %v; want 1, ErrClosed", n, err)
	}
}
