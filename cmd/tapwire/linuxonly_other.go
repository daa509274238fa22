//go:build !linux

package main

import (
	"context"
	"fmt"
	"runtime"
)

// The commands below work on Linux's TUN/TAP driver, network namespaces
// and packet sockets; on other systems they say so. The tunnel commands
// (up, down, status, genkey, pubkey, genpsk, version) work everywhere.

func demoCommand() *command {
	return linuxOnly("demo", "ping and measure encrypted tunnels between two throw-away namespaces",
		"it runs in network namespaces, which only Linux has")
}

func deviceCommand() *command {
	return linuxOnly("device", "add, delete, list and show TUN/TAP devices (like ip tuntap)",
		"persistent devices, owners and queues are Linux's TUN/TAP driver's; tapwire up makes the device it needs on "+runtime.GOOS)
}

func doctorCommand() *command {
	return linuxOnly("doctor", "say why TUN/TAP does not work on this host, and how to fix it",
		"its checks (/dev/net/tun, capabilities, containers, cgroups) are Linux's")
}

func captureCommand() *command {
	return linuxOnly("capture", "capture packets crossing a TUN/TAP device to pcapng, or print them",
		"it reads devices and interfaces through Linux's packet sockets; on "+runtime.GOOS+" use tcpdump -i IFACE -w FILE.pcap")
}

// linuxOnly is a command that exists only on Linux: it is listed, its help
// says why, and running it fails with that.
func linuxOnly(name, short, why string) *command {
	msg := fmt.Sprintf("tapwire %s works on Linux only: %s", name, why)
	return &command{
		name:     name,
		usage:    "(Linux only)",
		short:    short + " (Linux only)",
		long:     msg + ".\n",
		args:     true,
		unparsed: true,
		run: func(context.Context, *invocation) error {
			return fmt.Errorf("%s (this is %s/%s)", msg, runtime.GOOS, runtime.GOARCH)
		},
	}
}
