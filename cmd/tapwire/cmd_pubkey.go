package main

import "context"

func pubkeyCommand() *command {
	return &command{
		name:  "pubkey",
		usage: "< PRIVATE-KEY",
		short: "print the public key of the private key on stdin",
		long: `Reads a private key in base64 on stdin and prints its public key, as
wg pubkey does.

Examples:
  tapwire pubkey < wg0.key
`,
		run: func(ctx context.Context, inv *invocation) error { return runPubkey(inv.stdout) },
	}
}
