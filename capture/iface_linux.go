package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
)

// snapLen is the most of a packet an InterfaceSource keeps, as libpcap: a
// packet socket hands over GSO super-packets far larger than the MTU.
const snapLen = 262144

// InterfaceSource watches an existing interface through an AF_PACKET socket
// bound to it: every packet the interface receives (DirIn) or sends (DirOut).
type InterfaceSource struct {
	name   string
	index  int
	hatype uint16 // the interface's ARPHRD_* type
	lt     layers.LinkType
	file   *os.File
	rc     syscall.RawConn
	closed atomic.Bool
	buf    []byte
	oob    []byte
}

// OpenInterface opens an AF_PACKET socket on the interface name, in the
// network namespace netns ("" for the caller's own, a name made by ip netns
// add, or a path). It needs CAP_NET_RAW.
//
// The link type follows the interface's hardware type: Ethernet for
// Ethernet-like interfaces (TAP, veth, bridges, loopback), raw IP for
// interfaces without a link-layer header (TUN, WireGuard, IP tunnels, PPP),
// and Linux cooked capture for the rest.
//
// When the namespace has no interface called name, the error wraps
// unix.ENODEV (test it with errors.Is), as the kernel's own answer to a
// missing interface.
func OpenInterface(name, netns string) (*InterfaceSource, error) {
	var s *InterfaceSource
	err := inns.Do(netns, func() error {
		var err error
		s, err = openInterface(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openInterface(name string) (*InterfaceSource, error) {
	ifi, err := interfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("capture: interface %s: %w", name, err)
	}
	fd, hatype, err := packetSocket(ifi.Index, unix.SOCK_RAW)
	if err != nil {
		return nil, fmt.Errorf("capture: interface %s: %w", name, err)
	}
	lt, known := linkTypeOf(hatype)
	if !known {
		// A header we cannot describe in pcapng: let the kernel strip it
		// and describe the packet in a cooked header of our own.
		unix.Close(fd)
		if fd, _, err = packetSocket(ifi.Index, unix.SOCK_DGRAM); err != nil {
			return nil, fmt.Errorf("capture: interface %s: %w", name, err)
		}
	}
	file := os.NewFile(uintptr(fd), "packet:"+name) // non-blocking: uses the poller
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("capture: interface %s: %w", name, err)
	}
	return &InterfaceSource{
		name:   name,
		index:  ifi.Index,
		hatype: hatype,
		lt:     lt,
		file:   file,
		rc:     rc,
		buf:    make([]byte, snapLen),
		oob:    make([]byte, 256),
	}, nil
}

// interfaceByName is net.InterfaceByName with an error that says when the
// interface is missing: unix.ENODEV (net's own is unexported).
func interfaceByName(name string) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for i := range ifs {
		if ifs[i].Name == name {
			return &ifs[i], nil
		}
	}
	return nil, unix.ENODEV
}

// packetSocket opens a packet socket of type typ (SOCK_RAW or SOCK_DGRAM)
// that sees every protocol on interface index only, and returns it with the
// interface's ARPHRD_* type.
func packetSocket(index, typ int) (fd int, hatype uint16, err error) {
	// Protocol 0 receives nothing until bind, so no packet of another
	// interface slips in between socket and bind.
	fd, err = unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("open packet socket: %w (needs CAP_NET_RAW: run as root)", err)
		} else {
			err = fmt.Errorf("open packet socket: %w", err)
		}
		return -1, 0, err
	}
	// Options whose failure only costs precision: kernel timestamps, VLAN
	// tags, a larger receive buffer for bursts.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind packet socket: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("packet socket name: %w", err)
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("packet socket name: unexpected %T", sa)
	}
	return fd, ll.Hatype, nil
}

// linkTypeOf maps an ARPHRD_* hardware type to the link type of what a
// SOCK_RAW packet socket reads from such an interface; known is false when
// that header has no pcapng link type here.
func linkTypeOf(hatype uint16) (lt layers.LinkType, known bool) {
	switch hatype {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return layers.LinkTypeEthernet, true
	case unix.ARPHRD_NONE, unix.ARPHRD_RAWIP, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_PPP:
		return layers.LinkTypeRaw, true
	}
	return layers.LinkTypeLinuxSLL, false
}

