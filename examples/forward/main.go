// Command forward creates two TUN (or TAP) devices and copies packets between
// them, both ways, until interrupted: a user-space wire.
//
// Put each device in a network namespace of its own and traffic between the
// namespaces flows through this program:
//
//	ip netns add left; ip netns add right
//	go run ./examples/forward -a fa -b fb -netns-a left -netns-b right &
//	ip -n left addr add 192.0.2.1/24 dev fa; ip -n left link set fa up
//	ip -n right addr add 192.0.2.2/24 dev fb; ip -n right link set fb up
//	ip netns exec left ping -c 3 192.0.2.2
//	kill %1; ip netns del left; ip netns del right
//
// Without -netns-a/-netns-b the devices are made here, and can be moved with
// `ip link set NAME netns NS` (then they must be configured again there).
//
// On macOS and FreeBSD there are no network namespaces: the devices are
// made in the host's stack (on macOS as utunN, TUN only; -a and -b default
// to "utun", the first free one). Give each its address with ifconfig;
// traffic between them then needs routes or a VM or jail behind one of them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/tapwire/tapwire/tun"
)

func main() {
	a := flag.String("a", defaultName("fwa%d"), "name of the first device")
	b := flag.String("b", defaultName("fwb%d"), "name of the second device")
	mode := flag.String("mode", "tun", "tun (IP packets) or tap (Ethernet frames)")
	nsA := flag.String("netns-a", "", "network namespace to create the first device in (default: this one)")
	nsB := flag.String("netns-b", "", "network namespace to create the second device in (default: this one)")
	offload := flag.Bool("offload", true, "use the kernel's checksum and segmentation offloads (virtio-net header) where it has them")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: forward -a NAME -b NAME [-mode tun|tap] [-netns-a NS] [-netns-b NS] [-offload=false]\n\n"+
			"Copies packets between two new devices, both ways, until interrupted.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	m, err := tun.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "forward: -mode:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = run(ctx, options{
		A:   tun.Config{Name: *a, Mode: m, NetNS: *nsA, NoOffload: !*offload},
		B:   tun.Config{Name: *b, Mode: m, NetNS: *nsB, NoOffload: !*offload},
		Log: slog.Default(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "forward:", err)
		os.Exit(1)
	}
}

// defaultName is the default of -a or -b: pattern, except on macOS, which
// names its utun devices itself.
func defaultName(pattern string) string {
	if runtime.GOOS == "darwin" {
		return "utun"
	}
	return pattern
}

type options struct {
	A, B  tun.Config
	Ready func(a, b *tun.Device) // called once both devices are open; used by the tests
	Log   *slog.Logger
}

// run opens both devices and pumps packets between them until ctx ends or a
// device fails (for example, is deleted).
func run(ctx context.Context, o options) error {
	a, err := tun.Open(o.A)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := tun.Open(o.B)
	if err != nil {
		return err
	}
	defer b.Close()
	o.Log.Info("forwarding", "a", a.Name(), "b", b.Name(), "mode", a.Mode())
	if o.Ready != nil {
		o.Ready(a, b)
	}

	// Closing both devices stops both pumps: their reads return ErrClosed.
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- pump(a, b) }()
	go func() { errc <- pump(b, a) }()
	err = <-errc
	a.Close() // stop the other direction too
	b.Close()
	<-errc
	if errors.Is(err, tun.ErrClosed) && ctx.Err() != nil {
		return nil // interrupted: a clean stop
	}
	return err
}

// pump copies packets from src to dst in batches. The buffers are made once;
// each packet is read into one and written from the same place, with no copy.
func pump(src, dst *tun.Device) error {
	bufs := make([][]byte, src.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, len(bufs))
	out := make([][]byte, len(bufs))
	for {
		n, err := src.ReadBatch(bufs, sizes, tun.Headroom)
		if err != nil {
			return err
		}
		for i := range n {
			out[i] = bufs[i][:tun.Headroom+sizes[i]]
		}
		// A packet the kernel refuses alone is dropped, as a wire would.
		if _, err := dst.WriteBatch(out[:n], tun.Headroom); err != nil {
			if pe := (*tun.PacketError)(nil); !errors.As(err, &pe) {
				return err
			}
		}
	}
}
