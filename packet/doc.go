// Package packet holds small, allocation-free helpers for working with raw
// network packets: the Internet checksum (RFC 1071) with IPv4 and IPv6
// pseudo-headers, and the handful of protocol constants and header views that
// the rest of tapwire needs.
//
// Nothing in this package performs I/O or allocates. Functions that look into
// a packet never panic on short input; they return a zero value instead.
package packet
