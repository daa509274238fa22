package main

import "context"

func genkeyCommand() *command {
	return &command{
		name:  "genkey",
		short: "print a new private key (as wg genkey)",
		long: `Prints a new Curve25519 private key in base64, as wg genkey does.

Examples:
  tapwire genkey > wg0.key
  tapwire genkey | tee wg0.key | tapwire pubkey > wg0.pub
`,
		run: func(ctx context.Context, inv *invocation) error { return runGenkey(inv.stdout) },
	}
}
