//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/tun"
)

// TestForwardBetweenNamespaces wires two namespaces together through the
// forwarder and pings across, both ways, in TUN and TAP mode.
func TestForwardBetweenNamespaces(t *testing.T) {
	pingtest.Require(t)
	for _, mode := range []tun.Mode{tun.ModeTUN, tun.ModeTAP} {
		t.Run(mode.String(), func(t *testing.T) {
			left, right := nstest.New(t), nstest.New(t)
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, options{
					A:     tun.Config{Name: "fwl0", Mode: mode, NetNS: left.Name},
					B:     tun.Config{Name: "fwr0", Mode: mode, NetNS: right.Name},
					Ready: func(a, b *tun.Device) { close(ready) },
					Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
			}()
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("run: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Error("forwarder did not stop within 5 s")
				}
			})
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("run: %v", err)
			}
			addressBothEnds(left, right)
			for _, size := range []int{56, 1400} {
				pingtest.Ping(t, left, "192.0.2.2", 3, size)
				pingtest.Ping(t, right, "192.0.2.1", 3, size)
				pingtest.Ping(t, left, "2001:db8::2", 3, size)
				pingtest.Ping(t, right, "2001:db8::1", 3, size)
			}
		})
	}
}

// addressBothEnds gives the devices fwl0 (in left) and fwr0 (in right) their
// addresses and brings them up.
func addressBothEnds(left, right *nstest.NS) {
	for _, side := range []struct {
		ns          *nstest.NS
		dev, a4, a6 string
	}{{left, "fwl0", "192.0.2.1/24", "2001:db8::1/64"}, {right, "fwr0", "192.0.2.2/24", "2001:db8::2/64"}} {
		side.ns.Run("ip", "addr", "add", side.a4, "dev", side.dev)
		side.ns.Run("ip", "addr", "add", side.a6, "dev", side.dev, "nodad")
		side.ns.Run("ip", "link", "set", side.dev, "up")
	}
}

// TestForwardStopsWhenADeviceIsDeleted checks that the forwarder returns an
// error, instead of hanging, when one of its devices disappears.
func TestForwardStopsWhenADeviceIsDeleted(t *testing.T) {
	ns := nstest.New(t)
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- run(context.Background(), options{
			A:     tun.Config{Name: "fwd0", NetNS: ns.Name},
			B:     tun.Config{Name: "fwd1", NetNS: ns.Name},
			Ready: func(a, b *tun.Device) { close(ready) },
			Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	ns.Run("ip", "link", "del", "fwd0")
	select {
	case err := <-done:
		if err == nil {
			t.Error("run returned nil after its device was deleted")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("forwarder still running 5 s after its device was deleted")
	}
}

// The test binary, run again inside a namespace, is the TCP or UDP peer of
// a transfer through the forwarder, so that the test process itself holds
// nothing but the forwarder while its allocations are counted.
func init() {
	switch os.Getenv("TAPWIRE_TEST_CHILD") {
	case "tcp-sink":
		os.Exit(tcpSink())
	case "tcp-source":
		os.Exit(tcpSource())
	}
}

// tcpSink accepts one connection on :5201 (after printing "ready") and
// prints the length and SHA-256 of everything received.
func tcpSink() int {
	ln, err := net.Listen("tcp", os.Getenv("TAPWIRE_ADDR"))
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("ready")
	c, err := ln.Accept()
	if err != nil {
		fmt.Println("accept:", err)
		return 1
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		fmt.Println("read:", err)
		return 1
	}
	fmt.Printf("%d %x\n", n, h.Sum(nil))
	return 0
}

// tcpSource sends TAPWIRE_BYTES bytes of a fixed pseudo-random stream and
// prints their length and SHA-256.
func tcpSource() int {
	total, _ := strconv.Atoi(os.Getenv("TAPWIRE_BYTES"))
	c, err := net.Dial("tcp", os.Getenv("TAPWIRE_ADDR"))
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	h := sha256.New()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 256<<10)
	for sent := 0; sent < total; {
		chunk := buf[:min(len(buf), total-sent)]
		for i := 0; i+8 <= len(chunk); i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], rng.Uint64())
		}
		if _, err := c.Write(chunk); err != nil {
			fmt.Println("write:", err)
			return 1
		}
		h.Write(chunk)
		sent += len(chunk)
	}
	c.Close()
	fmt.Printf("%d %x\n", total, h.Sum(nil))
	return 0
}

