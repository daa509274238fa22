package main

import "context"

func genpskCommand() *command {
	return &command{
		name:  "genpsk",
		short: "print a new preshared key",
		long: `Prints a new preshared key (32 random bytes) in base64, as wg genpsk does.

Examples:
  tapwire genpsk > peer.psk
`,
		run: func(ctx context.Context, inv *invocation) error { return runGenpsk(inv.stdout) },
	}
}
