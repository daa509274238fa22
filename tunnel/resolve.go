package tunnel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/tapwire/tapwire/internal/inns"
	"github.com/tapwire/tapwire/protocol"
)

// Endpoint names that follow DNS.
//
// wg, wg-quick, the kernel and wireguard-go resolve an endpoint's name once;
// a server that moves is lost until someone runs a command (distributions
// ship reresolve-dns.sh as a cron job). A peer given a name with
// SetEndpointName keeps it: when its handshakes go unanswered (an
// initiation retried for RekeyTimeout), or while it has no endpoint at all
// (the name did not resolve when it was set), the timers resolve the name
// again, at most every resolveInterval, off the data path, and the peer
// moves to the new address with an initiation at once. Authenticated
// packets from elsewhere still move the endpoint as roaming does; the name
// is asked only when the peer is silent.
const (
	// resolveInterval is the least time between two resolutions of a
	// peer's name.
	resolveInterval = 5 * time.Second
	// resolveTimeout bounds one resolution.
	resolveTimeout = 5 * time.Second
)

// SetEndpointName makes the endpoint of peer follow hostport, a host name
// (or address) and a port as in an Endpoint line: the peer's endpoint is
// set by the caller as the name resolves now, and the device resolves the
// name again when the peer stops answering. "" stops following. An
// endpoint set through Apply (wg set) also stops it. It fails for a peer
// the device does not have or a hostport without a numeric port.
func (d *Device) SetEndpointName(peer protocol.Key, hostport string) error {
	d.mu.RLock()
	p := d.peers[peer]
	d.mu.RUnlock()
	if p == nil {
		return fmt.Errorf("tunnel: set endpoint name: no peer %s", peer)
	}
	if hostport == "" {
		p.epName.Store(nil)
		return nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("tunnel: endpoint name %q: %w", hostport, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || host == "" {
		return fmt.Errorf("tunnel: endpoint name %q: want host:port with a port from 1 to 65535", hostport)
	}
	p.epName.Store(&hostport)
	p.wake()
	return nil
}

// tickResolve starts a resolution of p's endpoint name when p needs one
// (see above). It runs on the timers goroutine; the resolution runs on a
// goroutine of its own, one per peer at a time.
func (p *Peer) tickResolve(now time.Time) {
	name := p.epName.Load()
	if name == nil || now.UnixNano()-p.lastResolve.Load() < int64(resolveInterval) {
		return
	}
	d := p.dev
	p.mu.Lock()
	stuck := p.hsIndex != 0 && now.Sub(p.hsStarted) >= d.tm.RekeyTimeout
	p.mu.Unlock()
	if p.endpoint.Load() != nil && !stuck {
		return
	}
	if !p.resolving.CompareAndSwap(false, true) {
		return
	}
	p.lastResolve.Store(now.UnixNano())
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer p.resolving.Store(false)
		ctx, cancel := d.boundedContext(resolveTimeout)
		defer cancel()
		ep, err := d.resolve(ctx, *name, p.endpoint.Load())
		if err != nil {
			d.log.Debug("endpoint name does not resolve", "peer", p.public.String(), "name", *name, "err", err)
			return
		}
		if p.epName.Load() == nil {
			return // wg set gave an address meanwhile
		}
		p.moveEndpoint(ep, *name)
	}()
}

// resolve looks hostport up in the device's network namespace and returns
// the address to use: cur's if the name still has it, else one of the
// family the socket and cur have, else the first.
func (d *Device) resolve(ctx context.Context, hostport string, cur *netip.AddrPort) (netip.AddrPort, error) {
	host, port, _ := net.SplitHostPort(hostport)
	pn, _ := strconv.ParseUint(port, 10, 16)
	var addrs []netip.Addr
	err := inns.Do(d.netNS, func() (err error) {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		return err
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	d.mu.RLock()
	v4only := d.conn != nil && !d.conn.IPv6()
	d.mu.RUnlock()
	var best netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case v4only && !a.Is4():
			continue
		case cur != nil && a == cur.Addr():
			return *cur, nil
		case !best.IsValid(), cur != nil && a.Is4() == cur.Addr().Is4() && best.Is4() != cur.Addr().Is4():
			best = a
		}
	}
	if !best.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%s has no address this socket reaches", host)
	}
	return netip.AddrPortFrom(best, uint16(pn)), nil
}

// moveEndpoint makes ep p's endpoint, as its name now says, and sends an
// initiation there at once if a handshake is waiting.
func (p *Peer) moveEndpoint(ep netip.AddrPort, name string) {
	if cur := p.endpoint.Load(); cur != nil && *cur == ep {
		return
	}
	p.dev.log.Info("endpoint name resolves to a new address", "peer", p.public.String(), "name", name, "endpoint", ep)
	p.setEndpoint(ep)
	p.initiate(p.dev.now(), true)
}

// boundedContext returns a context that ends after timeout or when the
// device closes, whichever comes first.
func (d *Device) boundedContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	go func() {
		select {
		case <-d.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
