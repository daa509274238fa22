//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/tun"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// tapwire runs the CLI in-process and returns its exit status and output.
func tapwire(args ...string) (int, string) {
	var out bytes.Buffer
	code := run(context.Background(), &out, &out, args)
	return code, out.String()
}

func listJSON(t *testing.T, ns string) map[string]deviceRow {
	t.Helper()
	code, out := tapwire("device", "list", "--json", "--netns", ns)
	if code != 0 {
		t.Fatalf("device list: exit %d: %s", code, out)
	}
	var rows []deviceRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("device list --json: %v\n%s", err, out)
	}
	m := map[string]deviceRow{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m
}

func TestDeviceAddListShowDel(t *testing.T) {
	ns := nstest.New(t)
	code, out := tapwire("device", "add", "twdev0", "--netns", ns.Name, "--mode", "tap", "--user", "1234",
		"--group", "4321", "--multi-queue", "--vnet-hdr")
	if code != 0 || strings.TrimSpace(out) != "twdev0" {
		t.Fatalf("device add: exit %d: %s", code, out)
	}
	if code, out := tapwire("device", "add", "--netns", ns.Name, "twdev0"); code != 1 || !strings.Contains(out, "in use") {
		t.Errorf("adding an existing name: exit %d: %s", code, out)
	}
	code, out = tapwire("device", "add", "--netns", ns.Name, "--pi", "twpat%d")
	if code != 0 || strings.TrimSpace(out) != "twpat0" {
		t.Fatalf("device add with a pattern: exit %d: %s", code, out)
	}
	// Devices tapwire did not make: one by ip tuntap, one held open here.
	ns.Run("ip", "tuntap", "add", "dev", "twip0", "mode", "tun", "user", "0", "pi")
	held, err := tun.Open(tun.Config{Name: "twheld0", NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ns.Run("ip", "addr", "add", "192.0.2.1/24", "dev", "twheld0")
	ns.Run("ip", "link", "set", "twheld0", "up")
	ns.Run("ip", "link", "add", "twveth0", "type", "veth", "peer", "name", "twveth1")

	devs := listJSON(t, ns.Name)
	if len(devs) != 4 {
		t.Fatalf("device list shows %d devices, want 4 (no veth): %v", len(devs), devs)
	}
	d := devs["twdev0"]
	if d.Mode != "tap" || !slices.Equal(d.Flags, []string{"vnet_hdr", "multi_queue", "persist"}) ||
		d.Owner == nil || *d.Owner != 1234 || d.Group == nil || *d.Group != 4321 || d.MAC == "" {
		t.Errorf("twdev0: %+v", d)
	}
	p := devs["twpat0"]
	if p.Mode != "tun" || !slices.Equal(p.Flags, []string{"pi", "persist"}) || p.Owner != nil || p.Group != nil {
		t.Errorf("twpat0: %+v", p)
	}
	ip := devs["twip0"]
	if ip.Mode != "tun" || !slices.Equal(ip.Flags, []string{"pi", "persist"}) || ip.Owner == nil || *ip.Owner != 0 {
		t.Errorf("twip0 (made by ip tuntap): %+v", ip)
	}
	h := devs["twheld0"]
	if h.State != "UP" || h.Queues != 1 || !slices.Contains(h.Addresses, "192.0.2.1/24") ||
		len(h.Processes) == 0 || h.Processes[0].PID != os.Getpid() || slices.Contains(h.Flags, "persist") {
		t.Errorf("twheld0: %+v", h)
	}

	code, out = tapwire("device", "list", "--netns", ns.Name)
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "twheld0") {
		t.Errorf("device list: exit %d:\n%s", code, out)
	}
	code, out = tapwire("device", "show", "--netns", ns.Name, "twdev0")
	if code != 0 || !strings.Contains(out, "owner:     1234") {
		t.Errorf("device show: exit %d:\n%s", code, out)
	}

	for _, name := range []string{"twdev0", "twip0", "twpat0"} {
		if code, out := tapwire("device", "del", "--netns", ns.Name, name); code != 0 {
			t.Errorf("device del %s: exit %d: %s", name, code, out)
		}
	}
	if code, out := tapwire("device", "del", "--netns", ns.Name, "twdev0"); code != 1 || !strings.Contains(out, "no TUN/TAP device") {
		t.Errorf("deleting a missing device: exit %d: %s", code, out)
	}
	if code, out := tapwire("device", "del", "--netns", ns.Name, "twveth0"); code != 1 {
		t.Errorf("deleting a veth: exit %d: %s", code, out)
	}
	if devs := listJSON(t, ns.Name); len(devs) != 1 {
		t.Errorf("after del: %v", devs)
	}
}

func TestDeviceUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"device"}, {"device", "frob"}, {"device", "add", "--mode", "eth"}, {"device", "add", "a", "b"},
		{"device", "del"}, {"device", "show"}, {"device", "add", "--vnet-hdr", "--pi"},
		{"device", "add", "--user", "no-such-user-here"},
	} {
		if code, out := tapwire(args...); code != 2 {
			t.Errorf("tapwire %v: exit %d, want 2: %s", args, code, out)
		}
	}
}

func TestDeviceTableGolden(t *testing.T) {
	uid, gid := uint32(1000), uint32(27)
	rows := []deviceRow{
		newDeviceRow(tun.Info{Name: "tap-vm0", Index: 3, Mode: tun.ModeTAP, MTU: 1500, Persist: true, VnetHdr: true,
			Owner: &uid, HardwareAddr: []byte{2, 0, 0x5e, 0, 0x53, 1}}, nil, nil),
		newDeviceRow(tun.Info{Name: "tun0", Index: 4, MTU: 1420, Up: true, Carrier: true, MultiQueue: true, Queues: 2,
			DisabledQueues: 1, Group: &gid}, []string{"192.0.2.1/24", "2001:db8::1/64"},
			[]tun.Process{{PID: 4242, Comm: "tapwire"}}),
		newDeviceRow(tun.Info{Name: "tun1", Index: 5, MTU: 1500, Up: true, PacketInfo: true}, nil,
			[]tun.Process{{PID: 77, Comm: "openvpn"}}),
	}
	var buf bytes.Buffer
	writeDeviceTable(&buf, rows)
	golden(t, "device-list.golden", buf.String())
	buf.Reset()
	writeDeviceDetail(&buf, rows[1])
	golden(t, "device-show.golden", buf.String())
}
