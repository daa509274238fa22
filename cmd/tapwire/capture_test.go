//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
)

func TestCaptureUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"capture", "-h"}, 0, "Examples:"},
		{[]string{"help", "capture"}, 0, "Usage: tapwire capture"},
		{[]string{"capture", "--mode", "tup"}, 2, "--mode"},
		{[]string{"capture", "--addr", "192.0.2.1"}, 2, "--addr"},
		{[]string{"capture", "--addr", "192.0.2.1/24,nonsense"}, 2, "--addr"},
		{[]string{"capture", "--iface", "eth0", "--mode", "tap"}, 2, "one or the other"},
		{[]string{"capture", "--iface", "eth0", "--addr", "192.0.2.1/24"}, 2, "one or the other"},
		{[]string{"capture", "--iface="}, 2, "--iface needs"},
		{[]string{"capture", "--dev", "much-too-long-name"}, 2, "--dev"},
		{[]string{"capture", "--proto", "icmp,sctp"}, 2, "unknown protocol"},
		{[]string{"capture", "--host", "nohost"}, 2, "bad host"},
		{[]string{"capture", "--port", "65536"}, 2, "bad port"},
		{[]string{"capture", "-c", "-1"}, 2, "-c"},
		{[]string{"capture", "--duration", "-1s"}, 2, "--duration"},
		{[]string{"capture", "--duration", "soon"}, 2, "invalid value"},
		{[]string{"capture", "stray"}, 2, "unexpected argument"},
		// Failures, not usage errors; a namespace that does not exist
		// keeps these away from the host's network.
		{[]string{"capture", "--netns", "/nonexistent/ns", "--iface", "eth0"}, 1, "/nonexistent/ns"},
		{[]string{"capture", "--netns", "/nonexistent/ns", "--mode", "tap"}, 1, "/nonexistent/ns"},
	} {
		var out bytes.Buffer
		code := run(context.Background(), &out, &out, tc.args)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("tapwire %q: exit %d, want %d; output lacks %q?\n%s", tc.args, code, tc.code, tc.out, out.String())
		}
	}
}

// An interface that is not there: the error says which namespace was
// searched and how to list what it has, not "route ip+net: no such network
// interface".
func TestCaptureNoInterface(t *testing.T) {
	const name = "twnosuch0"
	// This namespace: only its list of interfaces is read.
	if _, err := net.InterfaceByName(name); err == nil {
		t.Skipf("this namespace has an interface %s", name)
	}
	code, out := tapwire("capture", "--iface", name)
	if code != 1 {
		t.Errorf("exit %d, want 1: %s", code, out)
	}
	wantAll(t, "the error", out, `tapwire capture: no interface "twnosuch0" in this network namespace (ip link lists its interfaces, `+
		"tapwire device list its TUN/TAP devices; --netns NS looks in another namespace)\n")

	nstest.RequireRoot(t)
	ns := nstest.New(t)
	code, out = tapwire("capture", "--netns", ns.Name, "--iface", name)
	if code != 1 {
		t.Errorf("--netns %s: exit %d, want 1: %s", ns.Name, code, out)
	}
	wantAll(t, "the error", out, `no interface "twnosuch0" in network namespace `+ns.Name+
		" (ip -n "+ns.Name+" link lists its interfaces, tapwire device list --netns "+ns.Name+" its TUN/TAP devices)")
	code, out = tapwire("capture", "--netns", ns.Path(), "--iface", name)
	if code != 1 {
		t.Errorf("--netns %s: exit %d, want 1: %s", ns.Path(), code, out)
	}
	wantAll(t, "the error", out, `no interface "twnosuch0" in network namespace `+ns.Path()+
		" (nsenter --net="+ns.Path()+" ip link lists its interfaces, tapwire device list --netns "+ns.Path()+" its TUN/TAP devices)")
}

func TestCaptureTUN(t *testing.T) {
	ns := captureNS(t)
	file := filepath.Join(t.TempDir(), "tun.pcapng")
	c := startCapture(t, "--netns", ns.Name, "--mode", "tun", "--addr", "192.0.2.1/24", "-c", "3", "-w", file)
	ns.Output("ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.2") // no replies: nothing answers
	if code := c.wait(t); code != 0 {
		t.Fatalf("capture exited %d:\n%s", code, c.stderr)
	}
	if want := "3 packets captured, 3 written to " + file; !strings.Contains(c.stderr.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, c.stderr)
	}
	if c.stdout.String() != "" {
		t.Errorf("printed without --print:\n%s", c.stdout)
	}
	got := captureTshark(t, file, "-T", "fields", "-e", "ip.dst", "-e", "icmp.type", "-e", "frame.protocols", "-e", "frame.interface_name")
	want := strings.Repeat("192.0.2.2\t8\traw:ip:icmp:data\ttwcap0\n", 3)
	if got != want {
		t.Errorf("tshark reads:\n%s\nwant:\n%s", got, want)
	}
}

func TestCaptureTAPARP(t *testing.T) {
	ns := captureNS(t)
	// pcapng on stdout, lines on stderr.
	c := startCapture(t, "--netns", ns.Name, "--mode", "tap", "--addr", "192.0.2.1/24", "--proto", "arp", "-c", "1", "-w", "-", "--print")
	ns.Output("ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.2")
	if code := c.wait(t); code != 0 {
		t.Fatalf("capture exited %d:\n%s", code, c.stderr)
	}
	if want := " Out ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28\n"; !strings.Contains(c.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, c.stderr)
	}
	if want := "1 packet captured, 1 written to stdout"; !strings.Contains(c.stderr.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, c.stderr)
	}
	file := filepath.Join(t.TempDir(), "tap.pcapng")
	if err := os.WriteFile(file, c.stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := captureTshark(t, file, "-Y", "arp", "-T", "fields", "-e", "arp.opcode", "-e", "arp.dst.proto_ipv4", "-e", "arp.src.proto_ipv4", "-e", "frame.protocols")
	if want := "1\t192.0.2.2\t192.0.2.1\teth:ethertype:arp\n"; got != want {
		t.Errorf("tshark reads:\n%s\nwant:\n%s", got, want)
	}
}

