package packet

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the one's complement of the one's
// complement sum of a packet's 16-bit big-endian words. The helpers below
// split the work in three steps so that a checksum can cover several
// discontiguous regions (a pseudo-header, a header, a payload):
//
//	sum := PseudoHeaderSum(ProtoICMPv6, src, dst, len(msg)) // optional
//	sum = Sum(msg, sum)                                     // any number of times
//	csum := Finish(sum)                                     // store this
//
// Checksum(b, initial) is shorthand for Finish(Sum(b, initial)).
//
// A region whose checksum field already holds a correct value sums to
// all-ones, so Checksum over it (including any pseudo-header) returns 0.

// Sum adds the bytes of b, taken as big-endian 16-bit words, to the running
// one's complement sum initial and returns the new running sum. The result is
// folded to 16 bits (it is at most 0xffff) and is 0 only if initial and every
// byte of b are zero.
//
// If b has an odd length its last byte is padded with a zero byte, as RFC 1071
// prescribes. When a checksum spans several calls, only the last chunk may
// therefore have an odd length; every earlier chunk must be of even length.
//
// Sum reads b eight bytes at a time, accumulating 64-bit words with an
// end-around carry; this gives the same result as adding 16-bit words, since
// 2^16 ≡ 1 (mod 2^16-1).
func Sum(b []byte, initial uint32) uint32 {
	s := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[0:8]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[8:16]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[16:24]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	var tail uint64
	switch len(b) {
	case 7:
		tail = uint64(binary.BigEndian.Uint32(b))<<32 | uint64(binary.BigEndian.Uint16(b[4:]))<<16 | uint64(b[6])<<8
	case 6:
		tail = uint64(binary.BigEndian.Uint32(b))<<32 | uint64(binary.BigEndian.Uint16(b[4:]))<<16
	case 5:
		tail = uint64(binary.BigEndian.Uint32(b))<<32 | uint64(b[4])<<24
	case 4:
		tail = uint64(binary.BigEndian.Uint32(b)) << 32
	case 3:
		tail = uint64(binary.BigEndian.Uint16(b))<<48 | uint64(b[2])<<40
	case 2:
		tail = uint64(binary.BigEndian.Uint16(b)) << 48
	case 1:
		tail = uint64(b[0]) << 56
	}
	// The tail sits in the high bytes of a 64-bit word, which keeps each
	// byte at the same position within its 16-bit word.
	s, c = bits.Add64(s, tail, c)
	// Fold the last carry in; if that overflows, s is 0 and the second
	// addition cannot overflow.
	s, c = bits.Add64(s, 0, c)
	s += c
	return uint32(fold64(s))
}

// fold64 reduces a 64-bit one's complement sum to 16 bits.
func fold64(s uint64) uint64 {
	s = (s >> 32) + (s & 0xffffffff) // at most 33 bits
	s = (s >> 16) + (s & 0xffff)     // at most 0x1fffe
	s = (s >> 16) + (s & 0xffff)     // at most 0x10000
	s = (s >> 16) + (s & 0xffff)     // at most 0xffff
	return s
}

// Fold reduces a running one's complement sum to 16 bits by adding the
// carries back in. It does not complement the result; see Finish.
func Fold(sum uint32) uint16 {
	return uint16(fold64(uint64(sum)))
}

// Finish folds a running sum and complements it, giving the value to store
// in a checksum field (in network byte order).
func Finish(sum uint32) uint16 {
	return ^Fold(sum)
}

// Checksum returns the Internet checksum of b added to the running sum
// initial: Finish(Sum(b, initial)). With initial 0 it is the IPv4 header
// checksum of b (with the checksum field zeroed); with a PseudoHeaderSum it is
// the TCP, UDP or ICMPv6 checksum.
//
// Computed over a region whose checksum field holds a correct value,
// Checksum returns 0.
func Checksum(b []byte, initial uint32) uint16 {
	return Finish(Sum(b, initial))
}

// PseudoHeaderSum returns the running sum of the pseudo-header that TCP, UDP
// and ICMPv6 include in their checksums: the source and destination
// addresses, the upper-layer protocol number and the upper-layer length
// (the length of the transport header plus payload, in bytes).
//
// src and dst are 4-byte IPv4 addresses (RFC 793/768 pseudo-header) or
// 16-byte IPv6 addresses (RFC 8200 section 8.1). Both layouts have the same
// one's complement sum, so the function does not need to know which one is
// meant; it simply sums src and dst, whatever their lengths (they should be
// even). length is taken as a 32-bit value, as in IPv6; for IPv4 it fits in
// 16 bits. Like Sum, the result is folded to 16 bits.
func PseudoHeaderSum(proto uint8, src, dst []byte, length int) uint32 {
	s := Sum(src, 0)
	s = Sum(dst, s)
	l := uint64(uint32(length))
	return uint32(fold64(uint64(s) + uint64(proto) + l>>16 + l&0xffff))
}
