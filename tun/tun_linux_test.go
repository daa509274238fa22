package tun_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/tun"
)

// openIn opens a device in ns and closes it at the end of the test.
func openIn(t *testing.T, ns *nstest.NS, cfg tun.Config) *tun.Device {
	t.Helper()
	cfg.NetNS = ns.Name
	dev, err := tun.Open(cfg)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

// sysfs reads /sys/class/net/NAME/FILE as seen inside ns.
func sysfs(t *testing.T, ns *nstest.NS, name, file string) string {
	t.Helper()
	return strings.TrimSpace(ns.Run("cat", "/sys/class/net/"+name+"/"+file))
}

func linkExists(ns *nstest.NS, name string) bool {
	_, err := ns.Output("ip", "link", "show", "dev", name)
	return err == nil
}

func TestOpenPatternAndModes(t *testing.T) {
	ns := nstest.New(t)
	for _, mode := range []tun.Mode{tun.ModeTUN, tun.ModeTAP} {
		dev := openIn(t, ns, tun.Config{Mode: mode})
		if want := mode.String() + "0"; dev.Name() != want {
			t.Errorf("mode %v: name %q, want %q", mode, dev.Name(), want)
		}
		dev2 := openIn(t, ns, tun.Config{Name: "tw" + mode.String() + "%d", Mode: mode})
		if want := "tw" + mode.String() + "0"; dev2.Name() != want {
			t.Errorf("pattern: name %q, want %q", dev2.Name(), want)
		}
		if dev.Mode() != mode || dev.PacketInfo() || dev.MultiQueue() {
			t.Errorf("mode %v: got mode %v pi %v mq %v", mode, dev.Mode(), dev.PacketInfo(), dev.MultiQueue())
		}
		// tun_flags: IFF_TUN/IFF_TAP | IFF_NO_PI, as the kernel reports it.
		flags, err := strconv.ParseUint(strings.TrimPrefix(sysfs(t, ns, dev.Name(), "tun_flags"), "0x"), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(unix.IFF_TUN | unix.IFF_NO_PI)
		if mode == tun.ModeTAP {
			want = unix.IFF_TAP | unix.IFF_NO_PI
		}
		if dev.Offloads().VnetHdr {
			want |= unix.IFF_VNET_HDR
		}
		if flags != want {
			t.Errorf("mode %v: tun_flags %#x, want %#x", mode, flags, want)
		}
	}
	// The devices live in ns only.
	if _, err := net.InterfaceByName("twtun0"); err == nil {
		t.Error("device leaked into the test's own namespace")
	}
}

func TestOptionsSeenFromOutside(t *testing.T) {
	ns := nstest.New(t)
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	dev := openIn(t, ns, tun.Config{
		Name: "twopt0", Mode: tun.ModeTAP, Queues: 2, Persist: true,
		Owner: tun.ID(1234), Group: tun.ID(4321), PacketInfo: true,
		MAC: mac, MTU: 1400, SendBuffer: 1 << 20, CarrierOff: true,
	})
	t.Cleanup(func() { dev.SetPersist(false) })
	if got := sysfs(t, ns, "twopt0", "owner"); got != "1234" {
		t.Errorf("owner %q", got)
	}
	if got := sysfs(t, ns, "twopt0", "group"); got != "4321" {
		t.Errorf("group %q", got)
	}
	flags, _ := strconv.ParseUint(strings.TrimPrefix(sysfs(t, ns, "twopt0", "tun_flags"), "0x"), 16, 32)
	if want := uint64(unix.IFF_TAP | unix.IFF_MULTI_QUEUE | unix.IFF_PERSIST); flags != want {
		t.Errorf("tun_flags %#x, want %#x", flags, want)
	}
	ns.Run("ip", "link", "set", "twopt0", "up")
	out := ns.Run("ip", "-d", "link", "show", "dev", "twopt0")
	for _, want := range []string{"mtu 1400", "NO-CARRIER", "link/ether " + mac.String(),
		"tun type tap pi on vnet_hdr off multi_queue numqueues 2 numdisabled 0 persist on user 1234 group 4321"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -d link show lacks %q:\n%s", want, out)
		}
	}
	if n, err := dev.SendBuffer(); err != nil || n != 1<<20 {
		t.Errorf("SendBuffer = %d, %v", n, err)
	}
	if got, err := dev.HardwareAddr(); err != nil || got.String() != mac.String() {
		t.Errorf("HardwareAddr = %v, %v", got, err)
	}
	if err := dev.SetCarrier(true); err != nil {
		t.Fatal(err)
	}
	info, err := dev.Info()
	if err != nil {
		t.Fatal(err)
	}
	if !info.Carrier || info.MTU != 1400 || info.Mode != tun.ModeTAP || !info.PacketInfo || !info.Persist ||
		!info.MultiQueue || info.Queues != 2 || info.DisabledQueues != 0 {
		t.Errorf("Info = %+v", info)
	}
	if err := dev.SetMTU(1280); err != nil {
		t.Fatal(err)
	}
	if mtu, err := dev.MTU(); err != nil || mtu != 1280 {
		t.Errorf("MTU = %d, %v", mtu, err)
	}
}

func TestExclusive(t *testing.T) {
	ns := nstest.New(t)
	openIn(t, ns, tun.Config{Name: "twex0"})
	_, err := tun.Open(tun.Config{Name: "twex0", Exclusive: true, NetNS: ns.Name})
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("exclusive open of an existing name: %v, want EBUSY", err)
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error has no hint: %v", err)
	}
	// A name that is taken by a non-TUN interface.
	ns.Run("ip", "link", "add", "twdummy", "type", "veth", "peer", "name", "twdummy1")
	_, err = tun.Open(tun.Config{Name: "twdummy", NetNS: ns.Name})
	if err == nil {
		t.Fatal("opened a TUN device over a dummy interface")
	}
	// Mismatched mode against an existing device.
	_, err = tun.Open(tun.Config{Name: "twex0", Mode: tun.ModeTAP, NetNS: ns.Name})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "TUN vs TAP") {
		t.Errorf("TAP over TUN: %v", err)
	}
}

