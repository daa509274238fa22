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
//
// On macOS, as wg-quick does there, networksetup(8) gives every network
// service the servers and search domains, and down gives each back what
// it had (read when the plan is made: Host.DNSServices). On Windows,
// netsh sets the servers on the tunnel's own interface, which Windows asks
// first while its metric is the lowest; search domains are not set there
// (the log says so).

// The kinds of DNSTool.
const (
	Resolvconf   = "resolvconf"
	Resolvectl   = "resolvectl"
	Networksetup = "networksetup" // macOS
	Netsh        = "netsh"        // Windows
)

// DNSTool is how a host takes DNS settings for an interface.
type DNSTool struct {
	Kind string // Resolvconf, Resolvectl, Networksetup or Netsh; "": none
	Path string // the program
}

// DNSService is a macOS network service and the DNS settings it has
// before the tunnel comes up (what down gives back): nil for none
// ("Empty" to networksetup).
type DNSService struct {
	Name    string
	Servers []string
	Search  []string
}

// FindDNSTool finds the system's tool for DNS settings in $PATH (see the
// top of this file); the error says what to install.
func FindDNSTool() (DNSTool, error) { return findDNSTool() }

// findUnixDNSTool finds resolvconf, or resolvectl with systemd-resolved
// running.
func findUnixDNSTool() (DNSTool, error) {
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

// noDNSTool is why a file with DNS cannot come up on a host without a tool.
const noDNSTool = "neither resolvconf nor resolvectl (with systemd-resolved running) is here to apply it: " +
	"install resolvconf (Debian: apt install openresolv), or remove DNS and set it in a PostUp hook"

// ParseNetworkServices reads `networksetup -listallnetworkservices`: one
// service a line after the first (a note about asterisks); a service
// marked with "*" is disabled and left out.
func ParseNetworkServices(out string) []string {
	var services []string
	for i, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if i == 0 && strings.HasPrefix(line, "An asterisk") || line == "" || strings.HasPrefix(line, "*") {
			continue
		}
		services = append(services, line)
	}
	return services
}

// ParseNetworksetupList reads the answer of `networksetup -getdnsservers`
// or `-getsearchdomains`: one value a line, or a sentence ("There aren't
// any DNS Servers set on Wi-Fi.") when there is none, which is nil.
func ParseNetworksetupList(out string) []string {
	var vals []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil // a sentence: nothing set
		}
		vals = append(vals, line)
	}
	return vals
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// orEmpty is vals, or networksetup's "Empty" for none.
func orEmpty(vals []string) []string {
	if len(vals) == 0 {
		return []string{"Empty"}
	}
	return vals
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
func dnsSteps(t DNSTool, prefix, iface string, entries []string, routeAll bool, services []DNSService) (SetDNS, UnsetDNS) {
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
	case Networksetup:
		// Every service gets the tunnel's settings; down gives back what
		// each had, in one sh script (one command to record and run).
		var restore strings.Builder
		for _, svc := range services {
			set.Cmds = append(set.Cmds,
				Command{Args: append([]string{t.Path, "-setdnsservers", svc.Name}, orEmpty(servers)...)},
				Command{Args: append([]string{t.Path, "-setsearchdomains", svc.Name}, orEmpty(search)...)})
			for _, c := range [][]string{
				append([]string{t.Path, "-setdnsservers", svc.Name}, orEmpty(svc.Servers)...),
				append([]string{t.Path, "-setsearchdomains", svc.Name}, orEmpty(svc.Search)...),
			} {
				q := make([]string, len(c))
				for i, a := range c {
					q[i] = shQuote(a)
				}
				restore.WriteString(strings.Join(q, " ") + "\n")
			}
		}
		set.Unset = Command{Args: []string{"/bin/sh", "-s"}, Stdin: restore.String()}
	case Netsh:
		// The servers on the tunnel's interface, IPv4 and IPv6 apart; the
		// first replaces what is there, the others are added after it.
		var unset []string
		for _, fam := range []string{"ipv4", "ipv6"} {
			var addrs []string
			for _, s := range servers {
				if a, err := netip.ParseAddr(s); err == nil && a.Is4() == (fam == "ipv4") {
					addrs = append(addrs, s)
				}
			}
			for i, a := range addrs {
				if i == 0 {
					set.Cmds = append(set.Cmds, Command{Args: []string{t.Path, "interface", fam, "set", "dnsservers",
						"name=" + iface, "source=static", "address=" + a, "register=none", "validate=no"}})
				} else {
					set.Cmds = append(set.Cmds, Command{Args: []string{t.Path, "interface", fam, "add", "dnsservers",
						"name=" + iface, "address=" + a, fmt.Sprintf("index=%d", i+1), "validate=no"}})
				}
			}
			if len(addrs) > 0 {
				unset = append(unset, fmt.Sprintf("%s interface %s delete dnsservers name=%q address=all validate=no", t.Path, fam, iface))
			}
		}
		set.Unset = Command{Args: []string{"cmd", "/c", strings.Join(unset, " & ")}}
	}
	return set, UnsetDNS{set.Unset}
}
