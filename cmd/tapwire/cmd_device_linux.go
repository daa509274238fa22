package main

import (
	"context"
	"flag"
)

// deviceFlags are the flags of tapwire device's subcommands; each defines
// the ones it takes.
type deviceFlags struct {
	mode, user, group, netns      string
	multiQueue, vnetHdr, pi, json bool
}

func deviceCommand() *command {
	return &command{
		name:  "device",
		usage: "add|del|list|show ...",
		short: "add, delete, list and show TUN/TAP devices (like ip tuntap)",
		long: `Manage TUN/TAP devices, like ip tuntap (and tunctl) but showing everything.

Examples:
  tapwire device add --mode tap --user alice tap-vm0
  tapwire device list
  tapwire device show --json tap-vm0
  tapwire device del tap-vm0
`,
		subs: []*command{deviceAddCommand(), deviceDelCommand(), deviceListCommand(), deviceShowCommand()},
	}
}

func deviceAddCommand() *command {
	var f deviceFlags
	return &command{
		name: "add",
		usage: "[--mode tun|tap] [--user U] [--group G] [--multi-queue]\n" +
			"[--vnet-hdr] [--pi] [--netns NS] [NAME|PATTERN]",
		short: "create a persistent device and print its name",
		long: `Creates a persistent device (default name tun%d or tap%d) and prints its
name. --user and --group let that user or group open it without
CAP_NET_ADMIN (QEMU, user-space stacks).
`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.mode, "mode", "tun", "make a `tun|tap` device: tun for IP packets, tap for Ethernet frames")
			fs.StringVar(&f.user, "user", "", "let the user `U` (a name or uid) open the device without CAP_NET_ADMIN")
			fs.StringVar(&f.group, "group", "", "let the group `G` (a name or gid) open the device without CAP_NET_ADMIN")
			fs.BoolVar(&f.multiQueue, "multi-queue", false, "make a multi-queue device")
			fs.BoolVar(&f.vnetHdr, "vnet-hdr", false, "set the virtio-net header flag (offloads) on the device")
			fs.BoolVar(&f.pi, "pi", false, "keep the 4-byte packet information header")
			fs.StringVar(&f.netns, "netns", "", "create the device in the network namespace `NS`")
		},
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return deviceAdd(inv.stdout, f, inv.args)
		},
	}
}

func deviceDelCommand() *command {
	var f deviceFlags
	return &command{
		name:    "del",
		aliases: []string{"delete"},
		usage:   "[--netns NS] NAME",
		short:   "delete a TUN/TAP device, persistent or held open by a program",
		long: `Deletes a TUN/TAP device, persistent or held open by a program.
`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.netns, "netns", "", "the device is in the network namespace `NS`")
		},
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return deviceDel(f, inv.args)
		},
	}
}

func deviceListCommand() *command {
	var f deviceFlags
	return &command{
		name:    "list",
		aliases: []string{"ls"},
		usage:   "[--json] [--netns NS]",
		short:   "list the namespace's TUN/TAP devices, also those other programs made",
		long: `Lists every TUN/TAP device of the namespace, also those other programs made:
mode, flags, owner, group, queues, MTU, state, addresses, and the
processes holding it open.
`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&f.json, "json", false, "print JSON")
			fs.StringVar(&f.netns, "netns", "", "list the network namespace `NS`")
		},
		run: func(ctx context.Context, inv *invocation) error {
			return deviceList(inv.stdout, f)
		},
	}
}

func deviceShowCommand() *command {
	var f deviceFlags
	return &command{
		name:  "show",
		usage: "[--json] [--netns NS] NAME",
		short: "show one device in full",
		long: `Shows one TUN/TAP device in full: what list shows, one field a line.
`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&f.json, "json", false, "print JSON")
			fs.StringVar(&f.netns, "netns", "", "the device is in the network namespace `NS`")
		},
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return deviceShow(inv.stdout, f, inv.args)
		},
	}
}
