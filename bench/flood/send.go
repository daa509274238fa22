//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tapwire/tapwire/protocol"
)

// plan is one flood: what, where, how fast, and its bounds.
type plan struct {
	to       netip.AddrPort
	bind     netip.Addr // local address; invalid: any
	rate     float64    // messages per second
	count    uint64     // at most this many messages
	duration time.Duration
	sources  int // sockets (source ports) the messages rotate over
	batch    int // messages per sendmmsg
	msgs     [][]byte
}

// result is what a flood did, printed as JSON.
type result struct {
	Kind         Kind    `json:"kind"`
	Target       string  `json:"target"`
	Rate         float64 `json:"rate"`          // asked for, messages per second
	Sent         uint64  `json:"sent"`          // messages the kernel took
	Failed       uint64  `json:"failed"`        // messages a send refused (ENOBUFS, EPERM ...)
	SendErrors   uint64  `json:"send_errors"`   // failed send calls
	Seconds      float64 `json:"seconds"`       // from the first send to the last
	AchievedRate float64 `json:"achieved_rate"` // Sent / Seconds
	Sources      int     `json:"sources"`
	Pool         int     `json:"pool"`    // distinct messages sent in turn
	Replies      uint64  `json:"replies"` // datagrams that came back to the sources
	CookieReply  uint64  `json:"cookie_replies"`
	Captured     int     `json:"captured,omitempty"` // Replay: messages captured
	FirstError   string  `json:"first_error,omitempty"`
}

// batchWriter is an ipv4.PacketConn or an ipv6.PacketConn: sendmmsg.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// flood sends p.msgs in turn to p.to at p.rate until it has sent p.count,
// p.duration passed or ctx ended, from p.sources sockets (a batch each in
// turn), and counts what comes back to them. It fails only when it cannot
// open its sockets.
func flood(ctx context.Context, p plan) (result, error) {
	res := result{Target: p.to.String(), Rate: p.rate, Sources: p.sources, Pool: len(p.msgs)}
	network := "udp4"
	if p.to.Addr().Is6() && !p.to.Addr().Is4In6() {
		network = "udp6"
	}
	var laddr *net.UDPAddr
	if p.bind.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.bind, 0))
	}
	conns := make([]*net.UDPConn, 0, p.sources)
	writers := make([]batchWriter, 0, p.sources)
	var readers sync.WaitGroup
	var replies, cookies atomic.Uint64
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for range p.sources {
		c, err := net.ListenUDP(network, laddr)
		if err != nil {
			return res, fmt.Errorf("flood: source socket %d: %w", len(conns)+1, err)
		}
		conns = append(conns, c)
		if network == "udp6" {
			writers = append(writers, ipv6.NewPacketConn(c))
		} else {
			writers = append(writers, ipv4.NewPacketConn(c))
		}
		readers.Add(1)
		go func() { // what comes back: cookie replies under load, mostly
			defer readers.Done()
			buf := make([]byte, 2048)
			for {
				n, err := c.Read(buf)
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					continue // an ICMP error reported on the socket
				}
				replies.Add(1)
				if typ, ok := protocol.MessageType(buf[:n]); ok && typ == protocol.TypeCookieReply {
					cookies.Add(1)
				}
			}
		}()
	}
	dst := net.UDPAddrFromAddrPort(p.to)
	ms := make([]ipv4.Message, p.batch)
	for i := range ms {
		ms[i].Addr = dst
		ms[i].Buffers = make([][]byte, 1)
	}
	var next, src int
	start := time.Now()
	deadline := start.Add(p.duration)
	done := uint64(0) // sent or failed
	last := start
	for done < p.count && ctx.Err() == nil {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		due := min(uint64(now.Sub(start).Seconds()*p.rate)+1, p.count)
		if due <= done {
			wait := time.Duration(float64(done+1)/p.rate*float64(time.Second)) - now.Sub(start)
			time.Sleep(max(wait, 200*time.Microsecond))
			continue
		}
		n := int(min(due-done, uint64(p.batch)))
		for i := range n {
			ms[i].Buffers[0] = p.msgs[next]
			next = (next + 1) % len(p.msgs)
		}
		k, err := writers[src].WriteBatch(ms[:n], 0)
		src = (src + 1) % len(writers)
		res.Sent += uint64(max(k, 0))
		done += uint64(max(k, 0))
		if err != nil || k < n {
			// The rest of the batch is skipped: the schedule goes on, and
			// the flood stays bounded however the sends fail.
			res.SendErrors++
			res.Failed += uint64(n - max(k, 0))
			done += uint64(n - max(k, 0))
			if err != nil && res.FirstError == "" {
				res.FirstError = err.Error()
			}
			time.Sleep(100 * time.Microsecond)
		}
		last = time.Now()
	}
	res.Seconds = last.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.AchievedRate = float64(res.Sent) / res.Seconds
	}
	time.Sleep(200 * time.Millisecond) // the last replies
	res.Replies, res.CookieReply = replies.Load(), cookies.Load()
	return res, nil
}
