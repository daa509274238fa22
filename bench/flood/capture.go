//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/inns"
	"github.com/tapwire/tapwire/protocol"
)

// capture reads transport messages (with data: not keepalives) sent to UDP
// port on link iface of network namespace netns ("" for this one), until
// it has want of them, ctx ends or timeout passes. It returns what it
// found, an error only when it found none.
//
// A sender using UDP GSO hands the link one packet holding several
// datagrams of one size; the packet socket's virtio-net header gives that
// size, and the packet is split into its datagrams, as the receiver would.
func capture(ctx context.Context, netns, iface string, port uint16, want int, timeout time.Duration) ([][]byte, error) {
	var fd int
	err := inns.Do(netns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("PACKET_VNET_HDR: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind to %s: %w", iface, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("capture on %s in %q: %w", iface, netns, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("capture: SO_RCVTIMEO: %w", err)
	}
	var out [][]byte
	buf := make([]byte, 1<<17)
	for deadline := time.Now().Add(timeout); len(out) < want && time.Now().Before(deadline) && ctx.Err() == nil; {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return out, fmt.Errorf("capture: read: %w", err)
		}
		for _, msg := range splitCaptured(buf[:n], port) {
			if typ, ok := protocol.MessageType(msg); ok && typ == protocol.TypeTransport && len(msg) > protocol.TransportOverhead {
				out = append(out, append([]byte(nil), msg...))
			}
		}
	}
	if len(out) > want {
		out = out[:want]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("capture: no transport data to port %d on %s within %v", port, iface, timeout)
	}
	return out, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// vnetHdrLen is the size of struct virtio_net_hdr.
const vnetHdrLen = 10

// splitCaptured returns the UDP datagrams to port that one read of a
// SOCK_RAW packet socket with PACKET_VNET_HDR holds: a virtio-net header,
// then an Ethernet frame with an IPv4 or IPv6 packet. A packet of UDP
// segmentation offload (gso_type VIRTIO_NET_HDR_GSO_UDP_L4) is cut into
// datagrams of gso_size bytes (the last may be shorter).
func splitCaptured(p []byte, port uint16) [][]byte {
	if len(p) < vnetHdrLen+14 {
		return nil
	}
	gsoType := p[1]
	gsoSize := int(binary.LittleEndian.Uint16(p[4:6]))
	frame := p[vnetHdrLen:]
	ethType := binary.BigEndian.Uint16(frame[12:14])
	ip := frame[14:]
	var l4 []byte
	switch ethType {
	case unix.ETH_P_IP:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != unix.IPPROTO_UDP {
			return nil
		}
		ihl := int(ip[0]&15) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total < ihl || total > len(ip) || total == 0 {
			total = len(ip) // a GSO packet's total length may be 0 or stale
		}
		if len(ip) < ihl {
			return nil
		}
		l4 = ip[ihl:total]
	case unix.ETH_P_IPV6:
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != unix.IPPROTO_UDP {
			return nil // extension headers: not from a WireGuard sender
		}
		l4 = ip[40:]
	default:
		return nil
	}
	if len(l4) < 8 || binary.BigEndian.Uint16(l4[2:4]) != port {
		return nil
	}
	payload := l4[8:]
	if gsoType != unix.VIRTIO_NET_HDR_GSO_UDP_L4 || gsoSize == 0 || len(payload) <= gsoSize {
		return [][]byte{payload}
	}
	var out [][]byte
	for len(payload) > 0 {
		n := min(gsoSize, len(payload))
		out = append(out, payload[:n])
		payload = payload[n:]
	}
	return out
}
