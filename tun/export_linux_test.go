package tun

// ErrorForTest exposes the error wrapping to tests.
func ErrorForTest(op, name string, err error) error { return opErr(op, name, err) }

// RefuseGSOForTest makes the device act as a kernel that refuses coalesced
// super-packets with EINVAL (as some 6.6 kernels do).
func RefuseGSOForTest(d *Device) { d.off.refuseGSO = true }
