package devconf

import "fmt"

// Transport says how a peer is reached. The zero value is TransportUDP.
type Transport uint8

// Transports.
const (
	TransportUDP  Transport = iota // datagrams, as WireGuard (the default)
	TransportTCP                   // a TCP stream to the endpoint, messages framed by their length
	TransportAuto                  // UDP; TCP while UDP gets no handshake through
)

// String returns "udp", "tcp" or "auto", the names ParseTransport reads
// (and the UAPI's tapwire_transport values); an unknown value is
// "transport(N)".
func (t Transport) String() string {
	switch t {
	case TransportUDP:
		return "udp"
	case TransportTCP:
		return "tcp"
	case TransportAuto:
		return "auto"
	}
	return fmt.Sprintf("transport(%d)", uint8(t))
}

// ParseTransport reads "udp", "tcp" or "auto", exactly (lower case).
func ParseTransport(s string) (Transport, error) {
	switch s {
	case "udp":
		return TransportUDP, nil
	case "tcp":
		return TransportTCP, nil
	case "auto":
		return TransportAuto, nil
	}
	return 0, fmt.Errorf("transport %q: want udp, tcp or auto", s)
}
