package tun

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/packet"
)

// Offload flags of TUNSETOFFLOAD (include/uapi/linux/if_tun.h): what user
// space accepts on read.
const (
	tunFCsum = 0x01
	tunFTSO4 = 0x02
	tunFTSO6 = 0x04
	tunFUSO4 = 0x20
	tunFUSO6 = 0x40
)

const (
	vnetLen = packet.VirtioNetHdrLen
	// maxSegments bounds how many packets one super-packet may split into.
	maxSegments = 128
)

// Offloads says which of the kernel's offloads a device uses.
type Offloads struct {
	// VnetHdr: packets cross the descriptor with a virtio-net header, which
	// the package adds and removes; callers never see it.
	VnetHdr bool
	// Checksum: the kernel may hand over packets with a partial checksum,
	// which the package completes (TUN_F_CSUM).
	Checksum bool
	// TSO: the kernel may hand over TCP super-packets of up to 64 KiB, which
	// ReadBatch splits into packets that fit the MTU (TUN_F_TSO4, TSO6).
	TSO bool
	// USO: the same for UDP (TUN_F_USO4, USO6; Linux 6.2 and later).
	USO bool
	// CoalesceTCP: WriteBatch merges consecutive segments of a TCP flow
	// into super-packets that the kernel takes in one write.
	CoalesceTCP bool
	// CoalesceUDP: the same for UDP datagrams of one flow (needs USO).
	CoalesceUDP bool
}

// String lists the offloads in use, e.g. "csum tso uso gro-tcp gro-udp".
func (o Offloads) String() string {
	if !o.VnetHdr {
		return "off"
	}
	var s []string
	for _, f := range []struct {
		on   bool
		name string
	}{{o.Checksum, "csum"}, {o.TSO, "tso"}, {o.USO, "uso"}, {o.CoalesceTCP, "gro-tcp"}, {o.CoalesceUDP, "gro-udp"}} {
		if f.on {
			s = append(s, f.name)
		}
	}
	if len(s) == 0 {
		return "vnet-hdr only"
	}
	return strings.Join(s, " ")
}

// offloadWanted reports whether cfg asks for offloads: on unless NoOffload,
// TAPWIRE_OFFLOAD=off (or 0, false, no), or the packet information header
// (which the package does not combine with the virtio-net header).
func (cfg *Config) offloadWanted() bool {
	if cfg.NoOffload || cfg.PacketInfo {
		return false
	}
	switch strings.ToLower(os.Getenv("TAPWIRE_OFFLOAD")) {
	case "off", "0", "false", "no":
		return false
	}
	return true
}

// probeOffloads enables offloads step by step on a descriptor opened with
// IFF_VNET_HDR: checksum, then TCP segmentation, then UDP segmentation,
// keeping the largest set the kernel accepts (TUNSETOFFLOAD refuses flags it
// does not know with EINVAL).
func probeOffloads(fd int) Offloads {
	o := Offloads{VnetHdr: true}
	set := func(flags int) bool { return unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, flags) == nil }
	if !set(tunFCsum) {
		return o
	}
	o.Checksum = true
	if !set(tunFCsum | tunFTSO4 | tunFTSO6) {
		return o
	}
	o.TSO, o.CoalesceTCP = true, true
	if set(tunFCsum | tunFTSO4 | tunFTSO6 | tunFUSO4 | tunFUSO6) {
		o.USO, o.CoalesceUDP = true, true
	}
	return o
}

// offloadState is a device's offload set, shared by its queues. Coalescing
// can be switched off at run time when the kernel refuses a super-packet.
type offloadState struct {
	Offloads
	noCoalesce atomic.Bool
	trusted    atomic.Bool // TrustChecksums
	warned     atomic.Bool
	refuseGSO  bool // set by tests only: act as a kernel that refuses super-packets
}

// Offloads reports which offloads the device uses.
func (d *Device) Offloads() Offloads {
	if d.off == nil {
		return Offloads{}
	}
	o := d.off.Offloads
	if d.off.noCoalesce.Load() {
		o.CoalesceTCP, o.CoalesceUDP = false, false
	}
	return o
}

// TrustChecksums tells the device whether the TCP and UDP checksums of
// the packets written to it are known to be right, because they were
// authenticated on their way (a tunnel's AEAD): coalescing then merges
// them without verifying each first, as the kernel's WireGuard marks the
// packets it decrypts CHECKSUM_UNNECESSARY. What the AEAD cannot vouch
// for is the packet before its sender sealed it: a segment corrupted
// before it reached the sender (on a LAN bridged into a TAP device, say,
// and missed by the link's CRC) is merged under a fresh checksum, as with
// kernel WireGuard. Off by default; without offloads it changes nothing.
// Safe to call at any time.
func (d *Device) TrustChecksums(on bool) {
	if d.off != nil {
		d.off.trusted.Store(on)
	}
}

