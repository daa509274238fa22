package tun

import (
	"errors"
	"syscall"
	"testing"
)

func TestAFHeader(t *testing.T) {
	t.Parallel()
	for _, af := range []afNumbers{{inet: 2, inet6: 30}, {inet: 2, inet6: 28}} {
		hdr := make([]byte, afHeaderLen)
		if !af.putHeader(hdr, []byte{0x45, 0}) || hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 2 || af.version(hdr) != 4 {
			t.Errorf("%v: IPv4 header % x, version %d", af, hdr, af.version(hdr))
		}
		if !af.putHeader(hdr, []byte{0x60}) || hdr[3] != byte(af.inet6) || hdr[0]|hdr[1]|hdr[2] != 0 || af.version(hdr) != 6 {
			t.Errorf("%v: IPv6 header % x, version %d", af, hdr, af.version(hdr))
		}
		before := [4]byte(hdr)
		for _, bad := range [][]byte{nil, {}, {0x50}, {0x00}, {0xf0}} {
			if af.putHeader(hdr, bad) || [4]byte(hdr) != before {
				t.Errorf("%v: putHeader(% x) accepted or wrote", af, bad)
			}
		}
		if af.putHeader(hdr[:3], []byte{0x45}) {
			t.Errorf("%v: putHeader into 3 bytes succeeded", af)
		}
		if v := af.version([]byte{0, 0, 0, 7}); v != 0 {
			t.Errorf("%v: version of family 7 = %d", af, v)
		}
		if v := af.version([]byte{0, 0, 2}); v != 0 {
			t.Errorf("%v: version of a short header = %d", af, v)
		}
	}
	// The family is a 32-bit big-endian number: 30 is not 30<<24.
	if v := (afNumbers{2, 30}).version([]byte{30, 0, 0, 0}); v != 0 {
		t.Errorf("little-endian header read as IPv%d", v)
	}
}

func TestCheckNonLinux(t *testing.T) {
	t.Parallel()
	one := uint32(1)
	for _, ok := range []Config{
		{}, {Name: "utun3", MTU: 1420}, {Mode: ModeTAP, MAC: []byte{2, 0, 0, 0, 0, 1}},
		{NoOffload: true, Exclusive: true}, {Queues: 1},
	} {
		if err := checkNonLinux(&ok, "darwin"); err != nil {
			t.Errorf("checkNonLinux(%+v) = %v, want nil", ok, err)
		}
	}
	for _, c := range []Config{
		{Queues: 2}, {MultiQueue: true}, {PacketInfo: true}, {Persist: true}, {Owner: &one}, {Group: &one},
		{CarrierOff: true}, {SendBuffer: 1 << 20}, {NetNS: "blue"}, {MAC: []byte{2, 0, 0, 0, 0, 1}},
	} {
		err := checkNonLinux(&c, "freebsd")
		var ne *NotSupportedError
		if !errors.As(err, &ne) || ne.OS != "freebsd" || ne.Feature == "" || !errors.Is(err, ErrNotSupported) {
			t.Errorf("checkNonLinux(%+v) = %v, want a NotSupportedError for freebsd", c, err)
		}
	}
	for _, c := range []Config{{Queues: -1}, {Queues: MaxQueues + 1}, {Mode: 7}, {Mode: ModeTAP, MAC: []byte{1, 2}}} {
		var oe *OpError
		if err := checkNonLinux(&c, "darwin"); !errors.As(err, &oe) {
			t.Errorf("checkNonLinux(%+v) = %v, want an OpError", c, err)
		}
	}
}

func TestUtunUnit(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]uint32{"": 0, "utun": 0, "utun%d": 0, "utun0": 1, "utun7": 8, "utun123": 124} {
		if got, err := utunUnit(name); err != nil || got != want {
			t.Errorf("utunUnit(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"tun0", "utun-1", "utun01", "utunx", "utun1x", "wg0", "utun99999999999", "UTUN1"} {
		if _, err := utunUnit(name); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("utunUnit(%q) = %v, want EINVAL", name, err)
		}
	}
}

func TestBSDNamePattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    Mode
		pattern string
		keep    bool
		bad     bool
	}{
		{"", ModeTUN, "", true, false},
		{"tun%d", ModeTUN, "", true, false},
		{"tap%d", ModeTAP, "", true, false},
		{"tap%d", ModeTUN, "tap%d", false, false}, // a TUN device named like a tap
		{"wg0", ModeTUN, "wg0", false, false},
		{"fwa%d", ModeTUN, "fwa%d", false, false},
		{"a%d%d", ModeTUN, "", false, true},
		{"a%s", ModeTUN, "", false, true},
		{"%d", ModeTUN, "", false, true},
		{"much-too-long-name", ModeTUN, "", false, true},
		{"a/b", ModeTAP, "", false, true},
	}
	for _, tt := range tests {
		pattern, keep, err := bsdNamePattern(tt.name, tt.mode)
		if (err != nil) != tt.bad || pattern != tt.pattern || keep != tt.keep {
			t.Errorf("bsdNamePattern(%q, %v) = %q, %v, %v; want %q, %v, error %v", tt.name, tt.mode, pattern, keep, err, tt.pattern, tt.keep, tt.bad)
		}
	}
	if s, ok := expandName("fwa%d", 12); s != "fwa12" || !ok {
		t.Errorf("expandName(fwa%%d, 12) = %q, %v", s, ok)
	}
	if s, ok := expandName("wg0", 3); s != "wg0" || !ok {
		t.Errorf("expandName(wg0, 3) = %q, %v", s, ok)
	}
	if _, ok := expandName("abcdefghijklm%d", 100); ok {
		t.Error("expandName to 16 bytes succeeded")
	}
}
