//go:build !windows

package main

// Where tapwire up looks for NAME.conf when given a bare interface name:
// tapwire's own directory first, then wg-quick's, so that
// `systemctl start tapwire@wg0` brings up what `wg-quick up wg0` would.
const (
	tapwireConfDir   = "/etc/tapwire"
	wireguardConfDir = "/etc/wireguard"
)

// defaultRunDir is where pid files and logs go when runDirEnv is unset.
const defaultRunDir = "/var/run/tapwire"