// vnetState is a queue's state for I/O with a virtio-net header.
type vnetState struct {
	vbuf []byte // read buffer for when a caller's buffer cannot take a super-packet

	// Segments split from a super-packet that did not fit the caller's
	// batch, handed out first by the next read (rspill, under the read
	// lock); and segments of a super-packet the kernel refused, written one
	// by one (wspill, under the write lock).
	rspill, wspill spillSet
	// lastSegs is how many segments the last packet read made (1 for a
	// plain one): a read stops before the next when fewer buffers are
	// left.
	lastSegs int

	co      packet.Coalescer
	toWrite []int
	zero    [vnetLen]byte // an all-zero header: a plain packet
	iov     [2]unix.Iovec // for writev of header + packet
	one     [1][]byte     // Read as a batch of one
	oneSize [1]int

	wvHdr, wvPkt []byte // writev arguments, for writevFunc
	wvErr        error
	writevFunc   func(uintptr) bool
	dropped      atomic.Uint64 // super-packets from the kernel that could not be split

	// Counted per super-packet, not per packet.
	splitPkts, splitSegs atomic.Uint64
	coalPkts, coalSegs   atomic.Uint64
	resent               atomic.Uint64
}

func newVnetState(q *Queue, l2Len int, o Offloads) *vnetState {
	v := &vnetState{
		vbuf:    make([]byte, vnetLen+MaxPacket),
		toWrite: make([]int, 0, DefaultBatchSize),
	}
	v.co.L2Len = l2Len
	v.co.UDP = o.CoalesceUDP
	v.writevFunc = q.writevFn
	return v
}

// spillSet holds the segments of one super-packet.
type spillSet struct {
	bufs  [][]byte
	sizes []int
	size  int // capacity of each buffer
	head  int // next segment to hand out
	n     int // segments held
}

// drain copies pending segments into bufs and returns how many.
func (s *spillSet) drain(bufs [][]byte, sizes []int, offset int) int {
	n := 0
	for n < len(bufs) && s.head < s.n {
		seg := s.bufs[s.head][:s.sizes[s.head]]
		sizes[n] = copy(bufs[n][offset:], seg) // truncated like the kernel would
		n++
		s.head++
	}
	return n
}

// split splits a super-packet into the set's buffers, which it (re)makes
// the first time and when segments get larger.
func (s *spillSet) split(pkt []byte, hdr packet.VirtioNetHdr, l2Len int) error {
	need := min(len(pkt), int(hdr.GSOSize)+l2Len+18+60+60) // link, IP and transport headers at most
	if s.bufs == nil || need > s.size {
		size := max(need, 2048, s.size)
		slab := make([]byte, size*maxSegments)
		s.bufs, s.sizes = make([][]byte, maxSegments), make([]int, maxSegments)
		for i := range s.bufs {
			s.bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		}
		s.size = size
	}
	n, err := packet.SplitGSO(pkt, hdr, l2Len, s.bufs, s.sizes, 0)
	if err != nil {
		s.head, s.n = 0, 0
		return err
	}
	s.head, s.n = 0, n
	return nil
}

// readVnetFn is readBatchFn for a descriptor with a virtio-net header. It
// reads straight into the caller's buffer when it can hold a super-packet
// (so plain packets cost no copy), else into vbuf, and splits super-packets
// into the caller's buffers, the rest into the spill buffers.
func (q *Queue) readVnetFn(fd uintptr) bool {
	v := q.vnet
	for q.rn < len(q.rbufs) {
		if q.rn > 0 && len(q.rbufs)-q.rn < v.lastSegs {
			// The next super-packet is likely to be as long as the last,
			// which would not fit: it goes to the next batch whole rather
			// than through the spill buffers (a second copy of what does
			// not fit).
			return true
		}
		b := q.rbufs[q.rn]
		direct := q.roffset >= vnetLen && len(b)-q.roffset >= MaxPacket
		raw := v.vbuf
		if direct {
			raw = b[q.roffset-vnetLen:]
		}
		n, err := unix.Read(int(fd), raw)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return q.rn > 0
		default:
			q.rerr = err
			return true
		}
		var hdr packet.VirtioNetHdr
		if n < vnetLen || hdr.Decode(raw[:vnetLen]) != nil {
			v.dropped.Add(1)
			continue
		}
		pkt := raw[vnetLen:n]
		if hdr.GSOType == packet.GSONone && hdr.Flags&packet.VirtioNetHdrFNeedsCsum == 0 {
			if direct {
				q.rsizes[q.rn] = len(pkt)
			} else {
				q.rsizes[q.rn] = copy(b[q.roffset:], pkt)
			}
			q.rn++
			v.lastSegs = 1 // what comes next need not be a super-packet
			continue
		}
		segs, err := packet.SplitGSO(pkt, hdr, q.dev.l2Len(), q.rbufs[q.rn:], q.rsizes[q.rn:], q.roffset)
		if err == nil {
			q.rn += segs
			v.lastSegs = segs
			if hdr.GSOType != packet.GSONone {
				v.splitPkts.Add(1)
				v.splitSegs.Add(uint64(segs))
			}
			continue
		}
		// Not enough room in this batch (or a buffer too small): split into
		// the spill buffers and hand out what fits now.
		if errors.Is(err, packet.ErrTooManySegments) || errors.Is(err, packet.ErrShortBuffer) {
			if err = v.rspill.split(pkt, hdr, q.dev.l2Len()); err == nil {
				v.lastSegs = v.rspill.n
				v.splitPkts.Add(1)
				v.splitSegs.Add(uint64(v.rspill.n))
				q.rn += v.rspill.drain(q.rbufs[q.rn:], q.rsizes[q.rn:], q.roffset)
				return true
			}
		}
		v.dropped.Add(1) // a super-packet we cannot make sense of
		v.lastSegs = 1
	}
	return true
}

