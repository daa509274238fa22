// Package packet reads, checks and rewrites raw IP packets and Ethernet
// frames in place: the pure, allocation-free building blocks under tapwire's
// devices and tunnel. It performs no I/O and knows nothing of devices or
// sockets; callers hand it byte slices and buffers to write into.
//
// # Checksums
//
// [Sum], [Fold], [Finish] and [Checksum] compute the Internet checksum
// (RFC 1071) over one region or several discontiguous ones, and
// [PseudoHeaderSum] adds the IPv4 or IPv6 pseudo-header that TCP, UDP and
// ICMPv6 cover. A region whose checksum field is already correct checksums
// to 0.
//
// # Header constants and views
//
// EtherType values (EtherTypeIPv4, EtherTypeVLAN, ...), IP protocol numbers
// (ProtoTCP, ...), header and address lengths (IPv4HeaderLen,
// EthernetHeaderLen, IPv6AddrLen, ...), ARP field values, hop limits and the
// ICMP and ICMPv6 message types tapwire sends or answers; [IPVersion] and
// [EtherType] read the first field a dispatcher needs.
//
// # Device offloads
//
// TUN/TAP devices opened with IFF_VNET_HDR put a [VirtioNetHdr] (decoded and
// encoded with its Decode and Encode methods) in front of every packet and
// exchange "super-packets" of up to 64 KiB with a partial checksum:
//
//   - [SplitGSO] cuts a super-packet read from a device into ordinary
//     packets, as the kernel's software segmentation does, and completes a
//     partial checksum. Its errors wrap one of ErrTruncated, ErrMalformed,
//     ErrUnsupported, ErrTooManySegments and ErrShortBuffer.
//   - A [Coalescer] does the reverse before a batch is written: it merges
//     consecutive TCP segments (and, if asked, UDP datagrams) of a flow into
//     super-packets under the kernel's GRO rules and writes the virtio-net
//     header each packet of the batch needs.
//
// # Tunnel data path
//
//   - [MSSFor] gives the TCP MSS that fits an MTU, and [ClampMSS] (Ethernet
//     frames) and [ClampMSSIP] (bare IP packets) lower the MSS option of SYN
//     segments to it, fixing the checksum incrementally, as OpenVPN's mssfix
//     or iptables' TCPMSS do.
//   - [TooBig] writes the ICMP Fragmentation Needed (IPv4) or Packet Too Big
//     (IPv6) error that tells a sender its packet did not fit the path, and
//     refuses the cases where no error may be sent (ICMP errors, later
//     fragments, multicast or unspecified sources).
//   - [DontFragment] reports an IPv4 packet's DF flag; [FragmentIPv4] cuts an
//     IPv4 packet without DF into fragments of an MTU, as a router does.
//
// # Contracts
//
// Nothing in this package allocates, except a Coalescer growing its internal
// tables to the largest batch it has seen (and the index slice it returns,
// when the one passed in lacks capacity). Functions that look into a packet
// never panic on short or malformed input: they return false, 0 or an error
// and leave the packet untouched. The exceptions are programming errors in
// the arguments, documented where they apply: [VirtioNetHdr.Encode] into a
// buffer shorter than VirtioNetHdrLen, and [Coalescer.Coalesce] with an offset
// below VirtioNetHdrLen or a packet shorter than the offset. A Coalescer is
// for one goroutine at a time; everything else is a plain function.
package packet
