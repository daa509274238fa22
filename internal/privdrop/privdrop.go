// Package privdrop lowers a running process, for the rest of its life, to
// the few capabilities it still needs: a daemon that needed root to set
// things up keeps, say, CAP_NET_ADMIN and nothing else.
//
// Drop is one-way: the capabilities given up cannot come back, not even
// through exec (a set-user-ID program, a file with capabilities, or uid
// 0's usual full set), and every thread of the process is changed, those
// of the Go runtime and of C alike (libcap's psx). The process keeps its
// user and group ids (root stays uid 0), so files it owns stay open to it
// by their owner's permission bits; what it loses is overriding them
// (CAP_DAC_OVERRIDE) along with every other privilege not kept.
//
// Drop is implemented on Linux; elsewhere it returns ErrNotSupported.
package privdrop

import (
	"errors"
	"strconv"
	"strings"
)

// Capability is a Linux capability by its number, as in
// <linux/capability.h>.
type Capability int

// The capabilities a network daemon may keep.
const (
	NetBindService Capability = 10 // CAP_NET_BIND_SERVICE: bind a port below 1024
	NetAdmin       Capability = 12 // CAP_NET_ADMIN: configure interfaces, routes, rules; SO_MARK
)

// String returns the capability's name as the kernel's headers spell it
// (CAP_NET_ADMIN), or CAP_N for a number this package does not name.
func (c Capability) String() string {
	switch c {
	case NetBindService:
		return "CAP_NET_BIND_SERVICE"
	case NetAdmin:
		return "CAP_NET_ADMIN"
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Names returns the names of caps joined by spaces, "CAP_NET_ADMIN
// CAP_NET_BIND_SERVICE"; "none" for none.
func Names(caps []Capability) string {
	if len(caps) == 0 {
		return "none"
	}
	names := make([]string, len(caps))
	for i, c := range caps {
		names[i] = c.String()
	}
	return strings.Join(names, " ")
}

// ErrNotSupported is what Drop returns where the system has no
// capabilities to drop to (every OS but Linux).
var ErrNotSupported = errors.New("privdrop: dropping to capabilities is not supported on this system")

// Drop leaves the process, on all its threads, with the capabilities keep
// and nothing else, for good:
//
//   - the bounding set is keep (what no exec can exceed);
//   - permitted and effective are keep, inheritable and ambient empty;
//   - the securebits NOROOT, NO_SETUID_FIXUP and KEEP_CAPS are set and
//     locked (and NO_CAP_AMBIENT_RAISE where the kernel has ambient
//     capabilities), so that uid 0 running a program gains nothing;
//   - no_new_privs is set (PR_SET_NO_NEW_PRIVS): set-user-ID bits and file
//     capabilities are ignored by exec.
//
// It needs CAP_SETPCAP in the permitted set (root has it), which it gives
// up with the rest, and every capability of keep permitted. A capability
// keep lacks is refused before anything changes; a failure after the
// first change (which a kernel that refuses one of the steps can cause)
// leaves the process with less than it had but possibly more than keep:
// the error says which step failed.
func Drop(keep ...Capability) error { return drop(keep) }
