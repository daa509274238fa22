//go:build darwin || freebsd || linux

package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testAF are macOS's family numbers, whatever the system running the test.
var testAF = afNumbers{inet: 2, inet6: 30}

// kernelPair returns a pktFile over one end of a datagram socket pair and
// the other end, which plays the kernel: one datagram per packet, each with
// the address-family header when hdr is afHeaderLen.
func kernelPair(t *testing.T, hdr int) (*pktFile, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := newPktFile(fds[0], "pair", "test0", hdr)
	if err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		t.Fatal(err)
	}
	pf.af = testAF
	t.Cleanup(func() {
		pf.close()
		unix.Close(fds[1])
	})
	return pf, fds[1]
}

func v4packet(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	for i := 1; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

func v6packet(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	for i := 1; i < n; i++ {
		p[i] = byte(3 * i)
	}
	return p
}

// kernelSend writes pkt as the kernel would, behind the header for af.
func kernelSend(t *testing.T, fd int, af uint32, pkt []byte) {
	t.Helper()
	d := binary.BigEndian.AppendUint32(nil, af)
	if _, err := unix.Write(fd, append(d, pkt...)); err != nil {
		t.Fatal(err)
	}
}

func makeBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// TestPktFileReadStripsHeader reads queued packets in one batch, with the
// header in the headroom and, for offsets below 4, through a copy.
func TestPktFileReadStripsHeader(t *testing.T) {
	t.Parallel()
	for _, offset := range []int{Headroom, afHeaderLen, 2, 0} {
		pf, k := kernelPair(t, afHeaderLen)
		want := [][]byte{v4packet(60), v6packet(1280), v4packet(20)}
		kernelSend(t, k, testAF.inet, want[0])
		kernelSend(t, k, testAF.inet6, want[1])
		kernelSend(t, k, testAF.inet, want[2])
		bufs, sizes := makeBufs(8, offset+1500)
		n, err := pf.readBatch(bufs, sizes, offset)
		if err != nil || n != len(want) {
			t.Fatalf("offset %d: readBatch = %d, %v; want %d packets", offset, n, err, len(want))
		}
		for i := range n {
			if got := bufs[i][offset : offset+sizes[i]]; !bytes.Equal(got, want[i]) {
				t.Errorf("offset %d: packet %d = % x..., want % x...", offset, i, got[:4], want[i][:4])
			}
		}
		if offset >= afHeaderLen {
			if v := testAF.version(bufs[1][offset-afHeaderLen:]); v != 6 {
				t.Errorf("offset %d: header in the headroom names IPv%d, want 6", offset, v)
			}
		}
	}
}

// TestPktFileReadOne reads single packets, truncated to the buffer as the
// kernel does, and skips datagrams too short for a header.
func TestPktFileReadOne(t *testing.T) {
	t.Parallel()
	pf, k := kernelPair(t, afHeaderLen)
	if _, err := unix.Write(k, []byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	want := v6packet(100)
	kernelSend(t, k, testAF.inet6, want)
	kernelSend(t, k, testAF.inet, v4packet(100))
	p := make([]byte, 200)
	n, err := pf.read(p)
	if err != nil || !bytes.Equal(p[:n], want) {
		t.Fatalf("read = %d, %v, % x...; want the IPv6 packet", n, err, p[:min(n, 4)])
	}
	short := make([]byte, 10)
	n, err = pf.read(short)
	if err != nil || n != 10 || short[0] != 0x45 {
		t.Fatalf("read into 10 bytes = %d, %v; want 10 bytes of the IPv4 packet", n, err)
	}
	// An empty read is a device gone, not a packet to skip forever.
	if _, err := unix.Write(k, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := pf.read(p); n != 0 || !errors.Is(err, ErrDeviceRemoved) {
		t.Errorf("read of an empty datagram = %d, %v; want ErrDeviceRemoved", n, err)
	}
}

// TestPktFileWriteAddsHeader writes a batch with a packet that is not IP in
// the middle: it is dropped and reported, the others are written with the
// header of their family.
func TestPktFileWriteAddsHeader(t *testing.T) {
	t.Parallel()
	for _, offset := range []int{Headroom, afHeaderLen, 1, 0} {
		pf, k := kernelPair(t, afHeaderLen)
		pkts := [][]byte{v4packet(40), {0x10, 1, 2}, v6packet(60), {}}
		bufs := make([][]byte, len(pkts))
		for i, p := range pkts {
			bufs[i] = append(make([]byte, offset), p...)
		}
		n, err := pf.writeBatch(bufs, offset)
		var pe *PacketError
		if n != 2 || !errors.As(err, &pe) || pe.Index != 1 || pe.Dropped != 2 || !errors.Is(err, unix.EAFNOSUPPORT) {
			t.Fatalf("offset %d: writeBatch = %d, %v; want 2 and a PacketError for index 1, 2 dropped", offset, n, err)
		}
		for _, want := range []struct {
			af  uint32
			pkt []byte
		}{{testAF.inet, pkts[0]}, {testAF.inet6, pkts[2]}} {
			got := make([]byte, 2000)
			m, err := unix.Read(k, got)
			if err != nil {
				t.Fatal(err)
			}
			exp := append(binary.BigEndian.AppendUint32(nil, want.af), want.pkt...)
			if !bytes.Equal(got[:m], exp) {
				t.Errorf("offset %d: kernel got % x..., want % x...", offset, got[:8], exp[:8])
			}
		}
	}
	pf, _ := kernelPair(t, afHeaderLen)
	n, err := pf.write([]byte{0x20, 0, 0, 0})
	var oe *OpError
	if n != 0 || !errors.As(err, &oe) || !errors.Is(err, unix.EAFNOSUPPORT) {
		t.Errorf("write of a non-IP packet = %d, %v; want 0 and an OpError wrapping EAFNOSUPPORT", n, err)
	}
}

// TestPktFileNoHeader moves frames as they are when there is no header (TAP).
func TestPktFileNoHeader(t *testing.T) {
	t.Parallel()
	pf, k := kernelPair(t, 0)
	frame := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0xaa}
	if n, err := pf.write(frame); n != len(frame) || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	got := make([]byte, 100)
	m, err := unix.Read(k, got)
	if err != nil || !bytes.Equal(got[:m], frame) {
		t.Fatalf("kernel got % x, %v; want % x", got[:m], err, frame)
	}
	if _, err := unix.Write(k, frame); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(4, Headroom+100)
	n, err := pf.readBatch(bufs, sizes, Headroom)
	if n != 1 || err != nil || !bytes.Equal(bufs[0][Headroom:Headroom+sizes[0]], frame) {
		t.Fatalf("readBatch = %d, %v; want the frame", n, err)
	}
}

// TestPktFileCloseUnblocks closes the file under a blocked batch read.
func TestPktFileCloseUnblocks(t *testing.T) {
	t.Parallel()
	pf, _ := kernelPair(t, afHeaderLen)
	done := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(4, Headroom+1500)
		_, err := pf.readBatch(bufs, sizes, Headroom)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if first, err := pf.close(); !first || err != nil {
		t.Fatalf("close = %v, %v", first, err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked readBatch returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not unblock readBatch")
	}
	if first, err := pf.close(); first || err != nil {
		t.Errorf("second close = %v, %v; want false, nil", first, err)
	}
	if _, err := pf.write(v4packet(20)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close = %v, want ErrClosed", err)
	}
}

// TestPktFileDeadline makes a blocked read time out.
func TestPktFileDeadline(t *testing.T) {
	t.Parallel()
	pf, _ := kernelPair(t, afHeaderLen)
	if err := pf.setReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := pf.read(make([]byte, 100))
	var oe *OpError
	if !errors.As(err, &oe) || !oe.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline = %v, want a timeout", err)
	}
}