// TestForwardTCPIntact sends a TCP stream through the forwarder, both IP
// versions, TUN and TAP, with offloads on and off, and checks that every
// byte arrives, and that the forwarder allocates (next to) nothing while it
// moves the data.
func TestForwardTCPIntact(t *testing.T) {
	const total = 64 << 20
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []tun.Mode{tun.ModeTUN, tun.ModeTAP} {
		for _, offload := range []bool{true, false} {
			t.Run(fmt.Sprintf("%v/offload=%v", mode, offload), func(t *testing.T) {
				left, right := nstest.New(t), nstest.New(t)
				ctx, cancel := context.WithCancel(context.Background())
				ready := make(chan [2]*tun.Device, 1)
				done := make(chan error, 1)
				go func() {
					done <- run(ctx, options{
						A:     tun.Config{Name: "fwl0", Mode: mode, NetNS: left.Name, NoOffload: !offload},
						B:     tun.Config{Name: "fwr0", Mode: mode, NetNS: right.Name, NoOffload: !offload},
						Ready: func(a, b *tun.Device) { ready <- [2]*tun.Device{a, b} },
						Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
					})
				}()
				t.Cleanup(func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("run: %v", err)
					}
				})
				var devs [2]*tun.Device
				select {
				case devs = <-ready:
				case err := <-done:
					t.Fatalf("run: %v", err)
				}
				if got := devs[0].Offloads(); got.TSO != offload {
					t.Fatalf("offloads %v with offload=%v", got, offload)
				}
				addressBothEnds(left, right)
				for _, addr := range []string{"192.0.2.2:5201", "[2001:db8::2]:5201"} {
					// The child processes cost the test process allocations of
					// their own (os/exec); a tiny transfer measures those.
					var m0, m1, m2 runtime.MemStats
					runtime.ReadMemStats(&m0)
					transfer(t, self, left, right, addr, 1024)
					runtime.ReadMemStats(&m1)
					sink, source := transfer(t, self, left, right, addr, total)
					runtime.ReadMemStats(&m2)
					if sink != source {
						t.Fatalf("%s: sent %q, received %q", addr, source, sink)
					}
					// Tens of thousands of batches crossed the forwarder; allow
					// a few dozen allocations (timers, the runtime), not one per
					// batch.
					extra := int64(m2.Mallocs-m1.Mallocs) - int64(m1.Mallocs-m0.Mallocs)
					t.Logf("%s: %d allocations for %d MiB beyond a 1 KiB transfer", addr, extra, total>>20)
					if extra > 100 {
						t.Errorf("%s: %d allocations in the forwarder while moving %d MiB", addr, extra, total>>20)
					}
				}
				// With offloads, the bulk of the stream crossed as super-packets:
				// split when read from the sender's side, coalesced when written.
				st := devs[0].OffloadStats()
				t.Logf("offload stats of %s: %+v", devs[0].Name(), st)
				if offload && (st.SuperPacketsRead == 0 || devs[1].OffloadStats().SuperPacketsWritten == 0) {
					t.Errorf("offloads on but no super-packet crossed: %+v / %+v", st, devs[1].OffloadStats())
				}
			})
		}
	}
}

// transfer runs a sink in right and a source in left, and returns what each
// printed: the byte count and SHA-256 of the stream.
func transfer(t *testing.T, self string, left, right *nstest.NS, addr string, total int) (sink, source string) {
	t.Helper()
	srv := right.Command(self, "-test.run=^$")
	srv.Env = append(os.Environ(), "TAPWIRE_TEST_CHILD=tcp-sink", "TAPWIRE_ADDR="+addr)
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("sink did not start: %q", lines.Text())
	}
	cli := left.Command(self, "-test.run=^$")
	cli.Env = append(os.Environ(), "TAPWIRE_TEST_CHILD=tcp-source", "TAPWIRE_ADDR="+addr, "TAPWIRE_BYTES="+strconv.Itoa(total))
	cliOut, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("source: %v: %s", err, cliOut)
	}
	if !lines.Scan() {
		t.Fatalf("sink printed nothing: %v", lines.Err())
	}
	return lines.Text(), strings.TrimSpace(string(cliOut))
}

// TestForwardRawFramesIntact sends Ethernet frames the offloads must leave
// alone through a TAP forwarder with offloads on: an 802.1Q-tagged IPv4
// frame, a frame with an unusual EtherType, and a tagged TCP segment. Each
// must arrive byte for byte.
func TestForwardRawFramesIntact(t *testing.T) {
	left, right := nstest.New(t), nstest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{
			A:     tun.Config{Name: "fwl0", Mode: tun.ModeTAP, NetNS: left.Name},
			B:     tun.Config{Name: "fwr0", Mode: tun.ModeTAP, NetNS: right.Name},
			Ready: func(a, b *tun.Device) { close(ready) },
			Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	left.Run("ip", "link", "set", "fwl0", "up")
	right.Run("ip", "link", "set", "fwr0", "up")
	tx, rx := left.RawSocket("fwl0"), right.RawSocket("fwr0")

	dst := []byte{0x02, 0, 0x5e, 0, 0x53, 0x02}
	src := []byte{0x02, 0, 0x5e, 0, 0x53, 0x01}
	frame := func(tail ...byte) []byte { return append(append(append([]byte{}, dst...), src...), tail...) }
	ipv4TCP := []byte{0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
		0x30, 0x39, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0}
	frames := map[string][]byte{
		"802.1Q IPv4":      frame(append([]byte{0x81, 0x00, 0x00, 0x07, 0x08, 0x00}, ipv4TCP...)...),
		"EtherType 0x88b5": frame(append([]byte{0x88, 0xb5}, []byte("tapwire local experimental ethertype payload, 64 bytes or so....")...)...),
		"QinQ":             frame(append([]byte{0x88, 0xa8, 0x00, 0x05, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00}, ipv4TCP...)...),
	}
	buf := make([]byte, 2048)
	for name, f := range frames {
		if _, err := unix.Write(tx, f); err != nil {
			t.Fatalf("%s: send: %v", name, err)
		}
		got := false
		for deadline := time.Now().Add(2 * time.Second); !got && time.Now().Before(deadline); {
			n, err := nstest.ReadFrame(rx, buf)
			if err != nil {
				continue // timeout: try again until the deadline
			}
			if n >= 12 && string(buf[6:12]) == string(src) {
				if string(buf[:n]) != string(f) {
					t.Errorf("%s: frame changed on the way:\nsent %x\ngot  %x", name, f, buf[:n])
				}
				got = true
			}
		}
		if !got {
			t.Errorf("%s: frame did not arrive", name)
		}
	}
}
