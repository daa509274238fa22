//go:build !race

package tunnel_test

// raceEnabled: the race detector is on (see race_test.go).
const raceEnabled = false
