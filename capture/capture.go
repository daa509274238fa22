//go:build linux

package capture

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Options says what Run does with the packets and when it stops.
type Options struct {
	// Count stops the capture after this many packets passed the filter;
	// 0 means no limit.
	Count int
	// Duration stops the capture after this long; 0 means no limit.
	Duration time.Duration
	// Filter selects the packets to keep (written, printed and counted);
	// the zero Filter keeps all.
	Filter Filter
	// Writer, if not nil, receives every kept packet as pcapng.
	Writer *Writer
	// Print, if not nil, receives one Line per kept packet.
	Print io.Writer
}

// Stats counts what a capture saw.
type Stats struct {
	// Captured is the number of packets read from the source.
	Captured int
	// Kept is the number of packets that passed the filter, and so were
	// written and printed.
	Kept int
}

// Run captures from src until o.Count packets are kept, o.Duration has
// passed, ctx is done, or reading, writing or printing fails. It closes src
// before it returns: closing is what stops a read waiting for a packet.
//
// A stop by count, duration or ctx is normal and returns a nil error; the
// Stats are valid in every case. The Writer has been flushed after each
// packet, so whatever it writes to holds a complete pcapng file; closing
// that is the caller's.
func Run(ctx context.Context, src Source, o Options) (Stats, error) {
	defer src.Close()
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	// When ctx ends, close the source: the blocked ReadPacket returns.
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()

	var st Stats
	lt := src.LinkType()
	for o.Count <= 0 || st.Kept < o.Count {
		p, err := src.ReadPacket()
		if err != nil {
			if ctx.Err() != nil {
				return st, nil // stopped on purpose
			}
			return st, err
		}
		st.Captured++
		pkt := Decode(p, lt)
		if !o.Filter.Match(pkt) {
			continue
		}
		st.Kept++
		if o.Writer != nil {
			if err := o.Writer.WritePacket(p); err != nil {
				return st, err
			}
		}
		if o.Print != nil {
			if _, err := fmt.Fprintln(o.Print, Line(p, pkt)); err != nil {
				return st, fmt.Errorf("capture: print: %w", err)
			}
		}
	}
	return st, nil
}
