package tunnel

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a token bucket per source address for handshake messages:
// each address may send burst messages at once and then rate per second.
// Entries idle for a second are forgotten, so the table stays small.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, buckets: make(map[netip.Addr]*bucket)}
}

// allow takes a token for addr, reporting whether one was there.
func (r *rateLimiter) allow(addr netip.Addr, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.swept) > time.Second {
		for a, b := range r.buckets {
			if now.Sub(b.last) > time.Second {
				delete(r.buckets, a)
			}
		}
		r.swept = now
	}
	b := r.buckets[addr]
	if b == nil {
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[addr] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
