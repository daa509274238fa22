package tunnel

import (
	"container/heap"
	"time"

	"github.com/tapwire/tapwire/devconf"
)

// The timers look at a peer only when something of its is due: each
// evaluation (p.tick, tickPath, tickResolve, tickStream) ends by working
// out when the next thing can fall due (nextDue: a handshake retry, a
// keepalive owed or configured, a keypair to expire or forget, a path MTU
// round, an endpoint name to resolve) and putting the peer in a heap
// ordered by that time; a peer with nothing due is in no heap at all. So
// a hub of 100,000 peers, most of them away and the others idle, costs
// the timer goroutine what falls due, not a walk of every peer each tick.
//
// What makes something due sooner than the heap says wakes the peer
// (wake: it is evaluated at the next tick): a handshake started, a
// keypair made, packets staged, a configuration or endpoint change, a
// stream, a path report; on the data path, the first packet sent without
// reply (sentNoReply) or received without answer (needKA) wakes it only
// when its scheduled time is later than the new deadline (soon), which is
// one atomic load per such packet. As a backstop no scheduled peer waits
// longer than maxTimerSleep.

// maxTimerSleep bounds how long a scheduled peer waits for its next
// evaluation, whatever nextDue says.
const maxTimerSleep = 30 * time.Second

// overdueRetry is when a peer is looked at again whose next due time had
// passed even after its evaluation.
const overdueRetry = time.Second

// timerEntry is a peer in the timers' heap, due at due (unix ns); it is
// stale once the peer was evaluated again (gen moved on).
type timerEntry struct {
	due int64
	p   *Peer
	gen uint32
}

// timerHeap orders entries by due time (container/heap).
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

// wake has p evaluated at the timers' next tick. Callers change the state
// nextDue reads first, then call wake; it takes no lock of p's.
func (p *Peer) wake() {
	if p.queued.Load() || !p.queued.CompareAndSwap(false, true) {
		return
	}
	d := p.dev
	d.timerMu.Lock()
	d.awake = append(d.awake, p)
	d.timerMu.Unlock()
}

// soon wakes p if the timers would look at it later than at (or never).
func (p *Peer) soon(at time.Time) {
	if due := p.dueAt.Load(); due == 0 || due > at.UnixNano() {
		p.wake()
	}
}

// nextDue returns when the timers must look at p next, after an
// evaluation at now; the zero Time when nothing can fall due before an
// event wakes it.
func (p *Peer) nextDue(now time.Time) time.Time {
	if p.gone.Load() {
		return time.Time{}
	}
	d := p.dev
	tm := d.tm
	var due time.Time
	at := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	// A stream, or a transport other than UDP with an endpoint to dial:
	// their checks and dials run on every tick (a few peers at most). A
	// persistent keepalive needs a path too; an endpoint or a stream that
	// comes later wakes the peer.
	ep := p.endpoint.Load()
	path := ep != nil || p.stream.Load() != nil
	if p.stream.Load() != nil || ep != nil && devconf.Transport(p.transport.Load()) != devconf.TransportUDP {
		at(now.Add(tm.Tick))
	}
	if ka := p.keepalive.Load(); ka > 0 && path {
		at(time.Unix(0, p.lastSent.Load()).Add(time.Duration(ka) * time.Second))
	}
	p.mu.Lock()
	if p.hsIndex != 0 {
		at(p.hsSent.Add(tm.RekeyTimeout + p.hsJitter))
	}
	if !p.needKA.IsZero() {
		at(p.needKA.Add(tm.KeepaliveTimeout))
	}
	if !p.sentNoReply.IsZero() {
		at(p.sentNoReply.Add(tm.KeepaliveTimeout + tm.RekeyTimeout))
	}
	// (rekeyPending is cleared by the evaluation a new keypair wakes.)
	if p.next != nil {
		at(p.next.Created.Add(tm.RejectAfterTime))
	}
	// Keys are forgotten 3 × RejectAfterTime after the last handshake
	// (none yet: a responder's keypair never confirmed, which expires).
	if last := p.lastHS.Load(); last != 0 && (p.current != nil || p.previous != nil || p.next != nil) {
		at(time.Unix(0, last).Add(3 * tm.RejectAfterTime))
	}
	session := p.current != nil && now.Sub(p.current.Created) < tm.RejectAfterTime
	resolve := p.hsIndex != 0 || len(p.staged) > 0
	p.mu.Unlock()
	// An endpoint name is resolved again while the peer has no endpoint,
	// or its handshake is stuck (which the handshake's retries wake).
	if p.epName.Load() != nil && (ep == nil || resolve) {
		at(time.Unix(0, p.lastResolve.Load()).Add(resolveInterval))
	}
	st := &p.path
	st.mu.Lock()
	switch {
	case ep != nil && st.ep != *ep:
		at(now.Add(tm.Tick)) // a new endpoint (since the tick): its path starts at the next
	case st.round != 0:
		at(st.roundAt.Add(probeTimeout))
	case session && ep != nil && !st.next.IsZero():
		at(st.next) // the next probing round (it needs a session)
	}
	if !p.canSplit() && (st.source == "icmp" || st.source == "local") {
		at(st.learned.Add(probeInterval)) // the report expires then
	}
	st.mu.Unlock()
	if due.IsZero() {
		return due
	}
	// Not later than the backstop. Nothing is overdue after an evaluation
	// at now (it did what was due); what still is, is not the tick's to do
	// (a keepalive with no keypair yet, say): looked at again in a second,
	// never in a loop at every tick. Compared as the heap compares, on the
	// wall clock: times with and without a monotonic reading can disagree
	// by a little, and an entry due before now would be popped again at
	// once.
	switch n := now.UnixNano(); {
	case due.UnixNano() <= n:
		return now.Add(overdueRetry)
	case due.UnixNano() > n+int64(maxTimerSleep):
		return now.Add(maxTimerSleep)
	}
	return due
}

// evaluate runs p's timers at now and schedules its next evaluation.
// Only the timer goroutine calls it.
func (d *Device) evaluate(p *Peer, now time.Time) {
	d.evaluations.Add(1)
	p.gen++ // any entry of p's in the heap is stale from now on
	if !p.gone.Load() {
		p.tick(now)
		p.tickPath(now, d.sendProbe)
		p.tickResolve(now)
		p.tickStream(now)
	}
	due := p.nextDue(now)
	if due.IsZero() {
		p.dueAt.Store(0)
		return
	}
	p.dueAt.Store(due.UnixNano())
	heap.Push(&d.timers, timerEntry{due: due.UnixNano(), p: p, gen: p.gen})
}

// tickPeers evaluates, at now, the peers woken since the last tick and
// those whose time has come. Only the timer goroutine calls it.
func (d *Device) tickPeers(now time.Time) {
	d.timerMu.Lock()
	woken := d.awake
	d.awake = d.spare[:0]
	d.timerMu.Unlock()
	for _, p := range woken {
		// Out of the list first: an event from now on wakes it again.
		p.queued.Store(false)
		d.evaluate(p, now)
	}
	clear(woken)
	d.spare = woken[:0]
	// What is due is taken out first, then evaluated: an evaluation
	// schedules its peer after now, never again in this tick.
	n := now.UnixNano()
	due := d.due[:0]
	for len(d.timers) > 0 && d.timers[0].due <= n {
		if e := heap.Pop(&d.timers).(timerEntry); e.gen == e.p.gen {
			due = append(due, e.p)
		}
	}
	for _, p := range due {
		d.evaluate(p, now)
	}
	clear(due)
	d.due = due[:0]
}
