//go:build linux

package capture

import (
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Direction is which way a packet crossed the interface, as the interface
// sees it.
type Direction uint8

const (
	// DirUnknown: the source does not say.
	DirUnknown Direction = iota
	// DirIn: received by the interface, going up into the host's stack (for
	// a TUN or TAP device: written into it by the program holding it).
	DirIn
	// DirOut: sent by the host through the interface, towards the wire (for
	// a TUN or TAP device: to be read by the program holding it).
	DirOut
)

// String returns "In", "Out" or "".
func (d Direction) String() string {
	switch d {
	case DirIn:
		return "In"
	case DirOut:
		return "Out"
	}
	return ""
}

// Packet is one captured packet (or frame).
type Packet struct {
	// Timestamp is when the packet was captured.
	Timestamp time.Time
	// Data is the captured bytes, starting with the link-layer header of
	// the source's link type (none for raw IP). It belongs to the receiver.
	Data []byte
	// Length is the packet's length on the interface; more than len(Data)
	// when the capture was truncated.
	Length int
	// Direction is which way the packet went, when the source knows.
	Direction Direction
}

// CaptureInfo returns the packet's metadata as gopacket has it.
func (p Packet) CaptureInfo() gopacket.CaptureInfo {
	length := max(p.Length, len(p.Data))
	return gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: length}
}

// Source is where packets come from: a device of our own (OpenDevice) or an
// existing interface (OpenInterface).
//
// ReadPacket and Close may be called from different goroutines; ReadPacket
// from one goroutine at a time.
type Source interface {
	// Name is the interface name, for the pcapng interface description
	// and for people.
	Name() string
	// LinkType is how Packet.Data starts: layers.LinkTypeRaw (an IPv4 or
	// IPv6 header), layers.LinkTypeEthernet or layers.LinkTypeLinuxSLL.
	LinkType() layers.LinkType
	// ReadPacket blocks until a packet arrives and returns it. After
	// Close, and when Close is called during the wait, it returns an error
	// for which errors.Is(err, os.ErrClosed) is true.
	ReadPacket() (Packet, error)
	// Close releases the source (a device of our own disappears) and
	// unblocks ReadPacket. It may be called more than once.
	Close() error
}

// LinkTypeName describes a link type for people: "RAW (raw IP)",
// "EN10MB (Ethernet)", as tcpdump names them.
func LinkTypeName(lt layers.LinkType) string {
	switch lt {
	case layers.LinkTypeRaw:
		return "RAW (raw IP)"
	case layers.LinkTypeEthernet:
		return "EN10MB (Ethernet)"
	case layers.LinkTypeLinuxSLL:
		return "LINUX_SLL (Linux cooked v1)"
	}
	return lt.String()
}
