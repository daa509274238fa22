package tun

// ErrorForTest exposes the error wrapping to tests.
func ErrorForTest(op, name string, err error) error { return opErr(op, name, err) }
