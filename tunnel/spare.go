package tunnel

import (
	"bytes"
	"strconv"
)

// The workers are used when the machine has CPU to spare (Options.Workers
// 0). When every CPU is busy, handing a batch's chunks to workers only
// adds the handing over (waking a worker, waiting for it, caches): on two
// CPUs that both tunnel ends and iperf3 keep busy it cost 10-15% of the
// throughput (BENCHMARKS.md). The timers look at the system's idle time
// every tick and spread the work while it is at least spreadOn CPUs, and
// stop below spreadOff: the gap keeps the choice from flapping.
const (
	spreadOn  = 0.5 // idle CPUs from which chunks go to the workers
	spreadOff = 0.3 // idle CPUs under which the readers do all the work
)

// cpuTimes is what the system's CPUs did since boot, in clock ticks: idle
// (idle and waiting for I/O) and in all.
type cpuTimes struct{ idle, total uint64 }

// parseCPUTimes reads the aggregate "cpu" line of Linux's /proc/stat
// (user nice system idle iowait irq softirq steal ...; guest time is
// counted in user already).
func parseCPUTimes(stat []byte) (cpuTimes, bool) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 5 || string(fields[0]) != "cpu" {
		return cpuTimes{}, false
	}
	var t cpuTimes
	for i, f := range fields[1:] {
		if i >= 8 { // guest and guest_nice are in user and nice
			break
		}
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		t.total += v
		if i == 3 || i == 4 {
			t.idle += v
		}
	}
	return t, true
}

// userHZ is the unit of /proc/stat's times: clock ticks of 1/100 s
// (USER_HZ, 100 on every Linux architecture Go supports).
const userHZ = 100

// spareCPUs returns how many CPUs, of ncpu, were idle on average between
// two readings (0 when nothing was counted), counting as idle too the
// spun nanoseconds the workers spent spinning for work meanwhile: a
// worker that waits for the next batch must not make the system look
// busy and so turn itself off.
func spareCPUs(prev, cur cpuTimes, spun int64, ncpu int) float64 {
	if cur.total <= prev.total || cur.idle < prev.idle {
		return 0
	}
	idle := float64(cur.idle-prev.idle) + float64(max(spun, 0))*userHZ/1e9
	return min(idle/float64(cur.total-prev.total), 1) * float64(ncpu)
}

// nextSpread is whether to spread after a reading of spare idle CPUs,
// spreading now.
func nextSpread(now bool, spare float64) bool {
	if now {
		return spare >= spreadOff
	}
	return spare >= spreadOn
}
