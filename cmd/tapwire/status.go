package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tapwire/tapwire/tunnel"
	"github.com/tapwire/tapwire/uapi"
)

// runStatus is tapwire status [INTERFACE...] (names).
func runStatus(ctx context.Context, stdout, stderr io.Writer, f statusFlags, names []string) error {
	for i, n := range names {
		names[i] = resolveIface(n) // macOS: wg0's utun
	}
	infos, err := statusInfos(uapi.SocketDir, names)
	if f.json {
		out := []statusJSON{}
		for _, in := range infos {
			out = append(out, statusJSON{in, daemonPrivileges(in.Name)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for i, in := range infos {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printInfo(stdout, in, daemonPrivileges(in.Name), time.Now())
		}
		if len(infos) == 0 && len(names) == 0 && err == nil {
			fmt.Fprintln(stdout, "no tapwire interfaces are running")
		}
	}
	return err
}

// statusJSON is one interface in tapwire status --json: the engine's
// report and, for an interface of tapwire up, the privileges its process
// kept.
type statusJSON struct {
	tunnel.Info
	Privileges string `json:"privileges,omitempty"`
}

// daemonPrivileges returns what the tapwire up of the interface name kept
// once it was up, as its state file says (see privileges.go); "" for an
// interface of another program (tapwire-go) or one still coming up.
func daemonPrivileges(name string) string {
	if rf := lookRunFiles(name); rf.live && rf.state != nil {
		return rf.state.Privileges
	}
	return ""
}

// statusInfos asks the UAPI sockets in dir (uapi.SocketDir, or a test's
// directory) for their tapwire information: the sockets of names, or every
// IFACE.sock in dir when names is empty. Listing, it passes over the
// sockets that do not answer (another implementation's, or stale ones); a
// named interface that does not answer is an error. Sockets this user may
// not open are an error that names them and says that it takes root: never
// "none running" for want of permission, as wg says "Permission denied".
// The interfaces that answered are returned with the error.
func statusInfos(dir string, names []string) ([]tunnel.Info, error) {
	explicit := len(names) > 0
	if !explicit {
		var err error
		names, err = uapi.Interfaces(dir)
		switch {
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("cannot list %s: permission denied; %s", dir, statusNeedsRoot)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("list the interfaces' sockets: %w", err)
		}
	}
	var infos []tunnel.Info
	var errs []error
	var denied []string
	for _, name := range names {
		path := filepath.Join(dir, name+uapi.SocketSuffix)
		var in tunnel.Info
		err := uapi.GetInfoPath(path, &in)
		switch {
		case err == nil:
			infos = append(infos, in)
		case errors.Is(err, fs.ErrPermission):
			denied = append(denied, path+socketOwner(path))
		case !explicit:
			// another implementation's socket, or a stale one
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: no such tapwire interface (no %s)", name, path))
		default:
			errs = append(errs, err)
		}
	}
	if len(denied) > 0 {
		errs = append(errs, fmt.Errorf("cannot open %s: permission denied; %s", strings.Join(denied, ", "), statusNeedsRoot))
	}
	return infos, errors.Join(errs...)
}

// statusNeedsRoot is what tapwire status says when the sockets are closed to
// its user. Connecting to a unix socket takes write permission on its file,
// which CAP_NET_ADMIN does not give; root, or CAP_DAC_OVERRIDE, has it.
const statusNeedsRoot = "this needs root (or CAP_DAC_OVERRIDE): run it with sudo"

// socketOwner describes the owner and mode of the file at path, as
// " (owner root, mode 0600)", or returns "" if it cannot be read.
func socketOwner(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return ""
	}
	uid, _, ok := fileOwner(fi)
	if !ok {
		return ""
	}
	owner := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	} else {
		owner = "uid " + owner
	}
	return fmt.Sprintf(" (owner %s, mode %04o)", owner, fi.Mode().Perm())
}

// printInfo prints one interface as wg show does, with what wg show lacks:
// the mode, the privileges its process kept (priv, if not ""), mode
// mismatches, the MAC table and the drop counters.
func printInfo(w io.Writer, in tunnel.Info, priv string, now time.Time) {
	fmt.Fprintf(w, "interface: %s\n", in.Name)
	if in.Mode == "tap" {
		fmt.Fprintf(w, "  mode: tap (Ethernet frames up to %d bytes, MTU %d)\n", in.MaxFrame, in.MTU)
	} else {
		fmt.Fprintf(w, "  mode: tun (IP packets, MTU %d)\n", in.MTU)
	}
	if priv != "" {
		fmt.Fprintf(w, "  privileges: %s\n", priv)
	}
	if in.ListenTCP != 0 {
		fmt.Fprintf(w, "  listening port: %d (UDP), %d (TCP)\n", in.ListenPort, in.ListenTCP)
	} else {
		fmt.Fprintf(w, "  listening port: %d\n", in.ListenPort)
	}
	if in.MSS4 != 0 {
		fmt.Fprintf(w, "  mss clamp: %d (IPv4), %d (IPv6), lower where a peer's path needs it\n", in.MSS4, in.MSS6)
	}
	if in.Mode == "tap" {
		fmt.Fprintf(w, "  mac ageing: %.0f s\n", in.AgeingSec)
		if in.TapMAC != "" {
			fmt.Fprintf(w, "  tap mac: %s (pinned: no peer may send from it)\n", in.TapMAC)
		}
		if in.FloodLimit != 0 {
			fmt.Fprintf(w, "  flood limit: %d frames/s per peer (broadcast, multicast, unknown unicast)\n", in.FloodLimit)
		}
	}
	other := map[string]string{"tap": "tun (IP packets)", "tun": "tap (Ethernet frames)"}[in.Mode]
	for _, p := range in.Peers {
		fmt.Fprintf(w, "\npeer: %s\n", p.PublicKey)
		switch {
		case p.Endpoint != "" && p.EndpointName != "":
			fmt.Fprintf(w, "  endpoint: %s (%s, followed)\n", p.Endpoint, p.EndpointName)
		case p.Endpoint != "":
			fmt.Fprintf(w, "  endpoint: %s\n", p.Endpoint)
		case p.EndpointName != "":
			fmt.Fprintf(w, "  endpoint: %s (does not resolve yet)\n", p.EndpointName)
		}
		if t := transportString(p); t != "" {
			fmt.Fprintf(w, "  transport: %s\n", t)
		}
		if p.LastHandshake != 0 {
			fmt.Fprintf(w, "  latest handshake: %s ago\n", now.Sub(time.Unix(p.LastHandshake, 0)).Round(time.Second))
		}
		fmt.Fprintf(w, "  transfer: %s received, %s sent\n", bytesString(p.RxBytes), bytesString(p.TxBytes))
		if p.PathMTU > 0 {
			fmt.Fprintf(w, "  path mtu: %s\n", pathString(in.Mode, p))
		}
		if in.MSS4 != 0 && p.MSS4 != 0 {
			fmt.Fprintf(w, "  mss clamp: %d (IPv4), %d (IPv6)\n", p.MSS4, p.MSS6)
		}
		if in.Mode == "tap" {
			fmt.Fprintf(w, "  macs learned: %d\n", p.MACs)
		}
		if len(p.AllowedMACs) > 0 {
			fmt.Fprintf(w, "  allowed macs: %s\n", strings.Join(p.AllowedMACs, ", "))
		}
		if p.AnyMAC {
			fmt.Fprintf(w, "  allowed macs: any. WARNING: this peer may send from any address but the tap's,\n"+
				"    and so take over the other peers' hosts. Set AllowedMACs in its [Peer] section.\n")
		}
		if p.FloodLimited > 0 {
			fmt.Fprintf(w, "  flood limited: %d frames dropped over the flood limit\n", p.FloodLimited)
		}
		if p.ModeMismatch > 0 {
			fmt.Fprintf(w, "  MODE MISMATCH: the peer runs %s; %d of its messages dropped, nothing delivered either way.\n"+
				"    Set the same Mode in [Interface] on both ends.\n", other, p.ModeMismatch)
		}
	}
	if in.Mode == "tap" {
		fmt.Fprintf(w, "\nmac table (%d):\n", len(in.MACs))
		if len(in.MACs) > 0 {
			fmt.Fprintf(w, "  %-17s  %-8s  %s\n", "MAC", "AGE", "PORT")
		}
		for _, m := range in.MACs {
			port := "local (" + in.Name + ")"
			if m.Peer != "" {
				port = "peer " + m.Peer
			}
			if m.Pinned {
				port += ", pinned"
			}
			fmt.Fprintf(w, "  %-17s  %-8s  %s\n", m.MAC, time.Duration(m.AgeSec*float64(time.Second)).Round(100*time.Millisecond), port)
		}
	}
	var drops []string
	keys := make([]string, 0, len(in.Counters))
	for k := range in.Counters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := in.Counters[k]; v > 0 {
			drops = append(drops, fmt.Sprintf("%s %d", strings.ReplaceAll(k, "_", " "), v))
		}
	}
	if s := in.Switch; s != nil {
		fmt.Fprintf(w, "\nswitch: %d learned, %d moved, %d aged; dropped: %d over the per-peer cap, %d not allowed, %d bad source, %d hairpin, %d from a pinned address\n",
			s.Learned, s.Moved, s.Aged, s.CapHit, s.NotAllowed, s.BadSource, s.Hairpin, s.Pinned)
	}
	if len(drops) > 0 {
		fmt.Fprintf(w, "counters: %s\n", strings.Join(drops, ", "))
	}
}

