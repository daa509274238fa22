//go:build race

package tunnel_test

// raceEnabled: the race detector is on. It makes sync.Pool drop items at
// random, so allocation counts say nothing then; the tests that count
// allocations only log them.
const raceEnabled = true
