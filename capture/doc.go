//go:build linux

// Package capture shows what crosses a TUN/TAP interface: it reads packets
// from a Source, keeps those a Filter matches, writes them to a pcapng file
// that Wireshark and tshark open, and prints one tcpdump-like line for each.
//
// # Sources
//
// There are two kinds of Source:
//
//   - OpenDevice creates a new TUN or TAP device, gives it addresses and
//     brings it up. What the kernel routes into the device is read from it
//     and captured; nothing is answered or written back. This is the quickest
//     way to see what a program or a route sends towards a tunnel.
//   - OpenInterface watches an existing interface (a TUN device another
//     program holds, a TAP device in a bridge, a veth, eth0) with an
//     AF_PACKET socket, in both directions, as tcpdump does.
//
// Both can work inside another network namespace. A Source reports its link
// type: raw IP (LINKTYPE_RAW) for TUN devices and other interfaces without a
// link-layer header, Ethernet for TAP devices and Ethernet-like interfaces,
// Linux cooked capture (LINKTYPE_LINUX_SLL) for anything else.
//
// # Capturing
//
// Run reads from a Source until a packet count is reached, a duration has
// passed or its context is cancelled (Ctrl-C), and hands every packet the
// Filter keeps to a pcapng Writer and a line printer:
//
//	src, err := capture.OpenDevice(capture.DeviceConfig{
//		Mode:  tun.ModeTUN,
//		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
//	})
//	if err != nil {
//		return err
//	}
//	f, err := os.Create("tun.pcapng")
//	if err != nil {
//		src.Close()
//		return err
//	}
//	defer f.Close()
//	w, err := capture.NewWriter(f, src.Name(), src.LinkType(), "")
//	if err != nil {
//		src.Close()
//		return err
//	}
//	stats, err := capture.Run(ctx, src, capture.Options{Count: 10, Writer: w, Print: os.Stdout})
//
// Run closes the Source (that is how it stops a blocked read) and flushes
// the Writer after every packet, so the file is complete whenever Run
// returns, and a reader following the file (Wireshark reading a pipe from
// "-w -") sees each packet as it comes.
//
// # Lines
//
// Line formats a packet as tcpdump -n does, for the protocols one meets
// on a tunnel:
//
//	14:03:07.123456 Out IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 7, seq 1, length 64
//	14:03:07.124001 Out ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28
//	14:03:07.124802 In IP 192.0.2.2.80 > 192.0.2.1.40000: Flags [S.], seq 1000, ack 2001, win 65535, length 0
//	14:03:07.125113 Out IP6 fe80::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has 2001:db8::2, length 32
//
// "In" and "Out" are the direction as the interface sees it: Out is towards
// the wire (for a TUN or TAP device, towards the program holding it).
//
// Sequence numbers are absolute (tcpdump -S); frames of an unknown EtherType
// show their addresses and the EtherType in hex.
package capture
