package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tapwire/tapwire/doctor"
)

const doctorHelp = `
Says why TUN/TAP does not work on this host, and the exact fix. It checks
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
`

func runDoctor(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("doctor", "[--json] [--fix]", stderr)
	asJSON := fs.Bool("json", false, "print the results as JSON")
	fix := fs.Bool("fix", false, "create /dev/net/tun (c 10:200, mode 0666) when it is missing (needs root), then check again")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprint(stderr, doctorHelp)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	facts := doctor.Gather()
	var fixed []string
	if *fix {
		if doctor.Fixable(facts) {
			did, err := doctor.FixNode()
			if err != nil {
				fmt.Fprintf(stderr, "tapwire doctor: --fix: %v\n", err)
			} else {
				fixed = append(fixed, did)
				facts = doctor.Gather()
			}
		} else {
			fmt.Fprintln(stderr, "tapwire doctor: --fix: nothing it can repair (it creates /dev/net/tun when that is missing); see the fixes below")
		}
	}
	report := doctor.Diagnose(facts)
	report.Fixed = fixed

	var err error
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !report.Usable {
		return errors.New("TUN/TAP is not usable on this host")
	}
	return nil
}
