//go:build linux

package main

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapwire/tapwire/protocol"
)

// Bounds of run's flags.
const (
	maxRate    = 1_000_000
	maxTimeout = 30 * time.Minute
	maxLinger  = time.Minute
)

// runConfig is one run: which hub, which clients, how fast, and its bounds.
type runConfig struct {
	hub    netip.AddrPort // an IPv4 loopback address
	hubPub protocol.Key
	seed   string
	lay    layout
	// rate is initiations per second of the first attempts; 0 with herd:
	// all at once.
	rate    float64
	herd    bool
	timeout time.Duration // the whole run, from the start of the precomputation
	linger  time.Duration // after the last client settled, for the data replies
	workers int
	// WireGuard's retry (whitepaper section 6.4): an initiation without a
	// response is sent again after rekeyTimeout plus up to jitter, until
	// attemptTime has passed since the first. Tests shorten them.
	rekeyTimeout, jitter, attemptTime time.Duration
	log                               *slog.Logger
	// onStart, if set, is called once the clients are ready, just before
	// the first initiation leaves (tests start their clocks there).
	onStart func()
}

// The states of a client.
const (
	stateIdle    uint8 = iota // nothing sent yet
	stateWaiting              // an initiation is out; no response yet
	stateUp                   // the handshake is done: a keypair
	stateFailed               // gave up after attemptTime
)

// client is one WireGuard peer of the hub. Its handshake state, cookie and
// keypair are dropped as soon as they are done with: a client that is up
// holds its keypair until its echo reply came back, then nothing but this.
type client struct {
	mu      sync.Mutex
	state   uint8
	echoed  bool         // the hub's echo reply came back (and a keepalive went)
	attempt uint16       // initiations sent; the current one's number
	pub     protocol.Key // the client's public key: the mac1 key of the hub's responses
	hs      *protocol.Handshake
	cookies *protocol.CookieGenerator
	kp      *protocol.Keypair
	initMsg []byte // the first initiation, made before the clock starts
	first   int64  // ns from t0: the first initiation sent
	up      int64  // ns from t0: the response consumed
}

// index is the sender index of client i's attempt-th initiation (and so
// the receiver index of the hub's replies and transport messages to it).
func index(i int, attempt uint16) uint32 { return uint32(attempt)<<20 | uint32(i) }

// unindex splits a receiver index into the client and the attempt.
func unindex(idx uint32) (int, uint16) { return int(idx & (1<<20 - 1)), uint16(idx >> 20) }

// percentiles are milliseconds from a client's first initiation to its
// response.
type percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// report is what a run did, printed as JSON.
type report struct {
	Mode    string  `json:"mode"` // "wave" (at -rate) or "herd" (all at once)
	Hub     string  `json:"hub"`
	Clients int     `json:"clients"`
	Rate    float64 `json:"rate"` // initiations per second asked for; 0: all at once

	Established int  `json:"established"` // handshakes completed: a response consumed
	Failed      int  `json:"failed"`      // gave up after RekeyAttemptTime
	Pending     int  `json:"pending"`     // neither when the run ended
	AllUp       bool `json:"all_up"`
	TimedOut    bool `json:"timed_out"`

	Initiations    uint64 `json:"initiations"`     // sent, first attempts and retries
	Retries        uint64 `json:"retries"`         // initiations after a client's first
	CookieReplies  uint64 `json:"cookie_replies"`  // taken: the next initiation carries mac2
	CookieErrors   uint64 `json:"cookie_errors"`   // cookie replies that did not decrypt
	Responses      uint64 `json:"responses"`       // to the current initiation
	BadResponses   uint64 `json:"bad_responses"`   // bad mac1, or did not decrypt
	Stale          uint64 `json:"stale"`           // replies to an initiation a retry replaced
	DataSent       uint64 `json:"data_sent"`       // ICMP echo requests through the tunnel
	DataReplies    uint64 `json:"data_replies"`    // echo replies from the hub's kernel
	KeepalivesSent uint64 `json:"keepalives_sent"` // one per echo reply, as WireGuard's passive keepalive
	KeepalivesRecv uint64 `json:"keepalives_received"`
	BadTransport   uint64 `json:"bad_transport"`  // transport data that did not decrypt or match a session
	OtherMessages  uint64 `json:"other_messages"` // what a WireGuard peer drops: tapwire's probes, unknown types; data after the exchange
	HubInitiations uint64 `json:"hub_initiations"`
	SendErrors     uint64 `json:"send_errors"`
	FirstError     string `json:"first_error,omitempty"`

	// From the first initiation sent: until the last response (null when
	// none came), and until every client was up (null unless all were).
	HandshakeWindowS *float64 `json:"handshake_window_s"`
	AllUpS           *float64 `json:"all_up_s"`
	// HandshakesPerS is Established over HandshakeWindowS: what the hub
	// completed, wall clock.
	HandshakesPerS float64     `json:"handshakes_per_s"`
	UpMs           percentiles `json:"up_ms"` // per client, first initiation to response
	SendS          float64     `json:"send_s"`

	PrecomputeS         float64 `json:"precompute_s"` // keys and first initiations, before the clock
	ClientCPUS          float64 `json:"client_cpu_s"` // this process, after the precomputation
	ClientHeapPerClient int     `json:"client_heap_bytes_per_client"`
	UDPRcvbufErrors     *int64  `json:"udp_rcvbuf_errors"` // the namespace's (hub's socket included), during the run
}

