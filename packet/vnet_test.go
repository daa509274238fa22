package packet

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestVirtioNetHdrEncodeDecode(t *testing.T) {
	h := VirtioNetHdr{
		Flags:      VirtioNetHdrFNeedsCsum,
		GSOType:    GSOTCPv4 | GSOECN,
		HdrLen:     0x1234,
		GSOSize:    1448,
		CsumStart:  34,
		CsumOffset: 16,
	}
	b := make([]byte, VirtioNetHdrLen+3)
	for i := range b {
		b[i] = 0xee
	}
	h.Encode(b)
	if b[VirtioNetHdrLen] != 0xee {
		t.Fatal("Encode wrote past VirtioNetHdrLen bytes")
	}
	// struct virtio_net_hdr: u8 flags, u8 gso_type, then four u16 in
	// host byte order.
	want := []byte{1, 0x81, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.NativeEndian.PutUint16(want[2:], 0x1234)
	binary.NativeEndian.PutUint16(want[4:], 1448)
	binary.NativeEndian.PutUint16(want[6:], 34)
	binary.NativeEndian.PutUint16(want[8:], 16)
	if string(b[:VirtioNetHdrLen]) != string(want) {
		t.Fatalf("Encode = % x, want % x", b[:VirtioNetHdrLen], want)
	}
	if isLittleEndian() && (b[4] != 0xa8 || b[5] != 0x05) {
		t.Fatalf("GSOSize not little-endian on a little-endian host: % x", b[4:6])
	}
	var g VirtioNetHdr
	if err := g.Decode(b); err != nil {
		t.Fatal(err)
	}
	if g != h {
		t.Fatalf("Decode = %+v, want %+v", g, h)
	}
	if err := g.Decode(b[:VirtioNetHdrLen-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Decode of 9 bytes: %v, want ErrTruncated", err)
	}
	if err := g.Decode(nil); err == nil {
		t.Fatal("Decode(nil) succeeded")
	}
}

func TestVirtioNetHdrEncodePanicsOnShortBuffer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	var h VirtioNetHdr
	h.Encode(make([]byte, VirtioNetHdrLen-1))
}

func isLittleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

func TestOffloadErrorsWrapSentinels(t *testing.T) {
	for _, e := range []error{errVnetHdrShort, errIPv6ExtHdr, errNoOutputs, errOutputTooShort, errGSOSizeZero} {
		if e.Error() == "" || errors.Unwrap(e) == nil {
			t.Errorf("%v does not wrap a sentinel", e)
		}
	}
	if !errors.Is(errNoOutputs, ErrTooManySegments) || !errors.Is(errOutputTooShort, ErrShortBuffer) ||
		!errors.Is(errIPv6ExtHdr, ErrUnsupported) || errors.Is(errIPv6ExtHdr, ErrMalformed) {
		t.Error("wrong sentinel")
	}
}
