package protocol

import (
	"encoding/binary"
	"time"
)

const (
	// tai64nBase is the TAI64 label of the Unix epoch: 2^62 + 10 (TAI
	// was 10 s ahead of UTC in 1970; leap seconds since are not counted,
	// as in wireguard-go and the kernel).
	tai64nBase = uint64(0x400000000000000a)
	// tai64nWhitener clears the low 24 bits of the nanoseconds (about
	// 16.8 ms), as wireguard-go does, so that an initiation does not
	// reveal the sender's clock precisely.
	tai64nWhitener = uint32(1<<24 - 1)
)

// TAI64N returns the 12-byte TAI64N timestamp of t that initiations carry:
// big-endian seconds since the TAI64 epoch, then big-endian nanoseconds
// rounded down to a multiple of 2^24 (as wireguard-go whitens them). Later
// times give byte-wise greater or equal timestamps.
func TAI64N(t time.Time) [TimestampSize]byte {
	var ts [TimestampSize]byte
	binary.BigEndian.PutUint64(ts[0:8], tai64nBase+uint64(t.Unix()))
	binary.BigEndian.PutUint32(ts[8:12], uint32(t.Nanosecond())&^tai64nWhitener)
	return ts
}

// ParseTAI64N returns the time of a TAI64N timestamp (for logs).
func ParseTAI64N(ts [TimestampSize]byte) time.Time {
	secs := int64(binary.BigEndian.Uint64(ts[0:8]) - tai64nBase)
	return time.Unix(secs, int64(binary.BigEndian.Uint32(ts[8:12])))
}