// retryEntry is a client's retry timer.
type retryEntry struct {
	at      int64 // ns from t0
	i       int32
	attempt uint16
}

type retryHeap []retryEntry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(a, b int) bool { return h[a].at < h[b].at }
func (h retryHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryEntry)) }
func (h *retryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// job is work for a worker: a datagram from the hub, or a retry.
type job struct {
	retry   bool
	i       int32
	attempt uint16
	n       int
	buf     [maxJobMsg]byte
}

// maxJobMsg is the largest datagram the workers take: a response, a cookie
// reply, a keepalive, an echo reply. Larger ones (tapwire's path MTU
// probes) are dropped by the reader, as a WireGuard peer drops them.
const maxJobMsg = 160

// runner is a run under way.
type runner struct {
	cfg     runConfig
	clients []client
	conn    *net.UDPConn
	pc      *ipv4.PacketConn
	dst     *net.UDPAddr
	t0      time.Time
	jobs    chan job
	closing atomic.Bool

	heapMu sync.Mutex
	timers retryHeap

	settled atomic.Int64 // clients up or failed
	lastUp  atomic.Int64 // ns from t0 of the last response

	initiations, retries, cookies, cookieErrors, responses, badResponses, stale      atomic.Uint64
	dataSent, dataReplies, kaSent, kaRecv, badTransport, other, hubInits, sendErrors atomic.Uint64
	firstErr                                                                         atomic.Pointer[string]
}

// since returns ns from t0.
func (r *runner) since() int64 { return int64(time.Since(r.t0)) }

func (r *runner) fail(err error) {
	if r.closing.Load() {
		return
	}
	r.sendErrors.Add(1)
	s := err.Error()
	r.firstErr.CompareAndSwap(nil, &s)
}

// oob is the control message that sends a datagram from client i's address.
func (r *runner) oob(i int) []byte {
	return (&ipv4.ControlMessage{Src: r.cfg.lay.src(i).AsSlice()}).Marshal()
}

// send sends msg to the hub from client i.
func (r *runner) send(i int, msg []byte) {
	if _, _, err := r.conn.WriteMsgUDP(msg, r.oob(i), r.dst); err != nil {
		r.fail(fmt.Errorf("send from %v: %w", r.cfg.lay.src(i), err))
	}
}

// schedule arms client i's retry timer for its attempt-th initiation.
func (r *runner) schedule(i int, attempt uint16, sentAt int64) {
	at := sentAt + int64(r.cfg.rekeyTimeout)
	if r.cfg.jitter > 0 {
		at += rand.Int64N(int64(r.cfg.jitter))
	}
	r.heapMu.Lock()
	heap.Push(&r.timers, retryEntry{at: at, i: int32(i), attempt: attempt})
	r.heapMu.Unlock()
}

// due pops the retry timers that are due at now, and returns when the
// next one is (-1: none).
func (r *runner) due(now int64, out []retryEntry) ([]retryEntry, int64) {
	r.heapMu.Lock()
	defer r.heapMu.Unlock()
	for len(r.timers) > 0 && r.timers[0].at <= now {
		out = append(out, heap.Pop(&r.timers).(retryEntry))
	}
	if len(r.timers) == 0 {
		return out, -1
	}
	return out, r.timers[0].at
}

// precompute makes every client's handshake state and first initiation
// (with mac1), on every CPU: four Curve25519 operations a client, none of
// them on the clock.
func (r *runner) precompute(ctx context.Context) error {
	var wg sync.WaitGroup
	var stopped atomic.Bool
	n, workers := len(r.clients), r.cfg.workers
	now := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if i%1024 == 0 && ctx.Err() != nil {
					stopped.Store(true)
					return
				}
				c := &r.clients[i]
				local := protocol.NewLocal(clientKey(r.cfg.seed, i))
				c.pub = local.PublicKey()
				c.hs = protocol.NewHandshake(local, r.cfg.hubPub, protocol.Key{})
				c.cookies = protocol.NewCookieGenerator(r.cfg.hubPub)
				c.initMsg = make([]byte, protocol.InitiationSize)
				if _, err := c.hs.CreateInitiation(now, index(i, 1), c.initMsg); err != nil {
					s := err.Error()
					r.firstErr.CompareAndSwap(nil, &s)
					stopped.Store(true)
					return
				}
				c.cookies.AddMACs(c.initMsg)
			}
		})
	}
	wg.Wait()
	if stopped.Load() {
		if p := r.firstErr.Load(); p != nil {
			return errors.New(*p)
		}
		return fmt.Errorf("precomputing the clients: %w", context.Cause(ctx))
	}
	return nil
}

