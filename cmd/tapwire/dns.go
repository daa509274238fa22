package main

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

// dnsTool is how this host takes DNS settings for an interface.
type dnsTool struct {
	kind string // "resolvconf" or "resolvectl"
	path string
}

// findDNSTool finds resolvconf, or resolvectl with systemd-resolved
// running; the error says what to install.
func findDNSTool() (dnsTool, error) {
	if p, err := exec.LookPath("resolvconf"); err == nil {
		return dnsTool{"resolvconf", p}, nil
	}
	if p, err := exec.LookPath("resolvectl"); err == nil {
		if _, err := os.Stat("/run/systemd/resolve"); err == nil {
			return dnsTool{"resolvectl", p}, nil
		}
	}
	return dnsTool{}, fmt.Errorf("neither resolvconf nor resolvectl (with systemd-resolved running) is here to apply it: " +
		"install resolvconf (Debian: apt install openresolv), or remove DNS and set it in a PostUp hook")
}

// checkDNS refuses cfg before anything is created when it has DNS and the
// host has no tool to apply it, naming the file, line and key.
func checkDNS(cfg *config.Config) (dnsTool, error) {
	if len(cfg.Interface.DNS) == 0 {
		return dnsTool{}, nil
	}
	tool, err := findDNSTool()
	if err != nil {
		return tool, &config.Error{File: cfg.Path, Line: cfg.Interface.DNSLine, Key: "DNS", Msg: err.Error()}
	}
	return tool, nil
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

// resolvconfName is the name resolvconf knows the interface by: wg-quick's
// resolvconf_iface_prefix, the prefix Debian's resolvconf orders tunnels by
// ("tun." when its interface-order has "tun*"), then the interface.
func resolvconfName(iface string) string {
	b, err := os.ReadFile("/etc/resolvconf/interface-order")
	if err != nil {
		return iface
	}
	re := regexp.MustCompile(`^([A-Za-z0-9-]+)\*$`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if m := re.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			return m[1] + "." + iface
		}
	}
	return iface
}

// set applies entries to iface; routeAll makes a resolvectl link the
// route for every name.
func (t dnsTool) set(iface string, entries []string, routeAll bool) error {
	servers, search := splitDNS(entries)
	var cmds [][]string
	var stdin string
	switch t.kind {
	case "resolvconf":
		var b strings.Builder
		for _, s := range servers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(search) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
		}
		stdin = b.String()
		cmds = [][]string{{t.path, "-a", resolvconfName(iface), "-m", "0", "-x"}}
	case "resolvectl":
		if len(servers) > 0 {
			cmds = append(cmds, append([]string{t.path, "dns", iface}, servers...))
		}
		domains := search
		if routeAll {
			domains = append(domains, "~.")
		}
		if len(domains) > 0 {
			cmds = append(cmds, append([]string{t.path, "domain", iface}, domains...))
		}
	}
	for _, c := range cmds {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("DNS: %s: %v: %s", strings.Join(c, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// unset takes iface's DNS settings back.
func (t dnsTool) unset(iface string) error {
	var c []string
	switch t.kind {
	case "resolvconf":
		c = []string{t.path, "-d", resolvconfName(iface), "-f"}
	case "resolvectl":
		c = []string{t.path, "revert", iface}
	default:
		return nil
	}
	if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("DNS: %s: %v: %s", strings.Join(c, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
