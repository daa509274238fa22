package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/tun"
)

const deviceUsage = `Usage: tapwire device add|del|list|show ...

Manage TUN/TAP devices, like ip tuntap (and tunctl) but showing everything.

  tapwire device add [--mode tun|tap] [--user U] [--group G] [--multi-queue]
                     [--vnet-hdr] [--pi] [--netns NS] [NAME|PATTERN]
      Create a persistent device (default name tun%d or tap%d) and print its
      name. --user and --group let that user or group open it without
      CAP_NET_ADMIN (QEMU, user-space stacks).
  tapwire device del [--netns NS] NAME
      Delete a TUN/TAP device, persistent or held open by a program.
  tapwire device list [--json] [--netns NS]
      Every TUN/TAP device of the namespace, also those other programs made:
      mode, flags, owner, group, queues, MTU, state, addresses, and the
      processes holding it open.
  tapwire device show [--json] [--netns NS] NAME
      One device, in full.

Examples:
  tapwire device add --mode tap --user alice tap-vm0
  tapwire device list
  tapwire device show --json tap-vm0
  tapwire device del tap-vm0
`

func runDevice(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		io.WriteString(stderr, deviceUsage)
		return usageError{"missing subcommand: add, del, list or show"}
	}
	switch args[0] {
	case "-h", "--help", "help":
		io.WriteString(stdout, deviceUsage)
		return nil
	case "add":
		return deviceAdd(stdout, stderr, args[1:])
	case "del", "delete":
		return deviceDel(stdout, stderr, args[1:])
	case "list", "ls":
		return deviceList(stdout, stderr, args[1:])
	case "show":
		return deviceShow(stdout, stderr, args[1:])
	}
	io.WriteString(stderr, deviceUsage)
	return usageError{fmt.Sprintf("unknown subcommand %q", args[0])}
}

// parseMixed parses flags that may come before or after the positional
// arguments (`device add tap0 --mode tap`), and returns the positionals.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func deviceAdd(stdout, stderr io.Writer, args []string) error {
	fs := newFlags("device add", "[--mode tun|tap] [--user U] [--group G] [--multi-queue] [--vnet-hdr] [--pi] [--netns NS] [NAME|PATTERN]", stderr)
	mode := fs.String("mode", "tun", "tun (IP packets) or tap (Ethernet frames)")
	usr := fs.String("user", "", "user name or uid allowed to open the device without CAP_NET_ADMIN")
	grp := fs.String("group", "", "group name or gid allowed to open the device without CAP_NET_ADMIN")
	mq := fs.Bool("multi-queue", false, "make a multi-queue device")
	vnet := fs.Bool("vnet-hdr", false, "set the virtio-net header flag (offloads) on the device")
	pi := fs.Bool("pi", false, "keep the 4-byte packet information header")
	ns := fs.String("netns", "", "network namespace to create the device in")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[1])}
	}
	m, err := tun.ParseMode(*mode)
	if err != nil {
		return usageError{"--mode: " + err.Error()}
	}
	cfg := tun.Config{Mode: m, MultiQueue: *mq, PacketInfo: *pi, NoOffload: !*vnet, Persist: true, Exclusive: true, NetNS: *ns}
	if len(pos) == 1 {
		cfg.Name = pos[0]
	}
	if *usr != "" {
		id, err := lookupID(*usr, true)
		if err != nil {
			return usageError{"--user: " + err.Error()}
		}
		cfg.Owner = &id
	}
	if *grp != "" {
		id, err := lookupID(*grp, false)
		if err != nil {
			return usageError{"--group: " + err.Error()}
		}
		cfg.Group = &id
	}
	if *vnet && *pi {
		return usageError{"--vnet-hdr and --pi cannot be combined"}
	}
	dev, err := tun.Open(cfg)
	if err != nil {
		return err
	}
	name := dev.Name()
	if err := dev.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, name)
	return nil
}

// lookupID resolves a user or group name, or takes a number.
func lookupID(s string, isUser bool) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	var id string
	if isUser {
		u, err := user.Lookup(s)
		if err != nil {
			return 0, err
		}
		id = u.Uid
	} else {
		g, err := user.LookupGroup(s)
		if err != nil {
			return 0, err
		}
		id = g.Gid
	}
	n, err := strconv.ParseUint(id, 10, 32)
	return uint32(n), err
}

func deviceDel(stdout, stderr io.Writer, args []string) error {
	fs := newFlags("device del", "[--netns NS] NAME", stderr)
	ns := fs.String("netns", "", "network namespace of the device")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"give one device name"}
	}
	if _, err := findDevice(*ns, pos[0]); err != nil {
		return err
	}
	nc, err := netconf.Open(*ns)
	if err != nil {
		return err
	}
	defer nc.Close()
	return nc.DelLink(pos[0])
}