// reader receives what the hub sends and hands it to the workers, until
// the socket is closed.
func (r *runner) reader(done chan<- struct{}) {
	defer close(done)
	const batch = 64
	ms := make([]ipv4.Message, batch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		k, err := r.pc.ReadBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || r.closing.Load() {
				return
			}
			continue // an ICMP error reported on the socket
		}
		for _, m := range ms[:k] {
			msg := m.Buffers[0][:m.N]
			typ, ok := protocol.MessageType(msg)
			switch {
			case !ok:
				r.other.Add(1)
			case typ == protocol.TypeInitiation:
				r.hubInits.Add(1) // the hub wants a handshake: a client that is gone would not answer either
			case (typ == protocol.TypeResponse || typ == protocol.TypeCookieReply || typ == protocol.TypeTransport) && len(msg) <= maxJobMsg:
				j := job{n: len(msg)}
				copy(j.buf[:], msg)
				r.jobs <- j
			default:
				r.other.Add(1) // tapwire's probes: a WireGuard peer drops the unknown type
			}
		}
	}
}

// worker handles jobs until the channel closes.
func (r *runner) worker(wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 256)
	for j := range r.jobs {
		if j.retry {
			r.retry(int(j.i), j.attempt, buf)
			continue
		}
		msg := j.buf[:j.n]
		typ, _ := protocol.MessageType(msg)
		switch typ {
		case protocol.TypeResponse:
			r.response(msg, buf)
		case protocol.TypeCookieReply:
			r.cookieReply(msg)
		case protocol.TypeTransport:
			r.transport(msg, buf)
		}
	}
}

// retry sends client i's next initiation if its attempt-th is still
// unanswered, or gives up after attemptTime.
func (r *runner) retry(i int, attempt uint16, buf []byte) {
	c := &r.clients[i]
	now := r.since()
	c.mu.Lock()
	if c.state != stateWaiting || c.attempt != attempt {
		c.mu.Unlock()
		return
	}
	if time.Duration(now-c.first) >= r.cfg.attemptTime {
		c.state = stateFailed
		c.hs, c.cookies = nil, nil
		c.mu.Unlock()
		r.settled.Add(1)
		return
	}
	c.attempt++
	msg := buf[:protocol.InitiationSize]
	_, err := c.hs.CreateInitiation(time.Now(), index(i, c.attempt), msg)
	if err == nil {
		c.cookies.AddMACs(msg) // mac2 too when the hub sent a cookie
	}
	next := c.attempt
	c.mu.Unlock()
	if err != nil {
		r.fail(err)
		return
	}
	r.send(i, msg)
	r.initiations.Add(1)
	r.retries.Add(1)
	r.schedule(i, next, now)
}

