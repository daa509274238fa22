package privdrop

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// securebits are set and locked by drop: uid 0 gets no capabilities from
// exec (NOROOT) nor keeps or loses any on a change of uid (NO_SETUID_FIXUP,
// KEEP_CAPS), and none may be raised into the ambient set.
const (
	securebits        = cap.SecbitNoRoot | cap.SecbitNoRootLocked | cap.SecbitNoSetUIDFixup | cap.SecbitNoSetUIDFixupLocked | cap.SecbitKeepCapsLocked
	securebitsAmbient = cap.SecbitNoCapAmbientRaise | cap.SecbitNoCapAmbientRaiseLocked
)

func drop(keep []Capability) error {
	vals := make([]cap.Value, len(keep))
	for i, c := range keep {
		vals[i] = cap.Value(c)
	}
	cur := cap.GetProc()
	for _, v := range vals {
		if on, err := cur.GetFlag(cap.Permitted, v); err != nil || !on {
			return fmt.Errorf("privdrop: cannot keep %s: the process does not have it (permitted: %q)", Capability(v), cur)
		}
	}
	if on, err := cur.GetFlag(cap.Permitted, cap.SETPCAP); err != nil || !on {
		return fmt.Errorf("privdrop: dropping capabilities takes CAP_SETPCAP, which the process does not have (permitted: %q)", cur)
	}
	// CAP_SETPCAP effective: dropping from the bounding set and setting
	// securebits take it.
	work, err := cur.Dup()
	if err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := work.SetFlag(cap.Effective, true, cap.SETPCAP); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := work.SetProc(); err != nil {
		return fmt.Errorf("privdrop: raise CAP_SETPCAP: %w", err)
	}
	bits := securebits
	if _, err := cap.GetAmbient(0); err == nil { // the kernel has ambient capabilities
		if err := cap.ResetAmbient(); err != nil {
			return fmt.Errorf("privdrop: clear the ambient set: %w", err)
		}
		bits |= securebitsAmbient
	}
	for v := cap.Value(0); v < cap.MaxBits(); v++ {
		if slices.Contains(vals, v) {
			continue
		}
		if on, err := cap.GetBound(v); err != nil || !on {
			continue
		}
		if err := cap.DropBound(v); err != nil {
			return fmt.Errorf("privdrop: drop %s from the bounding set: %w", v, err)
		}
	}
	if err := (cap.GetSecbits() | bits).Set(); err != nil {
		return fmt.Errorf("privdrop: set securebits: %w", err)
	}
	want := cap.NewSet()
	for _, f := range []cap.Flag{cap.Permitted, cap.Effective} {
		if err := want.SetFlag(f, true, vals...); err != nil {
			return fmt.Errorf("privdrop: %w", err)
		}
	}
	if err := want.SetProc(); err != nil {
		return fmt.Errorf("privdrop: set capabilities to %q: %w", want, err)
	}
	if _, err := cap.Prctlw(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("privdrop: set no_new_privs: %w", err)
	}
	return nil
}
