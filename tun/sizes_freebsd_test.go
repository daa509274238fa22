package tun

import (
	"testing"
	"unsafe"
)

// TestStructSizes checks the kernel structures against the sizes their ioctl
// numbers encode.
func TestStructSizes(t *testing.T) {
	for _, s := range []struct {
		name      string
		got, want uintptr
	}{
		{"ifreq", unsafe.Sizeof(ifreq{}), 32},
		{"ifreqPtr", unsafe.Sizeof(ifreqPtr{}), 32},
		{"in6_ndireq", unsafe.Sizeof(in6Ndireq{}), siocGIFINFOIN6 >> 16 & 0x1fff},
	} {
		if s.got != s.want {
			t.Errorf("sizeof(%s) = %d, want %d", s.name, s.got, s.want)
		}
	}
}