func TestPersistAndAttach(t *testing.T) {
	ns := nstest.New(t)
	dev := openIn(t, ns, tun.Config{Name: "twp0", Mode: tun.ModeTAP, Persist: true, MultiQueue: true})
	dev.Close()
	if !linkExists(ns, "twp0") {
		t.Fatal("persistent device vanished on close")
	}
	t.Cleanup(func() { ns.Output("ip", "link", "del", "twp0") })

	if _, err := tun.Attach(tun.Config{Name: "twnone", NetNS: ns.Name}); err == nil {
		t.Fatal("Attach created a device")
	}
	if linkExists(ns, "twnone") {
		t.Fatal("Attach left a device behind")
	}
	// Attach learns the mode and multi-queue flag from the device.
	dev, err := tun.Attach(tun.Config{Name: "twp0", NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	if dev.Mode() != tun.ModeTAP || !dev.MultiQueue() {
		t.Errorf("attached mode %v mq %v", dev.Mode(), dev.MultiQueue())
	}
	if err := dev.SetPersist(false); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	if linkExists(ns, "twp0") {
		t.Fatal("device survived SetPersist(false) and Close")
	}
}

func TestFromFD(t *testing.T) {
	ns := nstest.New(t)
	dev := openIn(t, ns, tun.Config{Name: "twfd0", Mode: tun.ModeTAP, Persist: true})
	t.Cleanup(func() { ns.Output("ip", "link", "del", "twfd0") })
	dev.Close()

	// Open a raw descriptor the way another program would, then wrap it.
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, _ := unix.NewIfreq("twfd0")
		ifr.SetUint16(unix.IFF_TAP)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := tun.FromFD(fd)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	defer wrapped.Close()
	if wrapped.Name() != "twfd0" || wrapped.Mode() != tun.ModeTAP || !wrapped.PacketInfo() {
		t.Errorf("wrapped: name %q mode %v pi %v", wrapped.Name(), wrapped.Mode(), wrapped.PacketInfo())
	}
	if _, err := tun.FromFD(0); err == nil {
		t.Error("FromFD accepted standard input")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	ns := nstest.New(t)
	type result struct {
		err error
		at  time.Time // when the read returned, seen by the reader itself
	}
	for _, batch := range []bool{false, true} {
		// The bar is 100 ms. The machines are shared and noisy, so a
		// slow wake-up is tried again twice before it counts as a failure;
		// a read that never returns, or returns the wrong error, fails at once.
		var slowest time.Duration
		ok := false
		for attempt := 0; attempt < 3 && !ok; attempt++ {
			dev := openIn(t, ns, tun.Config{Name: "twcl%d"})
			done := make(chan result, 1)
			go func() {
				buf := make([]byte, 2048)
				var err error
				if batch {
					_, err = dev.ReadBatch([][]byte{buf}, []int{0}, tun.Headroom)
				} else {
					_, err = dev.Read(buf)
				}
				done <- result{err, time.Now()}
			}()
			select {
			case r := <-done:
				t.Fatalf("Read returned before Close: %v", r.err)
			case <-time.After(time.Second):
			}
			start := time.Now()
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if !errors.Is(r.err, tun.ErrClosed) {
					t.Fatalf("batch=%v: Read after Close: %v, want ErrClosed", batch, r.err)
				}
				d := r.at.Sub(start)
				slowest = max(slowest, d)
				ok = d <= 100*time.Millisecond
			case <-time.After(5 * time.Second):
				t.Fatalf("batch=%v: Read still blocked 5 s after Close", batch)
			}
			if _, err := dev.Write([]byte{0x45}); !errors.Is(err, tun.ErrClosed) {
				t.Errorf("Write after Close: %v", err)
			}
			if err := dev.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		}
		if !ok {
			t.Errorf("batch=%v: Read took more than 100 ms to return after Close in 3 tries (up to %v)", batch, slowest)
		}
	}
}

func TestDeadline(t *testing.T) {
	ns := nstest.New(t)
	dev := openIn(t, ns, tun.Config{Name: "twdl0"})
	if err := dev.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_, err := dev.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline: %v", err)
	}
	// The OpError itself, not only the poller's error inside it, is the
	// net.Error that errors.As finds.
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error with Timeout()", err)
	} else if _, ok := ne.(*tun.OpError); !ok {
		t.Errorf("errors.As found %T, want *tun.OpError", ne)
	}
	_, err = dev.ReadBatch([][]byte{buf}, []int{0}, 0)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadBatch past deadline: %v", err)
	}
	// Clearing the deadline makes reads block again.
	dev.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := dev.Read(buf); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Read returned with no deadline: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	dev.Close()
	<-done
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestOpenCloseLeaksNoFD(t *testing.T) {
	ns := nstest.New(t)
	// Warm up anything lazily opened (netlink sockets, the poller).
	openIn(t, ns, tun.Config{Name: "twleak%d"}).Close()
	before := countFDs(t)
	for i := 0; i < 1000; i++ {
		cfg := tun.Config{Name: "twleak%d", NetNS: ns.Name}
		if i%2 == 1 {
			cfg.Mode, cfg.Queues = tun.ModeTAP, 2
		}
		dev, err := tun.Open(cfg)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := dev.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", i, err)
		}
	}
	// Failed opens must not leak either.
	for i := 0; i < 50; i++ {
		if _, err := tun.Open(tun.Config{Name: "lo", NetNS: ns.Name}); err == nil {
			t.Fatal("opened lo as a TUN device")
		}
	}
	if after := countFDs(t); after != before {
		t.Errorf("open descriptors: %d before, %d after 1000 cycles", before, after)
	}
	if out := ns.Run("ip", "-o", "link", "show", "type", "tun"); strings.TrimSpace(out) != "" {
		t.Errorf("devices left behind:\n%s", out)
	}
}