// deviceRow is one device as `device list` and `device show` report it.
type deviceRow struct {
	Name           string      `json:"name"`
	Index          int         `json:"index"`
	Mode           string      `json:"mode"`
	Flags          []string    `json:"flags"`
	Owner          *uint32     `json:"owner"`
	Group          *uint32     `json:"group"`
	Queues         int         `json:"queues"`
	DisabledQueues int         `json:"disabled_queues"`
	MTU            int         `json:"mtu"`
	State          string      `json:"state"`
	MAC            string      `json:"mac,omitempty"`
	Addresses      []string    `json:"addresses"`
	Processes      []procEntry `json:"processes"`
}

type procEntry struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

func newDeviceRow(info tun.Info, addrs []string, procs []tun.Process) deviceRow {
	r := deviceRow{
		Name: info.Name, Index: info.Index, Mode: info.Mode.String(), Flags: []string{},
		Owner: info.Owner, Group: info.Group, Queues: info.Queues, DisabledQueues: info.DisabledQueues,
		MTU: info.MTU, State: "DOWN", Addresses: addrs, Processes: []procEntry{},
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{info.PacketInfo, "pi"}, {info.VnetHdr, "vnet_hdr"}, {info.MultiQueue, "multi_queue"}, {info.Persist, "persist"}} {
		if f.on {
			r.Flags = append(r.Flags, f.name)
		}
	}
	if info.Up {
		r.State = "UP"
		if !info.Carrier {
			r.State = "NO-CARRIER"
		}
	}
	if info.HardwareAddr != nil {
		r.MAC = info.HardwareAddr.String()
	}
	if r.Addresses == nil {
		r.Addresses = []string{}
	}
	for _, p := range procs {
		r.Processes = append(r.Processes, procEntry{p.PID, p.Comm})
	}
	if !info.MultiQueue {
		// The kernel counts queues of multi-queue devices only; a
		// single-queue device has one while a program holds it.
		r.Queues = min(len(procs), 1)
	}
	return r
}

// gatherDevices lists the devices of ns with their addresses and holders.
func gatherDevices(ns string) ([]deviceRow, error) {
	infos, err := tun.List(ns)
	if err != nil {
		return nil, err
	}
	nc, err := netconf.Open(ns)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rows := make([]deviceRow, 0, len(infos))
	for _, info := range infos {
		var addrs []string
		if ps, err := nc.Addrs(info.Name); err == nil {
			for _, p := range ps {
				addrs = append(addrs, p.String())
			}
		}
		procs, _ := tun.Holders(info.Name)
		rows = append(rows, newDeviceRow(info, addrs, procs))
	}
	return rows, nil
}

func findDevice(ns, name string) (deviceRow, error) {
	rows, err := gatherDevices(ns)
	if err != nil {
		return deviceRow{}, err
	}
	for _, r := range rows {
		if r.Name == name {
			return r, nil
		}
	}
	where := "this network namespace"
	if ns != "" {
		where = "network namespace " + ns
	}
	return deviceRow{}, fmt.Errorf("no TUN/TAP device %q in %s (tapwire device list shows them)", name, where)
}

func deviceList(stdout, stderr io.Writer, args []string) error {
	fs := newFlags("device list", "[--json] [--netns NS]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	ns := fs.String("netns", "", "network namespace to list")
	if err := parse(fs, args); err != nil {
		return err
	}
	rows, err := gatherDevices(*ns)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	writeDeviceTable(stdout, rows)
	return nil
}

func deviceShow(stdout, stderr io.Writer, args []string) error {
	fs := newFlags("device show", "[--json] [--netns NS] NAME", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	ns := fs.String("netns", "", "network namespace of the device")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"give one device name"}
	}
	r, err := findDevice(*ns, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, r)
	}
	writeDeviceDetail(stdout, r)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func idString(id *uint32) string {
	if id == nil {
		return "-"
	}
	return strconv.FormatUint(uint64(*id), 10)
}

func listOrDash(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ",")
}

func procsString(ps []procEntry) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s(%d)", p.Comm, p.PID))
	}
	return listOrDash(s)
}

func queuesString(r deviceRow) string {
	if r.DisabledQueues > 0 {
		return fmt.Sprintf("%d+%d detached", r.Queues, r.DisabledQueues)
	}
	return strconv.Itoa(r.Queues)
}

func writeDeviceTable(w io.Writer, rows []deviceRow) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no TUN/TAP devices")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODE\tFLAGS\tOWNER\tGROUP\tQUEUES\tMTU\tSTATE\tADDRESSES\tPROCESSES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, r.Mode, listOrDash(r.Flags),
			idString(r.Owner), idString(r.Group), queuesString(r), r.MTU, r.State,
			listOrDash(r.Addresses), procsString(r.Processes))
	}
	tw.Flush()
}

func writeDeviceDetail(w io.Writer, r deviceRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, kv := range [][2]string{
		{"name", r.Name}, {"index", strconv.Itoa(r.Index)}, {"mode", r.Mode}, {"flags", listOrDash(r.Flags)},
		{"owner", idString(r.Owner)}, {"group", idString(r.Group)}, {"queues", queuesString(r)},
		{"mtu", strconv.Itoa(r.MTU)}, {"state", r.State}, {"mac", listOrDash([]string{r.MAC}[:min(len(r.MAC), 1)])},
		{"addresses", listOrDash(r.Addresses)}, {"processes", procsString(r.Processes)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
}