// response completes client i's handshake, then sends an ICMP echo request
// through the tunnel.
func (r *runner) response(msg, buf []byte) {
	_, receiver, err := protocol.ParseResponseIndices(msg)
	if err != nil {
		r.badResponses.Add(1)
		return
	}
	now := r.since()
	i, c := r.waiting(receiver, &r.badResponses)
	if c == nil {
		return
	}
	// mac1 of a response is keyed with the initiator's public key.
	if !protocol.NewCookieChecker(c.pub).CheckMAC1(msg) {
		c.mu.Unlock()
		r.badResponses.Add(1)
		return
	}
	if err := c.hs.ConsumeResponse(msg); err != nil {
		c.mu.Unlock()
		r.badResponses.Add(1)
		return
	}
	kp, err := c.hs.DeriveKeypair(time.Now())
	if err != nil {
		c.mu.Unlock()
		r.fail(err)
		return
	}
	c.kp, c.hs, c.cookies = kp, nil, nil
	c.state, c.up = stateUp, now
	n := echoRequest(buf[protocol.TransportHeaderSize:], r.cfg.lay.inner4(i), r.cfg.lay.hub4(), uint16(i))
	m, err := kp.SealTransport(buf, n)
	c.mu.Unlock()
	r.responses.Add(1)
	for {
		last := r.lastUp.Load()
		if now <= last || r.lastUp.CompareAndSwap(last, now) {
			break
		}
	}
	r.settled.Add(1)
	if err != nil {
		r.fail(err)
		return
	}
	r.send(i, buf[:m])
	r.dataSent.Add(1)
}

// waiting returns, locked, the client that the receiver index of an
// answer names, with its number, when it waits for the answer to that very
// attempt. Otherwise it counts the answer, in bad when the index is no
// client's and as stale when it answers another attempt, and returns nil.
func (r *runner) waiting(receiver uint32, bad *atomic.Uint64) (int, *client) {
	i, attempt := unindex(receiver)
	if i >= len(r.clients) {
		bad.Add(1)
		return i, nil
	}
	c := &r.clients[i]
	c.mu.Lock()
	if c.state != stateWaiting || c.attempt != attempt {
		c.mu.Unlock()
		r.stale.Add(1)
		return i, nil
	}
	return i, c
}

// cookieReply keeps the cookie for client i's next initiation. As
// WireGuard does, it sends nothing now: the retry timer does.
func (r *runner) cookieReply(msg []byte) {
	receiver, err := protocol.ParseCookieReplyReceiver(msg)
	if err != nil {
		r.cookieErrors.Add(1)
		return
	}
	_, c := r.waiting(receiver, &r.cookieErrors)
	if c == nil {
		return
	}
	err = c.cookies.ConsumeReply(msg)
	c.mu.Unlock()
	if err != nil {
		r.cookieErrors.Add(1)
		return
	}
	r.cookies.Add(1)
}