// pathString says what a peer's path carries: its MTU, how it was learned,
// and what happens to what does not fit one datagram.
func pathString(mode string, p tunnel.PeerInfo) string {
	how := map[string]string{
		"route": "the route's MTU", "start": "a safe start, probing", "probe": "probed",
		"icmp": "a router's ICMP report", "local": "this host's interface",
	}[p.PathMTUSource]
	if how == "" {
		how = p.PathMTUSource
	}
	if p.PathMTUAgeSec > 0 {
		how += fmt.Sprintf(" %s ago", time.Duration(p.PathMTUAgeSec*float64(time.Second)))
	}
	what, beyond := "frames", "larger ones in fragments"
	switch {
	case mode == "tap" && !p.Tapwire:
		beyond = "larger ones dropped: the peer answers no probes and takes no fragments (an older tapwire?)"
	case mode != "tap" && p.Tapwire:
		what, beyond = "packets", "larger ones answered with ICMP too big (IPv4 without DF: in fragments)"
	case mode != "tap":
		what, beyond = "packets", "larger ones answered with ICMP too big (IPv4 without DF: fragmented; a WireGuard peer)"
	}
	return fmt.Sprintf("%d (%s); %s up to %d bytes in one datagram, %s", p.PathMTU, how, what, p.MaxWhole, beyond)
}

// transportString says how a peer is reached, when it is not plain UDP.
func transportString(p tunnel.PeerInfo) string {
	var s string
	switch {
	case p.Stream != "" && p.Transport == "auto":
		s = p.Stream + " (auto: UDP gets no handshake through)"
	case p.Stream != "":
		s = p.Stream
	case p.Transport == "auto":
		s = "udp (auto: TCP when UDP is blocked)"
	case p.Transport == "tcp":
		s = "tcp (not connected)"
	default:
		return ""
	}
	if p.ToTCP+p.ToUDP > 0 {
		s += fmt.Sprintf("; moves: %d to TCP, %d back to UDP", p.ToTCP, p.ToUDP)
	}
	return s
}

// bytesString formats a byte count as B, KiB, MiB or GiB.
func bytesString(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
