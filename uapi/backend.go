package uapi

import (
	"errors"
	"syscall"

	"github.com/tapwire/tapwire/devconf"
)

// Backend is the device the Server configures. Status and Apply may be
// called from several connections' goroutines, but the Server never runs an
// Apply concurrently with another Apply or with a Status.
type Backend interface {
	// Status returns the device's current configuration and counters.
	Status() devconf.DeviceStatus
	// Apply applies one transaction atomically, as package devconf
	// describes: all of it or, when it returns an error, none of it. A
	// *devconf.Error (possibly wrapped) chooses the errno reported to the
	// client; a wrapped syscall.Errno is reported as is; any other error is
	// reported as ENOANO, as wireguard-go does.
	Apply(devconf.DeviceConfig) error
}

// errnoOf returns the positive errno to report for err (0 for nil).
func errnoOf(err error) int {
	if err == nil {
		return 0
	}
	var ue *devconf.Error
	if errors.As(err, &ue) {
		return devconf.WireErrno(ue.Code())
	}
	var en syscall.Errno
	if errors.As(err, &en) && en != 0 {
		return devconf.WireErrno(en)
	}
	return int(devconf.ErrnoUnknown)
}
