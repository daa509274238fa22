package main

import (
	"context"
	"flag"
)

// statusFlags are the flags of tapwire status.
type statusFlags struct {
	json bool
}

func statusCommand() *command {
	var f statusFlags
	return &command{
		name:  "status",
		usage: "[--json] [INTERFACE...]",
		short: "show interfaces as wg show does, plus mode, MAC table and drops",
		long: `Shows each tapwire interface (all of them, or those named) as wg show
does, plus its mode (tun or tap), the privileges its tapwire up kept once
up, peers running the other mode, the MAC table of a TAP interface, and
the non-zero drop counters.

Examples:
  sudo tapwire status
  sudo tapwire status lan0
  sudo tapwire status --json lan0
`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&f.json, "json", false, "print JSON")
		},
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return runStatus(ctx, inv.stdout, inv.stderr, f, inv.args)
		},
	}
}