// Name returns the interface name.
func (s *InterfaceSource) Name() string { return s.name }

// Index returns the interface index, in the interface's namespace.
func (s *InterfaceSource) Index() int { return s.index }

// LinkType returns the link type of the packets read (see OpenInterface).
func (s *InterfaceSource) LinkType() layers.LinkType { return s.lt }

// ReadPacket returns the next packet the interface receives or sends.
func (s *InterfaceSource) ReadPacket() (Packet, error) {
	for {
		p, ok, err := s.read()
		if err != nil || ok {
			return p, err
		}
	}
}

// read reads one packet; ok is false for a packet to skip.
func (s *InterfaceSource) read() (p Packet, ok bool, err error) {
	var (
		n, oobn int
		from    unix.Sockaddr
		rerr    error
	)
	err = s.rc.Read(func(fd uintptr) bool {
		// MSG_TRUNC: n is the packet's full length even when it did not fit.
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), s.buf, s.oob, unix.MSG_TRUNC)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if s.closed.Load() || errors.Is(err, os.ErrClosed) {
			err = os.ErrClosed
		} else if errors.Is(err, unix.ENETDOWN) {
			err = fmt.Errorf("%w (the interface went down)", err)
		}
		return Packet{}, false, fmt.Errorf("capture: read %s: %w", s.name, err)
	}
	ll, _ := from.(*unix.SockaddrLinklayer)
	if ll == nil {
		return Packet{}, false, nil
	}
	p = Packet{Length: n, Direction: DirIn}
	switch {
	case s.hatype == unix.ARPHRD_LOOPBACK:
		// Loopback shows every packet twice, going out and coming in; keep
		// one copy, as libpcap does. Its direction means nothing.
		if ll.Pkttype == unix.PACKET_OUTGOING {
			return Packet{}, false, nil
		}
		p.Direction = DirUnknown
	case ll.Pkttype == unix.PACKET_OUTGOING:
		p.Direction = DirOut
	}
	data := s.buf[:min(n, len(s.buf))]
	var aux *unix.TpacketAuxdata
	p.Timestamp, aux = parseControl(s.oob[:oobn])
	switch {
	case s.lt == layers.LinkTypeLinuxSLL:
		hdr := cookedHeader(ll)
		p.Data = append(hdr, data...)
		p.Length += len(hdr)
	case s.lt == layers.LinkTypeEthernet && aux != nil && aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && len(data) >= 12:
		// The kernel (or the NIC) took the 802.1Q tag off; put it back.
		tpid := uint16(layers.EthernetTypeDot1Q)
		if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
			tpid = aux.Vlan_tpid
		}
		tag := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tpid), aux.Vlan_tci)
		p.Data = append(append(append(make([]byte, 0, len(data)+4), data[:12]...), tag...), data[12:]...)
		p.Length += 4
	default:
		p.Data = append([]byte(nil), data...)
	}
	if p.Timestamp.IsZero() {
		p.Timestamp = time.Now()
	}
	return p, true, nil
}

// parseControl finds the kernel's receive timestamp and the packet's
// auxiliary data in the control messages of a recvmsg.
func parseControl(oob []byte) (ts time.Time, aux *unix.TpacketAuxdata) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, nil
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			t := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			ts = time.Unix(int64(t.Sec), int64(t.Nsec))
		case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA &&
			len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			a := *(*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			aux = &a
		}
	}
	return ts, aux
}

// cookedHeader builds the 16-byte LINKTYPE_LINUX_SLL header that describes
// a packet read from a SOCK_DGRAM packet socket.
func cookedHeader(ll *unix.SockaddrLinklayer) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:], uint16(ll.Pkttype))
	binary.BigEndian.PutUint16(h[2:], ll.Hatype)
	halen := min(int(ll.Halen), 8)
	binary.BigEndian.PutUint16(h[4:], uint16(halen))
	copy(h[6:6+halen], ll.Addr[:halen])
	// The protocol is in network byte order already, as the kernel gave it.
	binary.NativeEndian.PutUint16(h[14:], ll.Protocol)
	return h
}

// htons converts a 16-bit value to network byte order, for sockaddr_ll.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// Close closes the socket; a blocked ReadPacket returns an error matching
// os.ErrClosed.
func (s *InterfaceSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.file.Close()
}
