//go:build !race

package tunnel

// raceOn: the race detector is on (see race_internal_test.go).
const raceOn = false
