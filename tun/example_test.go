package tun_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/tapwire/tapwire/tun"
)

// Open a TUN device named by the kernel, read one packet, and close it.
func ExampleOpen() {
	dev, err := tun.Open(tun.Config{Name: "tun%d", MTU: 1420})
	if err != nil {
		log.Fatal(err) // e.g. needs CAP_NET_ADMIN, with the hint in the message
	}
	defer dev.Close()
	fmt.Println("opened", dev.Name())

	buf := make([]byte, 65535)
	n, err := dev.Read(buf) // parks the goroutine until a packet arrives
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read a %d-byte IPv%d packet\n", n, buf[0]>>4)
}

// A TAP device with a fixed MAC address that an unprivileged user may attach
// to later, kept after this program exits.
func ExampleOpen_persistentTAP() {
	dev, err := tun.Open(tun.Config{
		Name:    "tap-vm0",
		Mode:    tun.ModeTAP,
		MAC:     []byte{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01},
		Persist: true,
		Owner:   tun.ID(1000),
	})
	if err != nil {
		log.Fatal(err)
	}
	dev.Close() // the device stays; remove it with SetPersist(false) or ip link del
}

// Attach to a persistent device made earlier; the mode is read from it.
func ExampleAttach() {
	dev, err := tun.Attach(tun.Config{Name: "tap-vm0"})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	fmt.Println(dev.Name(), "is a", dev.Mode(), "device")
}

// Read packets in batches into buffers with headroom, so that a header can
// be put in front of each packet without copying it.
func ExampleDevice_ReadBatch() {
	dev, err := tun.Open(tun.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	bufs := make([][]byte, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, len(bufs))
	for {
		n, err := dev.ReadBatch(bufs, sizes, tun.Headroom)
		if errors.Is(err, tun.ErrClosed) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		for i := range n {
			pkt := bufs[i][tun.Headroom : tun.Headroom+sizes[i]]
			hdr := bufs[i][tun.Headroom-16 : tun.Headroom] // room for a 16-byte header
			_, _ = pkt, hdr
		}
	}
}
