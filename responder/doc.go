// Package responder answers ICMP echo (ping), ARP and IPv6 neighbour
// solicitation from user space, for the examples and the demo of tapwire.
//
// A TUN or TAP device is given an address such as 192.0.2.1/24 and
// 2001:db8::1/64. The kernel owns those addresses; a Responder, fed with the
// packets read from the device, plays every other host on those subnets: it
// answers pings to 192.0.2.2, 2001:db8::42 and so on, and on a TAP device
// also answers ARP and neighbour solicitations for them, so that the kernel
// can reach them. The network address of each prefix and, for IPv4, its
// broadcast address are not answered (except on /31 and /127 point-to-point
// prefixes, which have neither).
//
// Replies are written in place into the buffer that held the request, and
// nothing is allocated. A read-reply-write loop over a TUN device opened
// without packet information looks like this:
//
//	r := &responder.Responder{
//		Prefixes: []netip.Prefix{
//			netip.MustParsePrefix("192.0.2.1/24"),
//			netip.MustParsePrefix("2001:db8::1/64"),
//		},
//	}
//	buf := make([]byte, 65535)
//	for {
//		n, err := dev.Read(buf)
//		if err != nil {
//			return err
//		}
//		if m, ok := r.ReplyIP(buf, n); ok {
//			if _, err := dev.Write(buf[:m]); err != nil {
//				return err
//			}
//		}
//	}
//
// On a TAP device, set MAC to a locally administered address other than the
// device's own (for example 02:00:5e:00:53:01) and call ReplyEthernet instead.
//
// All input is treated as untrusted: any byte sequence is safe to pass, and
// anything that is truncated, inconsistent or fails a checksum is counted as
// Malformed and left alone.
package responder
