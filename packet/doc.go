// Package packet holds small, allocation-free helpers for working with raw
// network packets: the Internet checksum (RFC 1071) with IPv4 and IPv6
// pseudo-headers, the virtio-net header and the GSO split and GRO coalesce
// of the device offloads, the TCP MSS clamp, the ICMP errors that tell a
// sender its packet was too big for the path (TooBig) and router-style IPv4
// fragmentation (FragmentIPv4), and the handful of protocol constants and
// header views that the rest of tapwire needs.
//
// Nothing in this package performs I/O or allocates. Functions that look into
// a packet never panic on short input; they return a zero value instead.
package packet
