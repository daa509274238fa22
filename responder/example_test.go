package responder_test

import (
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tapwire/tapwire/responder"
)

func Example() {
	r := &responder.Responder{
		Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
	}

	// An echo request from the device's own address to 192.0.2.2, as the
	// kernel would write it to a TUN device after "ping 192.0.2.2".
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2},
	}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}
	sb := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	if err := gopacket.SerializeLayers(sb, opts, ip, icmp, gopacket.Payload("hello")); err != nil {
		panic(err)
	}

	// What a read from the device would have put in buf.
	buf := make([]byte, 65535)
	n := copy(buf, sb.Bytes())

	m, ok := r.ReplyIP(buf, n)
	if !ok {
		fmt.Println("no reply")
		return
	}
	// buf[:m] is what to write back to the device.
	reply := gopacket.NewPacket(buf[:m], layers.LayerTypeIPv4, gopacket.Default)
	rip := reply.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ricmp := reply.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	fmt.Printf("%v from %v to %v, %d bytes, payload %q\n", ricmp.TypeCode, rip.SrcIP, rip.DstIP, m, ricmp.Payload)
	fmt.Printf("echo replies: %d\n", r.EchoReplies)
	// Output:
	// EchoReply from 192.0.2.2 to 192.0.2.1, 33 bytes, payload "hello"
	// echo replies: 1
}
