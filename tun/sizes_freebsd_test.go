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

// bsdIoc is the BSD kernels' _IOC(inout, group, num, len) (sys/ioccom.h).
func bsdIoc(inout uint32, group byte, num uint32, size uintptr) uint32 {
	return inout | uint32(size&0x1fff)<<16 | uint32(group)<<8 | num
}

// TestIoctlNumbers recomputes the tun(4) and ND6 ioctl numbers from their
// definitions in net/if_tun.h, net/if_tap.h and netinet6/in6_var.h.
func TestIoctlNumbers(t *testing.T) {
	const iocVoid, iocOut, iocIn = 0x20000000, 0x40000000, 0x80000000
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"TUNSIFHEAD _IOW('t', 96, int)", tunSIFHEAD, bsdIoc(iocIn, 't', 96, 4)},
		{"TUNSIFMODE _IOW('t', 94, int)", tunSIFMODE, bsdIoc(iocIn, 't', 94, 4)},
		{"TUNGIFNAME _IOR('t', 93, struct ifreq)", tunGIFNAME, bsdIoc(iocOut, 't', 93, unsafe.Sizeof(ifreq{}))},
		{"TUNSIFPID _IO('t', 95)", tunSIFPID, bsdIoc(iocVoid, 't', 95, 0)},
		{"SIOCGIFINFO_IN6 _IOWR('i', 108, struct in6_ndireq)", siocGIFINFOIN6, bsdIoc(iocIn|iocOut, 'i', 108, unsafe.Sizeof(in6Ndireq{}))},
		{"SIOCSIFINFO_IN6 _IOWR('i', 109, struct in6_ndireq)", siocSIFINFOIN6, bsdIoc(iocIn|iocOut, 'i', 109, unsafe.Sizeof(in6Ndireq{}))},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// struct nd_ifinfo (netinet6/nd6.h): six u_int32_t, an int, two
	// u_int8_t, three u_int8_t[8]; flags at offset 20 of it.
	if off := unsafe.Offsetof(in6Ndireq{}.flags); off != 16+20 {
		t.Errorf("offsetof(ndi.flags) = %d, want 36", off)
	}
	if off := unsafe.Offsetof(in6Ndireq{}.randomid); off != 16+46 {
		t.Errorf("offsetof(ndi.randomid) = %d, want 62", off)
	}
}
