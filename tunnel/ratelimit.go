package tunnel

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a token bucket per source for handshake messages: each
// source may send burst messages at once and then rate per second. A
// source is an IPv4 address or an IPv6 /64 (one host's share of addresses,
// as the kernel's WireGuard groups them). Entries idle for a second are
// forgotten, so the table stays small.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

// bucket is a token bucket's state; its owner holds the rate, the burst
// and the lock.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b for the time since it last took (at rate a second, up to
// burst) and takes a token, reporting whether one was there.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(burst, b.tokens+dt.Seconds()*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, buckets: make(map[netip.Addr]*bucket)}
}

// allow takes a token for addr, reporting whether one was there.
func (r *rateLimiter) allow(addr netip.Addr, now time.Time) bool {
	addr = sourceKey(addr)
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
	return b.take(now, r.rate, r.burst)
}

// sourceKey is what a rate limit counts by: an IPv4 address, or the /64 of
// an IPv6 one.
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// tokenBucket allows rate events per second, burst at once.
type tokenBucket struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	b     bucket
}

// take takes a token, reporting whether one was there.
func (t *tokenBucket) take(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b.last.IsZero() {
		t.b = bucket{tokens: t.burst, last: now}
	}
	return t.b.take(now, t.rate, t.burst)
}
