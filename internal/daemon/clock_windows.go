package daemon

import "errors"

// monotonicUsec fails: there is no systemd, and so no notify socket, on
// Windows.
func monotonicUsec() (int64, error) { return 0, errors.New("no CLOCK_MONOTONIC on Windows") }