func TestMultiQueueDetachAttach(t *testing.T) {
	ns := nstest.New(t)
	dev := openIn(t, ns, tun.Config{Name: "twmq0", Queues: 2})
	if got := len(dev.Queues()); got != 2 {
		t.Fatalf("%d queues", got)
	}
	q1 := dev.Queue(1)
	readErr := make(chan error, 1)
	go func() {
		_, err := q1.Read(make([]byte, 2048))
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := q1.Detach(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, tun.ErrDetached) {
			t.Errorf("blocked read on detached queue: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read stayed blocked after Detach")
	}
	info, err := dev.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Queues != 1 || info.DisabledQueues != 1 {
		t.Errorf("after detach: %d queues, %d disabled", info.Queues, info.DisabledQueues)
	}
	if _, err := q1.Write([]byte{0x45}); !errors.Is(err, tun.ErrDetached) {
		t.Errorf("write on detached queue: %v", err)
	}
	if err := q1.Attach(); err != nil {
		t.Fatal(err)
	}
	q2, err := dev.AddQueue()
	if err != nil {
		t.Fatal(err)
	}
	info, _ = dev.Info()
	if info.Queues != 3 || info.DisabledQueues != 0 {
		t.Errorf("after attach and add: %d queues, %d disabled", info.Queues, info.DisabledQueues)
	}
	if !strings.Contains(ns.Run("ip", "-d", "link", "show", "twmq0"), "numqueues 3") {
		t.Error("ip -d link show does not report 3 queues")
	}
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(dev.Queues()); got != 2 {
		t.Errorf("%d queues after closing one", got)
	}
	// Single-queue devices cannot grow.
	single := openIn(t, ns, tun.Config{Name: "twsq0"})
	if _, err := single.AddQueue(); err == nil {
		t.Error("AddQueue on a single-queue device succeeded")
	}
}

func TestDeviceRemoved(t *testing.T) {
	ns := nstest.New(t)
	dev := openIn(t, ns, tun.Config{Name: "twrm0"})
	done := make(chan error, 1)
	go func() { _, err := dev.Read(make([]byte, 2048)); done <- err }()
	time.Sleep(50 * time.Millisecond)
	ns.Run("ip", "link", "del", "twrm0")
	select {
	case err := <-done:
		if !errors.Is(err, tun.ErrDeviceRemoved) {
			t.Errorf("read after ip link del: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read stayed blocked after the interface was deleted")
	}
}

func TestProbeFeatures(t *testing.T) {
	nstest.RequireRoot(t)
	f, err := tun.ProbeFeatures()
	if err != nil {
		t.Fatal(err)
	}
	if !f.TUN || !f.TAP || !f.NoPI || !f.MultiQueue || !f.VnetHdr {
		t.Errorf("features of a modern kernel missing: %+v", f)
	}
}

func TestOpenErrorsHaveHints(t *testing.T) {
	if os.Getenv("TAPWIRE_TEST_CHILD") == "unprivileged" {
		// Runs as nobody, holding a /dev/net/tun descriptor from the parent.
		ifr, _ := unix.NewIfreq("twpriv0")
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err := unix.IoctlIfreq(3, unix.TUNSETIFF, ifr)
		os.Stdout.WriteString(tun.ErrorForTest("create or attach", "twpriv0", err).Error())
		os.Exit(0)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	ns := nstest.New(t)
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	self, _ := os.Executable()
	cmd := ns.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		self, "-test.run=^TestOpenErrorsHaveHints$")
	cmd.Env = append(os.Environ(), "TAPWIRE_TEST_CHILD=unprivileged")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "operation not permitted") || !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Errorf("unprivileged create: %s", out)
	}
}

