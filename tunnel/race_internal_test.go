//go:build race

package tunnel

// raceOn: the race detector is on; it makes sync.Pool drop items, so
// allocation counts say nothing (see race_test.go).
const raceOn = true