// writeVnetBatch writes a batch with virtio-net headers, coalescing where it
// may. It runs with q.wmu held.
func (q *Queue) writeVnetBatch(bufs [][]byte, offset int) (int, error) {
	v := q.vnet
	if offset < vnetLen {
		// No room for the header in front: write each packet with writev.
		// As in the other paths, a packet the kernel refuses alone is
		// dropped and reported, and the rest are written.
		written, dropped, first := 0, 0, -1
		var ferr error
		for i, b := range bufs {
			err := q.writev(v.zero[:], b[offset:])
			if err == nil {
				written++
				continue
			}
			if isPacketErrno(err) {
				if dropped == 0 {
					first, ferr = i, err
				}
				dropped++
				continue
			}
			return written, err
		}
		if dropped > 0 {
			return written, &PacketError{Index: first, Dropped: dropped, Err: ferr}
		}
		return written, nil
	}
	v.toWrite = v.toWrite[:0]
	if !q.dev.off.noCoalesce.Load() && (q.dev.off.CoalesceTCP || q.dev.off.CoalesceUDP) {
		v.co.Trusted = q.dev.off.trusted.Load()
		v.toWrite = v.co.Coalesce(bufs, offset, v.toWrite)
	} else {
		for i, b := range bufs {
			clear(b[offset-vnetLen : offset])
			v.toWrite = append(v.toWrite, i)
		}
	}
	q.wbufs, q.woffset, q.wn, q.wdropped, q.wfirst, q.werr = bufs, offset, 0, 0, -1, nil
	err := q.rc.Write(q.writeFunc)
	if q.werr != nil {
		err = q.werr
	}
	written, dropped, first, ferr := q.wsegs, q.wdropped, q.wfirst, q.wfirstErr
	q.wbufs, q.werr, q.wfirstErr, q.wsegs = nil, nil, nil, 0
	if err != nil {
		return written, q.mapErr("write", err)
	}
	if dropped > 0 {
		return written, &PacketError{Index: first, Dropped: dropped, Err: ferr}
	}
	return written, nil
}

// writeVnetFn writes the packets listed in toWrite, each from its header.
func (q *Queue) writeVnetFn(fd uintptr) bool {
	v := q.vnet
	for q.wn < len(v.toWrite) {
		i := v.toWrite[q.wn]
		b := q.wbufs[i][q.woffset-vnetLen:]
		var err error
		if q.dev.off.refuseGSO && b[1] != packet.GSONone {
			err = unix.EINVAL // a test standing in for a kernel that refuses super-packets
		} else {
			_, err = unix.Write(int(fd), b)
		}
		switch err {
		case nil:
			segs := segments(b)
			if b[1] != packet.GSONone {
				v.coalPkts.Add(1)
				v.coalSegs.Add(uint64(segs))
			}
			q.wsegs += segs
			q.wn++
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		case unix.EINVAL, unix.EMSGSIZE, unix.EFAULT, unix.ENOMEM, unix.ENOBUFS, unix.EIO:
			if b[1] != packet.GSONone && err == unix.EINVAL {
				// The kernel refused a super-packet (known on some 6.6
				// kernels): stop coalescing, and send its segments one by one.
				q.disableCoalescing(err)
				if q.writeSegments(fd, b) {
					segs := segments(b)
					v.resent.Add(uint64(segs))
					q.wsegs += segs
					q.wn++
					continue
				}
			}
			if q.wdropped == 0 {
				q.wfirst, q.wfirstErr = i, err
			}
			q.wdropped += segments(b)
			q.wn++
		default:
			q.werr = err
			return true
		}
	}
	return true
}