// transport opens a transport message to client i: a keepalive, or the
// echo reply, answered with a keepalive as WireGuard's passive keepalive
// would be (at once rather than after KeepaliveTimeout, so that the run
// ends sooner and the hub hears from every client it sent data to).
func (r *runner) transport(msg, buf []byte) {
	receiver, _, err := protocol.ParseTransportHeader(msg)
	if err != nil {
		r.badTransport.Add(1)
		return
	}
	i, _ := unindex(receiver)
	if i >= len(r.clients) {
		r.badTransport.Add(1)
		return
	}
	c := &r.clients[i]
	c.mu.Lock()
	kp := c.kp
	if kp == nil && c.echoed {
		c.mu.Unlock()
		r.other.Add(1) // after the client's exchange: it keeps no keys
		return
	}
	if kp == nil || kp.LocalIndex != receiver {
		c.mu.Unlock()
		r.badTransport.Add(1)
		return
	}
	pt, err := kp.OpenTransport(msg)
	if err != nil {
		c.mu.Unlock()
		r.badTransport.Add(1)
		return
	}
	if len(pt) == 0 {
		c.mu.Unlock()
		r.kaRecv.Add(1)
		return
	}
	if c.echoed || !isEchoReply(pt, r.cfg.lay.hub4(), r.cfg.lay.inner4(i), uint16(i)) {
		c.mu.Unlock()
		r.other.Add(1)
		return
	}
	c.echoed = true
	m, err := kp.SealTransport(buf, 0)
	c.kp = nil // done: its 2 KiB replay window goes, so that 100,000 clients fit
	c.mu.Unlock()
	r.dataReplies.Add(1)
	if err != nil {
		r.fail(err)
		return
	}
	r.send(i, buf[:m])
	r.kaSent.Add(1)
}

// sendFirst sends the first initiations of clients from..to-1 in one
// sendmmsg batch (or several, if the kernel takes part of one).
func (r *runner) sendFirst(from, to int, ms []ipv4.Message) {
	ms = ms[:0]
	now := r.since()
	for i := from; i < to; i++ {
		c := &r.clients[i]
		c.mu.Lock()
		msg := c.initMsg
		c.initMsg = nil
		c.state, c.attempt, c.first = stateWaiting, 1, now
		c.mu.Unlock()
		ms = append(ms, ipv4.Message{Buffers: [][]byte{msg}, OOB: r.oob(i), Addr: r.dst})
	}
	for len(ms) > 0 {
		k, err := r.pc.WriteBatch(ms, 0)
		if err != nil {
			r.fail(fmt.Errorf("sendmmsg: %w", err))
			k = max(k, 1) // skip the one refused; its retry timer resends it
		}
		ms = ms[k:]
	}
	r.initiations.Add(uint64(to - from))
	for i := from; i < to; i++ {
		r.schedule(i, 1, now)
	}
}

// runClients runs cfg and returns its report. It fails only when it cannot
// start (the socket, the precomputation); what the hub does is reported.
func runClients(ctx context.Context, cfg runConfig) (*report, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	n := cfg.lay.n
	rep := &report{Mode: "wave", Hub: cfg.hub.String(), Clients: n, Rate: cfg.rate}
	if cfg.herd {
		rep.Mode, rep.Rate = "herd", 0
	}
	r := &runner{cfg: cfg, clients: make([]client, n), dst: net.UDPAddrFromAddrPort(cfg.hub), jobs: make(chan job, 4096)}

	t := time.Now()
	if err := r.precompute(ctx); err != nil {
		return nil, err
	}
	rep.PrecomputeS = time.Since(t).Seconds()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	rep.ClientHeapPerClient = int(ms.HeapAlloc / uint64(n))
	cfg.log.Info("clients ready", "clients", n, "took", time.Since(t).Round(time.Millisecond), "heap_per_client", rep.ClientHeapPerClient)

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("client socket: %w", err)
	}
	r.conn, r.pc = conn, ipv4.NewPacketConn(conn)
	bigBuffers(conn, 32<<20)
	snmp0, snmpErr := udpRcvbufErrors()
	cpu0 := cpuTime()

	readerDone := make(chan struct{})
	go r.reader(readerDone)
	var workers sync.WaitGroup
	for range cfg.workers {
		workers.Add(1)
		go r.worker(&workers)
	}

	if cfg.onStart != nil {
		cfg.onStart()
	}
	r.t0 = time.Now()
	const batch = 64
	ms2 := make([]ipv4.Message, 0, batch)
	var dueBuf []retryEntry
	next := 0
	settledAt := int64(-1)
