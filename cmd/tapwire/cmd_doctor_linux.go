package main

import (
	"context"
	"flag"
)

// doctorFlags are the flags of tapwire doctor.
type doctorFlags struct {
	json, fix bool
}

func doctorCommand() *command {
	var f doctorFlags
	return &command{
		name:  "doctor",
		usage: "[--json] [--fix]",
		short: "say why TUN/TAP does not work on this host, and how to fix it",
		long: `Says why TUN/TAP does not work on this host, and the exact fix. It checks
/dev/net/tun, CAP_NET_ADMIN, the container or VPS it runs in (Docker, Podman,
LXC, OpenVZ/Virtuozzo, systemd-nspawn, Kubernetes), the devices cgroup and the
kernel's TUN/TAP driver, then creates and deletes a TUN and a TAP device for
real. Each problem comes with its cause and a fix written for the environment
found.

Exit status: 0 if a TUN and a TAP device can be created, 1 if not.

Examples:
  sudo tapwire doctor           # diagnose, as the program that needs TUN/TAP would run
  tapwire doctor --json         # the same, as JSON (fields id, status, summary, cause, fix; usable)
  sudo tapwire doctor --fix     # also create /dev/net/tun if it is missing, then check again
`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&f.json, "json", false, "print the results as JSON")
			fs.BoolVar(&f.fix, "fix", false, "create /dev/net/tun (c 10:200, mode 0666) when it is missing (needs root), then check again")
		},
		run: func(ctx context.Context, inv *invocation) error {
			return runDoctor(ctx, inv.stdout, inv.stderr, f)
		},
	}
}