func TestListAndHolders(t *testing.T) {
	ns := nstest.New(t)
	openIn(t, ns, tun.Config{Name: "twls0", Owner: tun.ID(1234)})
	openIn(t, ns, tun.Config{Name: "twls1", Mode: tun.ModeTAP, Group: tun.ID(0), NoOffload: true, Queues: 2})
	ns.Run("ip", "tuntap", "add", "dev", "twls2", "mode", "tap", "user", "0", "multi_queue")
	ns.Run("ip", "link", "add", "twveth0", "type", "veth", "peer", "name", "twveth1")
	infos, err := tun.List(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("List found %d devices, want 3 (no veths): %+v", len(infos), infos)
	}
	a, b, c := infos[0], infos[1], infos[2]
	if a.Name != "twls0" || a.Mode != tun.ModeTUN || a.Owner == nil || *a.Owner != 1234 || a.Group != nil ||
		a.Persist || a.Queues != 0 || !a.VnetHdr {
		t.Errorf("twls0: %+v", a)
	}
	if b.Name != "twls1" || b.Mode != tun.ModeTAP || b.Owner != nil || b.Group == nil || *b.Group != 0 ||
		!b.MultiQueue || b.Queues != 2 || b.VnetHdr || len(b.HardwareAddr) != 6 {
		t.Errorf("twls1: %+v", b)
	}
	if c.Name != "twls2" || c.Mode != tun.ModeTAP || !c.Persist || c.Queues != 0 || c.Owner == nil || *c.Owner != 0 || !c.MultiQueue {
		t.Errorf("twls2 (made by ip tuntap): %+v", c)
	}
	holders, err := tun.Holders("twls0")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range holders {
		found = found || p.PID == os.Getpid()
	}
	if !found {
		t.Errorf("Holders(twls0) = %+v, lacks this process %d", holders, os.Getpid())
	}
	if h, _ := tun.Holders("twls2"); len(h) != 0 {
		t.Errorf("a persistent device nobody holds has holders: %+v", h)
	}
}
