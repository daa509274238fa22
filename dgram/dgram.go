// Package dgram holds the types of batched datagram endpoints: the Conn a
// tunnel sends its messages on and receives them from, the Datagram it
// moves, and the Network that opens Conns. The tunnel package implements
// them with the kernel's UDP sockets (recvmmsg, sendmmsg, UDP GSO and GRO);
// tests implement them in memory.
package dgram

import "net/netip"

// Datagram is one message a Conn sends or receives.
type Datagram struct {
	// Buf is the datagram to send; on receive, the buffer to fill, from
	// its start.
	Buf []byte
	// N is the number of bytes received into Buf.
	N int
	// Segment, on receive, is set when Buf[:N] holds several datagrams
	// from Addr coalesced by the endpoint (UDP GRO): each is Segment bytes
	// long, the last may be shorter. 0: Buf[:N] is one datagram.
	Segment int
	// Addr is the destination of a datagram sent, the source of one
	// received.
	Addr netip.AddrPort
}

// Conn is a bound datagram endpoint (a UDP socket) with batched I/O:
// what a tunnel sends its messages on and receives them from.
type Conn interface {
	// LocalPort returns the port the endpoint is bound to.
	LocalPort() uint16
	// IPv6 reports whether the endpoint reaches IPv6 addresses (an
	// IPv4-only socket does not).
	IPv6() bool
	// ReadBatch blocks until a datagram is there, then receives up to
	// len(msgs) of them, filling Buf (from its start), N, Segment and Addr
	// of each. It returns an error wrapping net.ErrClosed once the endpoint
	// is closed; other errors are transient and the caller reads again.
	// One goroutine reads at a time.
	ReadBatch(msgs []Datagram) (int, error)
	// WriteBatch sends each msgs[i].Buf to msgs[i].Addr, in order, trying
	// every one of them: a datagram refused does not hold back the rest,
	// and the first refusal is returned. It returns how many of the sends it
	// made carried several datagrams (UDP GSO); 0 for an endpoint without
	// that offload. Safe for concurrent use.
	WriteBatch(msgs []Datagram) (int, error)
	// SetMark sets the mark (SO_MARK) routing sees on the endpoint's
	// datagrams; 0 is none. An endpoint without marks accepts 0 only.
	SetMark(mark uint32) error
	// Close closes the endpoint and makes a blocked ReadBatch return.
	Close() error
}

// Network opens datagram endpoints.
type Network interface {
	// ListenPacket opens an endpoint on port, on every address; 0 picks
	// a free port.
	ListenPacket(port uint16) (Conn, error)
}
