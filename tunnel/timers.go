package tunnel

import (
	"time"

	"github.com/tapwire/tapwire/protocol"
)

// Timers are the protocol's time and message limits. Tests shorten them;
// everyone else uses DefaultTimers.
type Timers struct {
	RekeyAfterTime     time.Duration // initiator starts a new handshake for keys this old
	RejectAfterTime    time.Duration // keys this old are never used
	RekeyAttemptTime   time.Duration // give up a handshake after retrying this long
	RekeyTimeout       time.Duration // retry an unanswered initiation after this (plus jitter)
	KeepaliveTimeout   time.Duration // answer received data with a keepalive after this much silence
	RekeyAfterMessages uint64        // initiator rekeys after sending this many messages
	Tick               time.Duration // how often timers are evaluated
	// TransportFallback is how long a handshake of a Transport auto peer
	// may go unanswered over UDP before the peer moves to TCP (and how
	// long a stream may carry none before it is redialed).
	TransportFallback time.Duration
	// UDPRetry is how often an auto peer on TCP checks whether UDP works
	// again, at first; it backs off to ten times that.
	UDPRetry time.Duration
}

// DefaultTimers are the values of the WireGuard whitepaper (section 6).
func DefaultTimers() Timers {
	return Timers{
		RekeyAfterTime:     protocol.RekeyAfterTime,
		RejectAfterTime:    protocol.RejectAfterTime,
		RekeyAttemptTime:   protocol.RekeyAttemptTime,
		RekeyTimeout:       protocol.RekeyTimeout,
		KeepaliveTimeout:   protocol.KeepaliveTimeout,
		RekeyAfterMessages: protocol.RekeyAfterMessages,
		Tick:               100 * time.Millisecond,
		TransportFallback:  2 * protocol.RekeyTimeout,
		UDPRetry:           30 * time.Second,
	}
}

func (t Timers) withDefaults() Timers {
	d := DefaultTimers()
	if t.RekeyAfterTime == 0 {
		t.RekeyAfterTime = d.RekeyAfterTime
	}
	if t.RejectAfterTime == 0 {
		t.RejectAfterTime = d.RejectAfterTime
	}
	if t.RekeyAttemptTime == 0 {
		t.RekeyAttemptTime = d.RekeyAttemptTime
	}
	if t.RekeyTimeout == 0 {
		t.RekeyTimeout = d.RekeyTimeout
	}
	if t.KeepaliveTimeout == 0 {
		t.KeepaliveTimeout = d.KeepaliveTimeout
	}
	if t.RekeyAfterMessages == 0 {
		t.RekeyAfterMessages = d.RekeyAfterMessages
	}
	if t.TransportFallback == 0 {
		t.TransportFallback = 2 * t.RekeyTimeout
	}
	if t.UDPRetry == 0 {
		t.UDPRetry = d.UDPRetry
	}
	if t.Tick == 0 {
		t.Tick = min(d.Tick, t.RekeyTimeout/10)
	}
	return t
}
