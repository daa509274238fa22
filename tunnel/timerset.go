package tunnel

import (
	"time"

	"github.com/tapwire/tapwire/devconf"
)

// The timers visit only the peers that have something to watch (busy): a
// hub of 100,000 peers, most of them away, costs nothing per tick for the
// ones away. A peer enters the set when something starts that a timer must
// follow (wake: a handshake, a keypair, a configuration), and leaves it
// when a tick finds nothing left (a peer whose keys were forgotten and that
// has no keepalive, no endpoint name, no stream and no path work).
//
// Invariant: p.timed is true exactly while p is in d.awake or d.timed, and
// in one of them only.

// wake puts p in the timers' set if it is not there. Callers change the
// state busy reads first, then call wake; it takes no lock of p's.
func (p *Peer) wake() {
	if p.timed.Load() || !p.timed.CompareAndSwap(false, true) {
		return
	}
	d := p.dev
	d.timerMu.Lock()
	d.awake = append(d.awake, p)
	d.timerMu.Unlock()
}

// busy reports whether the timers have anything to follow on p: a
// handshake in flight, a keypair (to rekey, expire, forget), packets
// staged for one, a keepalive owed or configured, an endpoint name, a
// transport other than UDP, or path MTU work.
func (p *Peer) busy() bool {
	if p.gone.Load() {
		return false
	}
	if p.keepalive.Load() > 0 || p.epName.Load() != nil || p.stream.Load() != nil ||
		devconf.Transport(p.transport.Load()) != devconf.TransportUDP {
		return true
	}
	p.mu.Lock()
	b := p.hsIndex != 0 || p.current != nil || p.previous != nil || p.next != nil || len(p.staged) > 0 ||
		!p.needKA.IsZero() || !p.sentNoReply.IsZero() || p.rekeyPending
	p.mu.Unlock()
	if b {
		return true
	}
	st := &p.path
	st.mu.Lock()
	defer st.mu.Unlock()
	ep := p.endpoint.Load()
	return ep != nil && st.ep != *ep || st.round != 0 || st.source == "icmp" || st.source == "local"
}

// tickPeers runs the peers' timers at now on the set's peers, takes the
// ones woken since the last tick in, and lets go of those no longer busy.
// Only the timer goroutine calls it.
func (d *Device) tickPeers(now time.Time) {
	d.timerMu.Lock()
	d.timed = append(d.timed, d.awake...)
	clear(d.awake)
	d.awake = d.awake[:0]
	d.timerMu.Unlock()
	kept := d.timed[:0]
	for _, p := range d.timed {
		if !p.gone.Load() {
			p.tick(now)
			p.tickPath(now, d.sendProbe)
			p.tickResolve(now)
			p.tickStream(now)
			if p.busy() {
				kept = append(kept, p)
				continue
			}
		}
		// Out of the set; what made it busy again meanwhile (the state is
		// changed before wake is called) puts it back.
		p.timed.Store(false)
		if p.busy() {
			p.wake()
		}
	}
	clear(d.timed[len(kept):])
	d.timed = kept
}