// isPacketErrno reports whether err is the kernel refusing one packet
// (rather than the queue failing).
func isPacketErrno(err error) bool {
	for _, e := range []error{unix.EINVAL, unix.EMSGSIZE, unix.EFAULT, unix.ENOMEM, unix.ENOBUFS, unix.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// segments returns how many packets a header-prefixed packet stands for.
func segments(b []byte) int {
	var hdr packet.VirtioNetHdr
	if hdr.Decode(b) != nil || hdr.GSOType == packet.GSONone || hdr.GSOSize == 0 {
		return 1
	}
	payload := len(b) - vnetLen - int(hdr.HdrLen)
	if payload <= 0 {
		return 1
	}
	return (payload + int(hdr.GSOSize) - 1) / int(hdr.GSOSize)
}

// writeSegments splits a refused super-packet and writes its segments as
// plain packets. It reports whether all were written.
func (q *Queue) writeSegments(fd uintptr, b []byte) bool {
	v := q.vnet
	var hdr packet.VirtioNetHdr
	if hdr.Decode(b) != nil {
		return false
	}
	if err := v.wspill.split(b[vnetLen:], hdr, q.dev.l2Len()); err != nil {
		return false
	}
	ok := true
	for ws := &v.wspill; ws.head < ws.n; ws.head++ {
		seg := ws.bufs[ws.head][:ws.sizes[ws.head]]
		var err error
		// This is the rare fallback path: wait out a full send buffer
		// briefly rather than lose segments.
		for try := 0; try < 100; try++ {
			if err = q.writevFD(int(fd), v.zero[:], seg); err != unix.EAGAIN {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err != nil {
			ok = false
		}
	}
	return ok
}

func (q *Queue) disableCoalescing(err error) {
	off := q.dev.off
	off.noCoalesce.Store(true)
	if !off.warned.Swap(true) {
		slog.Warn("tun: the kernel refused a coalesced packet; writing packets one by one from now on",
			"dev", q.dev.name, "err", err)
	}
}

// writev writes a header and a packet in one system call, through the
// poller (used with q.wmu held).
func (q *Queue) writev(hdr, pkt []byte) error {
	v := q.vnet
	v.wvHdr, v.wvPkt, v.wvErr = hdr, pkt, nil
	err := q.rc.Write(v.writevFunc)
	if err == nil {
		err = v.wvErr
	}
	v.wvHdr, v.wvPkt, v.wvErr = nil, nil, nil
	if err != nil {
		return q.mapErr("write", err)
	}
	return nil
}

func (q *Queue) writevFn(fd uintptr) bool {
	v := q.vnet
	v.wvErr = q.writevFD(int(fd), v.wvHdr, v.wvPkt)
	return v.wvErr != unix.EAGAIN
}

func (q *Queue) writevFD(fd int, hdr, pkt []byte) error {
	v := q.vnet
	v.iov[0].Base, v.iov[0].Len = &hdr[0], uint64(len(hdr))
	v.iov[1].Len = uint64(len(pkt))
	if len(pkt) > 0 {
		v.iov[1].Base = &pkt[0]
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v.iov[0])), 2)
		if errno == unix.EINTR {
			continue
		}
		v.iov[0].Base, v.iov[1].Base = nil, nil // keep no reference to the caller's buffer
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// OffloadStats counts the work of the offloads on a device, over its open
// queues.
type OffloadStats struct {
	SuperPacketsRead    uint64 // super-packets the kernel handed over
	SegmentsSplit       uint64 // packets ReadBatch made of them
	SuperPacketsWritten uint64 // coalesced super-packets the kernel took
	SegmentsCoalesced   uint64 // packets WriteBatch merged into them
	ReadDropped         uint64 // super-packets that could not be split (malformed)
	Resent              uint64 // packets re-sent one by one after the kernel refused their super-packet
}

// OffloadStats returns the device's offload counters.
func (d *Device) OffloadStats() OffloadStats {
	var st OffloadStats
	for _, q := range d.Queues() {
		if v := q.vnet; v != nil {
			st.SuperPacketsRead += v.splitPkts.Load()
			st.SegmentsSplit += v.splitSegs.Load()
			st.SuperPacketsWritten += v.coalPkts.Load()
			st.SegmentsCoalesced += v.coalSegs.Load()
			st.ReadDropped += v.dropped.Load()
			st.Resent += v.resent.Load()
		}
	}
	return st
}
