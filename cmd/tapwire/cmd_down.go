package main

import "context"

func downCommand() *command {
	return &command{
		name:  "down",
		usage: "FILE|INTERFACE",
		short: "take down an interface brought up by tapwire up",
		long: `Stops what tapwire up started (running PreDown/PostDown), or deletes the
interface of another WireGuard implementation. After a tapwire up that was
killed (kill -9, the OOM killer), it removes the stale pid file and socket
and takes back the policy rules, bridge addresses and DNS settings it left;
it never signals a process that merely has the pid the file names.

Examples:
  sudo tapwire down wg0
  sudo tapwire down /etc/wireguard/wg0.conf
`,
		args: true,
		run: func(ctx context.Context, inv *invocation) error {
			return runDown(ctx, inv.stdout, inv.stderr, inv.args)
		},
	}
}