// --iface watches an existing interface in both directions: here one end of
// a veth pair between two namespaces, pinged across.
func TestCaptureIface(t *testing.T) {
	ns1 := captureNS(t)
	ns2 := nstest.New(t)
	ns1.Run("ip", "link", "add", "twva", "type", "veth", "peer", "name", "twvb", "netns", ns2.Name)
	ns1.Run("ip", "addr", "add", "192.0.2.1/24", "dev", "twva")
	ns1.Run("ip", "link", "set", "twva", "up")
	ns2.Run("ip", "addr", "add", "192.0.2.2/24", "dev", "twvb")
	ns2.Run("ip", "link", "set", "twvb", "up")

	file := filepath.Join(t.TempDir(), "veth.pcapng")
	c := startCapture(t, "--netns", ns1.Name, "--iface", "twva", "--proto", "icmp", "-c", "6", "-w", file, "--print")
	if out, err := ns1.Output("ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.2"); err != nil {
		t.Fatalf("ping across the veth pair: %v\n%s", err, out)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("capture exited %d:\n%s", code, c.stderr)
	}
	for _, want := range []string{
		" Out IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id ",
		" In IP 192.0.2.2 > 192.0.2.1: ICMP echo reply, id ",
	} {
		if n := strings.Count(c.stdout.String(), want); n != 3 {
			t.Errorf("%d printed lines with %q, want 3:\n%s", n, want, c.stdout)
		}
	}
	got := captureTshark(t, file, "-T", "fields", "-e", "ip.dst", "-e", "icmp.type", "-e", "frame.protocols")
	want := strings.Repeat("192.0.2.2\t8\teth:ethertype:ip:icmp:data\n192.0.2.1\t0\teth:ethertype:ip:icmp:data\n", 3)
	if got != want {
		t.Errorf("tshark reads:\n%s\nwant:\n%s", got, want)
	}
}

// Ctrl-C (a cancelled context) ends the capture normally, with a complete
// file of the packets so far, and removes the device.
func TestCaptureInterrupt(t *testing.T) {
	ns := captureNS(t)
	file := filepath.Join(t.TempDir(), "interrupted.pcapng")
	c := startCapture(t, "--netns", ns.Name, "--mode", "tun", "--addr", "192.0.2.1/24", "-w", file, "--print")
	ns.Output("ping", "-c", "2", "-i", "0.2", "-W", "1", "192.0.2.2")
	captureWaitFor(t, "2 printed lines", func() bool { return strings.Count(c.stdout.String(), "\n") >= 2 })
	c.cancel()
	if code := c.wait(t); code != 0 {
		t.Fatalf("capture exited %d after Ctrl-C:\n%s", code, c.stderr)
	}
	if want := "2 packets captured, 2 written to " + file; !strings.Contains(c.stderr.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, c.stderr)
	}
	got := captureTshark(t, file, "-T", "fields", "-e", "ip.dst", "-e", "icmp.type", "-e", "icmp.seq")
	if want := "192.0.2.2\t8\t1\n192.0.2.2\t8\t2\n"; got != want {
		t.Errorf("tshark reads:\n%s\nwant:\n%s", got, want)
	}
	if out, err := ns.Output("ip", "link", "show", "twcap0"); err == nil {
		t.Errorf("the device outlived the capture:\n%s", out)
	}
}

// captureNS makes a namespace for a capture test, whose new interfaces have
// no IPv6 (so that the kernel sends nothing the test does not provoke),
// after checking for root and tshark, and guards the host's network.
func captureNS(t *testing.T) *nstest.NS {
	t.Helper()
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("needs tshark to read the capture files (apt-get install tshark)")
	}
	nstest.GuardHost(t)
	ns := nstest.New(t)
	ns.Run("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
	return ns
}

// captureTshark reads file with tshark and returns its standard output.
func captureTshark(t *testing.T, file string, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", append([]string{"-n", "-r", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", file, err, stderr.String())
	}
	return string(out)
}

// captureBuffer is a buffer that a capture writes while the test reads it.
type captureBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *captureBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *captureBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *captureBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// captureRun is `tapwire capture` running in the test process.
type captureRun struct {
	stdout, stderr *captureBuffer
	cancel         context.CancelFunc // Ctrl-C
	done           chan int           // the exit status
}

// startCapture runs tapwire capture with args and returns once it is
// capturing.
func startCapture(t *testing.T, args ...string) *captureRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &captureRun{stdout: new(captureBuffer), stderr: new(captureBuffer), cancel: cancel, done: make(chan int, 1)}
	go func() { c.done <- run(ctx, c.stdout, c.stderr, append([]string{"capture"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Error("capture did not stop when cancelled")
		}
	})
	for !strings.Contains(c.stderr.String(), "capturing on") {
		select {
		case code := <-c.done:
			c.done <- code
			t.Fatalf("capture exited %d before capturing:\n%s", code, c.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return c
}

// wait returns the exit status, failing the test if it takes too long.
func (c *captureRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.done:
		c.done <- code // for the cleanup
		return code
	case <-time.After(20 * time.Second):
		c.cancel()
		t.Fatalf("capture still running after 20s:\n%s", c.stderr)
	}
	return -1
}

func captureWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
