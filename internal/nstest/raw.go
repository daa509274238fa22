//go:build linux

package nstest

import (
	"encoding/binary"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// RawSocket opens an AF_PACKET socket on link in the namespace, for sending
// (unix.Write) and receiving (ReadFrame) whole Ethernet frames. It is closed
// when the test ends; reads time out after 200 ms.
func (ns *NS) RawSocket(link string) int {
	ns.t.Helper()
	var fd int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_ALL)
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	})
	if err != nil {
		ns.t.Fatalf("raw socket on %s in %s: %v", link, ns.Name, err)
	}
	ns.t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	// The receive path moves an outer VLAN tag into metadata; ask for it.
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	return fd
}

// ReadFrame reads one frame from a RawSocket into buf and puts back the
// outer VLAN tag the kernel took off into metadata, as libpcap does. buf
// needs 4 bytes more than the largest frame.
func ReadFrame(fd int, buf []byte) (int, error) {
	oob := make([]byte, 128)
	n, oobn, _, _, err := unix.Recvmsg(fd, buf[4:], oob, 0)
	if err != nil {
		return 0, err
	}
	copy(buf, buf[4:4+min(n, 12)]) // MACs to the front, leaving room for a tag
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 {
			continue
		}
		status := binary.NativeEndian.Uint32(m.Data[0:])
		tci, tpid := binary.NativeEndian.Uint16(m.Data[16:]), binary.NativeEndian.Uint16(m.Data[18:])
		if status&unix.TP_STATUS_VLAN_VALID == 0 {
			break
		}
		if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 {
			tpid = 0x8100
		}
		binary.BigEndian.PutUint16(buf[12:], tpid)
		binary.BigEndian.PutUint16(buf[14:], tci)
		copy(buf[16:], buf[4+12:4+n]) // the rest, after the tag
		return n + 4, nil
	}
	copy(buf[12:], buf[4+12:4+n])
	return n, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
