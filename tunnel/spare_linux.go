package tunnel

import (
	"os"
	"runtime"
)

// idleMeter reads the system's CPU times from /proc/stat, kept open and
// read again from its start, into a buffer of its own: nothing is
// allocated per reading.
type idleMeter struct {
	f        *os.File
	buf      [512]byte
	last     cpuTimes
	lastSpun int64
	ncpu     int
}

// newIdleMeter returns a meter, or nil when /proc/stat cannot be read
// (the workers are then always used).
func newIdleMeter() *idleMeter {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return nil
	}
	m := &idleMeter{f: f, ncpu: runtime.NumCPU()}
	if _, ok := m.read(); !ok {
		f.Close()
		return nil
	}
	return m
}

func (m *idleMeter) read() (cpuTimes, bool) {
	n, _ := m.f.ReadAt(m.buf[:], 0) // a short read (io.EOF) is the whole file
	return parseCPUTimes(m.buf[:n])
}

// spare returns the idle CPUs since the last call, and false when the
// reading failed; spun is the workers' spinning so far, in nanoseconds
// (see spareCPUs).
func (m *idleMeter) spare(spun int64) (float64, bool) {
	t, ok := m.read()
	if !ok {
		return 0, false
	}
	s := spareCPUs(m.last, t, spun-m.lastSpun, m.ncpu)
	m.last, m.lastSpun = t, spun
	return s, true
}

func (m *idleMeter) close() { m.f.Close() }
