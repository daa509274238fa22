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
// Sum reads b as little-endian 64-bit words into two sums with
// end-around carries, which do not depend on each other, so the processor
// adds them in parallel; the folded little-endian sum is then swapped to
// big-endian order. This gives the same result as adding
// 16-bit big-endian words, since 2^16 ≡ 1 (mod 2^16-1) and a one's
// complement sum commutes with swapping the bytes of every word.
func Sum(b []byte, initial uint32) uint32 {
	var s0, s1, c0, c1 uint64
	for len(b) >= 64 {
		s0, c0 = bits.Add64(s0, binary.LittleEndian.Uint64(b[0:8]), c0)
		s1, c1 = bits.Add64(s1, binary.LittleEndian.Uint64(b[8:16]), c1)
		s0, c0 = bits.Add64(s0, binary.LittleEndian.Uint64(b[16:24]), c0)
		s1, c1 = bits.Add64(s1, binary.LittleEndian.Uint64(b[24:32]), c1)
		s0, c0 = bits.Add64(s0, binary.LittleEndian.Uint64(b[32:40]), c0)
		s1, c1 = bits.Add64(s1, binary.LittleEndian.Uint64(b[40:48]), c1)
		s0, c0 = bits.Add64(s0, binary.LittleEndian.Uint64(b[48:56]), c0)
		s1, c1 = bits.Add64(s1, binary.LittleEndian.Uint64(b[56:64]), c1)
		b = b[64:]
	}
	for len(b) >= 8 {
		s0, c0 = bits.Add64(s0, binary.LittleEndian.Uint64(b), c0)
		b = b[8:]
	}
	if len(b) > 0 {
		// The tail, zero-padded: an odd last byte is the high byte of a
		// big-endian word, the low byte of a little-endian one.
		var t [8]byte
		copy(t[:], b)
		s1, c1 = bits.Add64(s1, binary.LittleEndian.Uint64(t[:]), c1)
	}
	// End-around carries: fold each chain's last carry in, then the two.
	s0, c0 = bits.Add64(s0, c0, 0)
	s0 += c0
	s1, c1 = bits.Add64(s1, c1, 0)
	s1 += c1
	s, c := bits.Add64(s0, s1, 0)
	s += c // cannot overflow again: a carry out leaves s at most 2^64-2
	le := fold64(s)
	return uint32(fold64(uint64(bits.ReverseBytes16(uint16(le))) + uint64(initial)))
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
