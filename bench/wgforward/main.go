// Command wgforward is the yardstick for bench/forward.sh: the same user-space
// wire as tapwire's examples/forward (two TUN devices, packets copied between
// them both ways), written on wireguard-go's tun package instead, with its
// virtio-net-header offloads (TSO/USO in, GRO out) switched on.
//
//	wgforward -a fa -b fb -netns-a left -netns-b right
//
// It runs until SIGINT or SIGTERM. It lives in a module of its own so that the
// tapwire module does not depend on wireguard-go.
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
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// offset is the headroom in front of every packet; wireguard-go needs at
// least virtioNetHdrLen (10) when offloads are on.
const offset = 16

func main() {
	a := flag.String("a", "wga%d", "name of the first device")
	b := flag.String("b", "wgb%d", "name of the second device")
	mode := flag.String("mode", "tun", "only tun is supported (wireguard-go has no TAP)")
	nsA := flag.String("netns-a", "", "network namespace (name from `ip netns add`, or a path) to create the first device in (default: this one)")
	nsB := flag.String("netns-b", "", "network namespace to create the second device in (default: this one)")
	offload := flag.Bool("offload", true, "open the devices with IFF_VNET_HDR, which makes wireguard-go use TSO/USO and GRO (batches)")
	flag.Parse()
	if *mode != "tun" {
		fmt.Fprintln(os.Stderr, "wgforward: -mode: only tun is supported")
		os.Exit(2)
	}
	log := slog.Default()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *a, *nsA, *b, *nsB, *offload); err != nil {
		fmt.Fprintln(os.Stderr, "wgforward:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, nameA, nsA, nameB, nsB string, offload bool) error {
	da, err := open(nameA, nsA, offload)
	if err != nil {
		return fmt.Errorf("device a: %w", err)
	}
	defer da.Close()
	db, err := open(nameB, nsB, offload)
	if err != nil {
		return fmt.Errorf("device b: %w", err)
	}
	defer db.Close()
	na, _ := da.Name()
	nb, _ := db.Name()
	log.Info("forwarding", "a", na, "netns-a", nsA, "b", nb, "netns-b", nsB,
		"batch-a", da.BatchSize(), "batch-b", db.BatchSize())
	if offload && (da.BatchSize() <= 1 || db.BatchSize() <= 1) {
		log.Warn("offloads requested but wireguard-go did not enable them (BatchSize 1)")
	}

	// Closing the devices ends both pumps: their reads return os.ErrClosed.
	var once sync.Once
	closeBoth := func() { once.Do(func() { da.Close(); db.Close() }) }
	stopAfter := context.AfterFunc(ctx, closeBoth)
	defer stopAfter()
	errc := make(chan error, 2)
	go func() { errc <- pump(log, na+">"+nb, da, db) }()
	go func() { errc <- pump(log, nb+">"+na, db, da) }()
	err = <-errc
	closeBoth()
	<-errc
	if errors.Is(err, os.ErrClosed) && ctx.Err() != nil {
		return nil // interrupted: a clean stop
	}
	return err
}

// pump reads batches from src and writes them to dst, in place. Errors for
// single packets that dst refuses are counted and logged now and then, as a
// wire drops what it cannot carry; a closed device ends the pump.
func pump(log *slog.Logger, dir string, src, dst tun.Device) error {
	n := max(src.BatchSize(), 1)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, offset+65535)
	}
	sizes := make([]int, n)
	out := make([][]byte, n)
	var dropped uint64
	var lastLog time.Time
	for {
		k, err := src.Read(bufs, sizes, offset)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return err
			}
			if errors.Is(err, tun.ErrTooManySegments) {
				dropped++
				continue
			}
			return fmt.Errorf("%s: read: %w", dir, err)
		}
		if k == 0 {
			continue
		}
		for i := range k {
			out[i] = bufs[i][:offset+sizes[i]]
		}
		if _, err := dst.Write(out[:k], offset); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return err
			}
			dropped++
			if time.Since(lastLog) > 5*time.Second {
				lastLog = time.Now()
				log.Warn("write error (packets dropped)", "dir", dir, "errors", dropped, "err", err)
			}
		}
	}
}

// open creates a TUN device called name inside the network namespace ns (or
// here, if ns is empty) and hands it to wireguard-go.
func open(name, ns string, offload bool) (tun.Device, error) {
	fd, err := createIn(ns, name, offload)
	if err != nil {
		return nil, err
	}
	dev, _, err := tun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("wireguard-go: %w", err)
	}
	return dev, nil
}

// createIn opens /dev/net/tun and creates the interface while a locked OS
// thread is inside ns. A TUN device belongs to the namespace of the thread that
// opened /dev/net/tun, so both steps happen there; the descriptor keeps working
// from any namespace afterwards.
func createIn(ns, name string, offload bool) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread unless the thread is back in its own namespace:
		// a goroutine that exits locked takes its thread down with it.
		if ns == "" {
			defer runtime.UnlockOSThread()
			fd, err := tunCreate(name, offload)
			ch <- result{fd, err}
			return
		}
		path := ns
		if !strings.Contains(ns, "/") {
			path = "/var/run/netns/" + ns
		}
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("own namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // still in the original namespace
			ch <- result{-1, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		fd, err := tunCreate(name, offload)
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			// Stuck in ns: keep the thread locked so it dies with the goroutine.
			if fd >= 0 {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("return from namespace %s: %w", ns, rerr)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil {
			err = fmt.Errorf("in namespace %s: %w", ns, err)
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// tunCreate opens /dev/net/tun and attaches it to a new (or existing) TUN
// interface called name, in the calling thread's network namespace.
func tunCreate(name string, offload bool) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("name %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %q: %w", name, err)
	}
	return fd, nil
}