loop:
	for {
		if ctx.Err() != nil {
			rep.TimedOut = true
			break
		}
		now := r.since()
		if next < n {
			want := n
			if !cfg.herd {
				want = min(n, int(float64(now)/1e9*cfg.rate)+1)
			}
			for next < want {
				to := min(next+batch, want)
				r.sendFirst(next, to, ms2)
				next = to
			}
			if next == n {
				rep.SendS = time.Duration(r.since()).Seconds()
			}
		}
		var nextTimer int64
		dueBuf, nextTimer = r.due(now, dueBuf[:0])
		for _, e := range dueBuf {
			select {
			case r.jobs <- job{retry: true, i: e.i, attempt: e.attempt}:
			case <-ctx.Done():
				rep.TimedOut = true
				break loop
			}
		}
		if r.settled.Load() == int64(n) {
			if settledAt < 0 {
				settledAt = r.since()
			}
			up := r.responses.Load()
			if r.dataReplies.Load() >= up || time.Duration(r.since()-settledAt) >= cfg.linger {
				break
			}
		}
		// Sleep until the next first initiation is due, the next timer, or
		// 5 ms, whichever comes first.
		wait := 5 * time.Millisecond
		if next < n && !cfg.herd {
			wait = min(wait, time.Duration(float64(next)/cfg.rate*1e9)-time.Duration(r.since()))
		}
		if nextTimer >= 0 {
			wait = min(wait, time.Duration(nextTimer-r.since()))
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
	r.closing.Store(true)
	conn.Close()
	<-readerDone
	close(r.jobs)
	workers.Wait()
	rep.ClientCPUS = (cpuTime() - cpu0).Seconds()
	if snmp1, err := udpRcvbufErrors(); err == nil && snmpErr == nil {
		d := snmp1 - snmp0
		rep.UDPRcvbufErrors = &d
	}
	r.fill(rep)
	return rep, nil
}

// fill completes rep from the clients and the counters.
func (r *runner) fill(rep *report) {
	var ups []int64
	for i := range r.clients {
		c := &r.clients[i]
		c.mu.Lock()
		switch c.state {
		case stateUp:
			rep.Established++
			ups = append(ups, c.up-c.first)
		case stateFailed:
			rep.Failed++
		default:
			rep.Pending++
		}
		c.mu.Unlock()
	}
	rep.AllUp = rep.Established == len(r.clients)
	rep.Initiations, rep.Retries = r.initiations.Load(), r.retries.Load()
	rep.CookieReplies, rep.CookieErrors = r.cookies.Load(), r.cookieErrors.Load()
	rep.Responses, rep.BadResponses, rep.Stale = r.responses.Load(), r.badResponses.Load(), r.stale.Load()
	rep.DataSent, rep.DataReplies = r.dataSent.Load(), r.dataReplies.Load()
	rep.KeepalivesSent, rep.KeepalivesRecv = r.kaSent.Load(), r.kaRecv.Load()
	rep.BadTransport, rep.OtherMessages, rep.HubInitiations = r.badTransport.Load(), r.other.Load(), r.hubInits.Load()
	rep.SendErrors = r.sendErrors.Load()
	if p := r.firstErr.Load(); p != nil {
		rep.FirstError = *p
	}
	if len(ups) > 0 {
		w := time.Duration(r.lastUp.Load()).Seconds()
		rep.HandshakeWindowS = &w
		if w > 0 {
			rep.HandshakesPerS = float64(rep.Established) / w
		}
		if rep.AllUp {
			rep.AllUpS = &w
		}
		slices.Sort(ups)
		ms := func(q float64) float64 {
			v := ups[min(len(ups)-1, int(q*float64(len(ups))))]
			return float64(v/1e3) / 1e3
		}
		rep.UpMs = percentiles{P50: ms(0.50), P90: ms(0.90), P99: ms(0.99), Max: float64(ups[len(ups)-1]/1e3) / 1e3}
	}
}

// runCmd is `hub run`.
func runCmd(ctx context.Context, stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("hub run", flag.ContinueOnError)
	to := fs.String("to", "127.0.0.1:51820", "the hub's `ADDRESS:PORT` (IPv4 loopback)")
	n := fs.Int("n", 0, "number of clients: the first N of the seed's")
	seed := fs.String("seed", defaultSeed, "the `SEED` the keys are derived from (as given to conf)")
	hubPub := fs.String("hub-key", "", "the hub's public `KEY` (default: the one -seed gives it)")
	net4 := fs.String("net4", defaultNet4, "inner IPv4 `PREFIX` (as given to conf)")
	net6 := fs.String("net6", defaultNet6, "inner IPv6 `PREFIX` (as given to conf)")
	source := fs.String("source", defaultSource, "the first client's source /24 in 127.0.0.0/8 (`ADDRESS` ending in .0): 254 clients a /24")
	rate := fs.Float64("rate", 1000, "first initiations per second (retries come on their timers)")
	herd := fs.Bool("herd", false, "every client initiates at once, as after a hub restart (-rate is ignored)")
	timeout := fs.Duration("timeout", 150*time.Second, "end the run after this long, whatever is pending (at most "+maxTimeout.String()+")")
	linger := fs.Duration("linger", 2*time.Second, "after the last client is up or failed, wait this long at most for the echo replies")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "goroutines doing the clients' Curve25519")
	quiet := fs.Bool("q", false, "log nothing but errors")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelError
	}
	cfg := runConfig{seed: *seed, rate: *rate, herd: *herd, timeout: *timeout, linger: *linger, workers: *workers,
		rekeyTimeout: protocol.RekeyTimeout, jitter: protocol.RekeyTimeoutJitterMax, attemptTime: protocol.RekeyAttemptTime,
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	var err error
	if cfg.lay, err = newLayout(*n, *net4, *net6, *source); err != nil {
		return usageError{err}
	}
	if cfg.hub, err = netip.ParseAddrPort(*to); err != nil {
		return usageError{fmt.Errorf("-to: %w", err)}
	}
	cfg.hub = netip.AddrPortFrom(cfg.hub.Addr().Unmap(), cfg.hub.Port())
	switch {
	case !cfg.hub.Addr().Is4() || !cfg.hub.Addr().IsLoopback():
		return usageError{fmt.Errorf("-to %v: the hub must be on IPv4 loopback (127.0.0.0/8)", cfg.hub)}
	case cfg.hub.Port() == 0:
		return usageError{errors.New("-to: port 0")}
	case !cfg.herd && !(cfg.rate > 0 && cfg.rate <= maxRate):
		return usageError{fmt.Errorf("-rate must be in (0, %d]", maxRate)}
	case cfg.timeout <= 0 || cfg.timeout > maxTimeout:
		return usageError{fmt.Errorf("-timeout must be in (0, %v]", maxTimeout)}
	case cfg.linger < 0 || cfg.linger > maxLinger:
		return usageError{fmt.Errorf("-linger must be in [0, %v]", maxLinger)}
	case cfg.workers < 1 || cfg.workers > 256:
		return usageError{errors.New("-workers must be in [1, 256]")}
	}
	if first, last := cfg.lay.src(0), cfg.lay.src(cfg.lay.n-1); cfg.hub.Addr().Compare(first) >= 0 && cfg.hub.Addr().Compare(last) <= 0 {
		return usageError{fmt.Errorf("-to %v is among the clients' source addresses %v-%v (-source)", cfg.hub, first, last)}
	}
	if *hubPub != "" {
		if cfg.hubPub, err = protocol.ParseKey(strings.TrimSpace(*hubPub)); err != nil {
			return usageError{fmt.Errorf("-hub-key: %w", err)}
		}
	} else {
		cfg.hubPub = hubKey(cfg.seed).PublicKey()
	}
	cfg.log.Info("starting", "mode", map[bool]string{false: "wave", true: "herd"}[cfg.herd], "clients", cfg.lay.n, "hub", cfg.hub, "rate", cfg.rate)
	rep, err := runClients(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.log.Info("done", "established", rep.Established, "failed", rep.Failed, "pending", rep.Pending,
		"handshakes_per_s", int(rep.HandshakesPerS), "retries", rep.Retries, "cookie_replies", rep.CookieReplies,
		"data_replies", rep.DataReplies, "timed_out", rep.TimedOut)
	if err := json.NewEncoder(stdout).Encode(rep); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
