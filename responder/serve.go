package responder

import (
	"errors"

	"github.com/tapwire/tapwire/tun"
)

// Device is what Serve needs of a TUN or TAP device: *tun.Device and
// *tun.Queue have these methods.
type Device interface {
	ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error)
	WriteBatch(bufs [][]byte, offset int) (int, error)
}

// Serve reads packets from dev in batches, turns those it answers into
// replies in place, and writes the replies back in one batch, until reading
// fails. mode says whether dev carries IP packets (ModeTUN, answered by
// ReplyIP) or Ethernet frames (ModeTAP, answered by ReplyEthernet). It returns
// the read error; after dev is closed that matches tun.ErrClosed. A reply the
// kernel refuses is dropped and the rest are still sent.
func (r *Responder) Serve(dev Device, mode tun.Mode) error {
	const batch = tun.DefaultBatchSize
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, batch)
	replies := make([][]byte, 0, batch)
	reply := r.ReplyIP
	if mode == tun.ModeTAP {
		reply = r.ReplyEthernet
	}
	for {
		n, err := dev.ReadBatch(bufs, sizes, tun.Headroom)
		if err != nil {
			return err
		}
		replies = replies[:0]
		for i := range n {
			if m, ok := reply(bufs[i][tun.Headroom:], sizes[i]); ok {
				replies = append(replies, bufs[i][:tun.Headroom+m])
			}
		}
		if len(replies) == 0 {
			continue
		}
		// A reply the kernel refuses alone is dropped; the rest go out.
		if _, err := dev.WriteBatch(replies, tun.Headroom); err != nil {
			if pe := (*tun.PacketError)(nil); !errors.As(err, &pe) {
				return err
			}
		}
	}
}
