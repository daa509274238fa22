package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/tun"
)

// deviceAdd is tapwire device add [NAME|PATTERN] (pos).
func deviceAdd(stdout io.Writer, f deviceFlags, pos []string) error {
	if len(pos) > 1 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[1])}
	}
	m, err := tun.ParseMode(f.mode)
	if err != nil {
		return usageError{"--mode: " + err.Error()}
	}
	cfg := tun.Config{Mode: m, MultiQueue: f.multiQueue, PacketInfo: f.pi, NoOffload: !f.vnetHdr, Persist: true, Exclusive: true, NetNS: f.netns}
	if len(pos) == 1 {
		cfg.Name = pos[0]
	}
	if f.user != "" {
		id, err := lookupID(f.user, true)
		if err != nil {
			return usageError{"--user: " + err.Error()}
		}
		cfg.Owner = &id
	}
	if f.group != "" {
		id, err := lookupID(f.group, false)
		if err != nil {
			return usageError{"--group: " + err.Error()}
		}
		cfg.Group = &id
	}
	if f.vnetHdr && f.pi {
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

// deviceDel is tapwire device del NAME (pos).
func deviceDel(f deviceFlags, pos []string) error {
	if len(pos) != 1 {
		return usageError{"give one device name"}
	}
	if _, err := findDevice(f.netns, pos[0]); err != nil {
		return err
	}
	nc, err := netconf.Open(f.netns)
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

// deviceList is tapwire device list.
func deviceList(stdout io.Writer, f deviceFlags) error {
	rows, err := gatherDevices(f.netns)
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(stdout, rows)
	}
	writeDeviceTable(stdout, rows)
	return nil
}

// deviceShow is tapwire device show NAME (pos).
func deviceShow(stdout io.Writer, f deviceFlags, pos []string) error {
	if len(pos) != 1 {
		return usageError{"give one device name"}
	}
	r, err := findDevice(f.netns, pos[0])
	if err != nil {
		return err
	}
	if f.json {
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
