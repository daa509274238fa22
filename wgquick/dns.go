package wgquick

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/tapwire/tapwire/config"
)

// DNS = applied as wg-quick applies it: the servers and search domains go to
// resolvconf(8) for the interface (-m 0 -x: first, exclusively), and are
// taken back on down. Where there is no resolvconf but systemd-resolved
// runs, resolvectl sets them on the link instead (with "~." as a routing
// domain when the tunnel carries the default route, so that every name is
// asked through it). A file with DNS on a host with neither is refused
// before anything is created.

// The kinds of DNSTool.
const (
	Resolvconf = "resolvconf"
	Resolvectl = "resolvectl"
)

// DNSTool is how a host takes DNS settings for an interface.
type DNSTool struct {
	Kind string // Resolvconf or Resolvectl; "": none
	Path string // the program
}

// noDNSTool is why a file with DNS cannot come up on a host without a tool.
const noDNSTool = "neither resolvconf nor resolvectl (with systemd-resolved running) is here to apply it: " +
	"install resolvconf (Debian: apt install openresolv), or remove DNS and set it in a PostUp hook"

// FindDNSTool finds resolvconf, or resolvectl with systemd-resolved
// running, in $PATH; the error says what to install.
func FindDNSTool() (DNSTool, error) {
	if p, err := exec.LookPath("resolvconf"); err == nil {
		return DNSTool{Resolvconf, p}, nil
	}
	if p, err := exec.LookPath("resolvectl"); err == nil {
		if _, err := os.Stat("/run/systemd/resolve"); err == nil {
			return DNSTool{Resolvectl, p}, nil
		}
	}
	return DNSTool{}, fmt.Errorf("%s", noDNSTool)
}

// CheckDNS refuses cfg, before anything is created, when it has DNS and
// this host has no tool to apply it: a *config.Error naming the file, line
// and key.
func CheckDNS(cfg *config.Config) error {
	if len(cfg.Interface.DNS) == 0 {
		return nil
	}
	if _, err := FindDNSTool(); err != nil {
		return dnsError(cfg, err.Error())
	}
	return nil
}

func dnsError(cfg *config.Config, msg string) error {
	return &config.Error{File: cfg.Path, Line: cfg.Interface.DNSLine, Key: "DNS", Msg: msg}
}

// splitDNS splits DNS entries into servers (addresses) and search domains.
func splitDNS(entries []string) (servers, search []string) {
	for _, e := range entries {
		if _, err := netip.ParseAddr(e); err == nil {
			servers = append(servers, e)
		} else {
			search = append(search, e)
		}
	}
	return servers, search
}

// ResolvconfPrefix returns wg-quick's resolvconf_iface_prefix for the
// contents of /etc/resolvconf/interface-order: the prefix Debian's
// resolvconf orders tunnels by ("tun." when it has "tun*"), or "".
func ResolvconfPrefix(interfaceOrder []byte) string {
	re := regexp.MustCompile(`^([A-Za-z0-9-]+)\*$`)
	sc := bufio.NewScanner(bytes.NewReader(interfaceOrder))
	for sc.Scan() {
		if m := re.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			return m[1] + "."
		}
	}
	return ""
}

// dnsSteps returns what applies entries to iface and what takes them back;
// routeAll makes a resolvectl link the route for every name.
func dnsSteps(t DNSTool, prefix, iface string, entries []string, routeAll bool) (SetDNS, UnsetDNS) {
	servers, search := splitDNS(entries)
	set := SetDNS{Tool: t.Kind, Entries: entries}
	switch t.Kind {
	case Resolvconf:
		var b strings.Builder
		for _, s := range servers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(search) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
		}
		set.Cmds = []Command{{Args: []string{t.Path, "-a", prefix + iface, "-m", "0", "-x"}, Stdin: b.String()}}
		set.Unset = Command{Args: []string{t.Path, "-d", prefix + iface, "-f"}}
	case Resolvectl:
		if len(servers) > 0 {
			set.Cmds = append(set.Cmds, Command{Args: append([]string{t.Path, "dns", iface}, servers...)})
		}
		domains := search
		if routeAll {
			domains = append(domains, "~.")
		}
		if len(domains) > 0 {
			set.Cmds = append(set.Cmds, Command{Args: append([]string{t.Path, "domain", iface}, domains...)})
		}
		set.Unset = Command{Args: []string{t.Path, "revert", iface}}
	}
	return set, UnsetDNS{set.Unset}
}
