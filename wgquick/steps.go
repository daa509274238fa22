package wgquick

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tapwire/tapwire/netconf"
)

// Step is one thing a Plan does. Its String says what, in the words of
// ip(8), wg(8) or the shell where they have them. The steps are the types of
// this file; a Runner carries each out.
type Step interface {
	fmt.Stringer
	step()
}

// RunHook runs a PreUp, PostUp, PreDown or PostDown command as wg-quick
// does: with bash (sh where bash is not installed), errexit and pipefail
// on; %i is already replaced by the interface's name.
type RunHook struct {
	Stage string // PreUp, PostUp, PreDown or PostDown
	Cmd   string
}

// StartDevice creates the tunnel device and configures it from the file
// (keys, port, peers). The caller does it: the start function given to
// Runner.Up.
type StartDevice struct {
	Name string
	TAP  bool // a tap device (Ethernet frames) rather than tun
	MTU  int  // 0: automatic
}

// AddBridge creates the Linux bridge Name, up and without addresses.
type AddBridge struct{ Name string }

// AttachBridge makes Link a port of Bridge.
type AttachBridge struct{ Link, Bridge string }

// SetUp sets Link administratively up.
type SetUp struct{ Link string }

// AddAddr gives Link the address Addr (an IPv6 one without duplicate
// address detection).
type AddAddr struct {
	Link string
	Addr netip.Prefix
}

// DelAddr takes the address Addr from Link again.
type DelAddr struct {
	Link string
	Addr netip.Prefix
}

// AddRoute adds a route.
type AddRoute struct{ Route netconf.Route }

// SetFwMark sets the fwmark of the device's socket, as `wg set IFACE
// fwmark` does: the mark the policy rules of a default route look for.
type SetFwMark struct {
	Name string
	Mark uint32
}

// AddRule adds a policy routing rule.
type AddRule struct{ Rule netconf.Rule }

// DelRule deletes a policy routing rule.
type DelRule struct{ Rule netconf.Rule }

// Sysctl sets a kernel parameter of the network namespace, such as
// net.ipv4.conf.all.src_valid_mark.
type Sysctl struct{ Key, Value string }

// SetDNS gives the interface its DNS servers and search domains, with
// Tool (resolvconf or resolvectl) through Cmds.
type SetDNS struct {
	Tool    string
	Entries []string  // the file's DNS entries
	Cmds    []Command // what sets them
	Unset   Command   // what takes them back (as the plan's UnsetDNS step)
}

// UnsetDNS takes the interface's DNS settings back.
type UnsetDNS struct{ Cmd Command }

// Log says Msg with Args (slog's key-value pairs) in the log.
type Log struct {
	Msg  string
	Args []any
}

// SaveConfig writes the running configuration back to the file
// (SaveConfig = true). The caller does it: the save function given to
// Applied.Down.
type SaveConfig struct{}

// CloseDevice closes the tunnel device, which takes its link, addresses
// and routes with it.
type CloseDevice struct{ Name string }

// Command is a program to run: its path and arguments, and what it reads
// on its standard input.
type Command struct {
	Args  []string
	Stdin string
}

func (c Command) String() string {
	s := strings.Join(c.Args, " ")
	if c.Stdin != "" {
		s += " < " + strconv.Quote(c.Stdin)
	}
	return s
}

func (s RunHook) String() string      { return "hook " + s.Stage + ": " + s.Cmd }
func (s AddBridge) String() string    { return "ip link add " + s.Name + " type bridge" }
func (s AttachBridge) String() string { return "ip link set " + s.Link + " master " + s.Bridge }
func (s SetUp) String() string        { return "ip link set " + s.Link + " up" }
func (s AddAddr) String() string      { return "ip address add " + s.Addr.String() + " dev " + s.Link }
func (s DelAddr) String() string      { return "ip address del " + s.Addr.String() + " dev " + s.Link }
func (s AddRoute) String() string     { return "ip route add " + s.Route.String() }
func (s SetFwMark) String() string {
	return "wg set " + s.Name + " fwmark " + strconv.FormatUint(uint64(s.Mark), 10)
}
func (s AddRule) String() string     { return ruleCmd("add", s.Rule) }
func (s DelRule) String() string     { return ruleCmd("del", s.Rule) }
func (s Sysctl) String() string      { return "sysctl -w " + s.Key + "=" + s.Value }
func (s UnsetDNS) String() string    { return s.Cmd.String() }
func (s SaveConfig) String() string  { return "save the running configuration to the file" }
func (s CloseDevice) String() string { return "close the device " + s.Name }

func (s StartDevice) String() string {
	kind, mtu := "tun", "automatic"
	if s.TAP {
		kind = "tap"
	}
	if s.MTU != 0 {
		mtu = strconv.Itoa(s.MTU)
	}
	return "start the " + kind + " device " + s.Name + " (MTU " + mtu + ")"
}

func (s SetDNS) String() string {
	cmds := make([]string, len(s.Cmds))
	for i, c := range s.Cmds {
		cmds[i] = c.String()
	}
	return strings.Join(cmds, "; ")
}

func (s Log) String() string {
	var b strings.Builder
	b.WriteString("log: " + s.Msg)
	for i := 0; i+1 < len(s.Args); i += 2 {
		fmt.Fprintf(&b, " %v=%v", s.Args[i], s.Args[i+1])
	}
	return b.String()
}

// ruleCmd formats a rule as ip rule does, "ip -6 rule" for IPv6.
func ruleCmd(verb string, r netconf.Rule) string {
	s, v6 := strings.CutPrefix(r.String(), "-6 ")
	if v6 {
		return "ip -6 rule " + verb + " " + s
	}
	return "ip rule " + verb + " " + s
}

func (RunHook) step()      {}
func (StartDevice) step()  {}
func (AddBridge) step()    {}
func (AttachBridge) step() {}
func (SetUp) step()        {}
func (AddAddr) step()      {}
func (DelAddr) step()      {}
func (AddRoute) step()     {}
func (SetFwMark) step()    {}
func (AddRule) step()      {}
func (DelRule) step()      {}
func (Sysctl) step()       {}
func (SetDNS) step()       {}
func (UnsetDNS) step()     {}
func (Log) step()          {}
func (SaveConfig) step()   {}
func (CloseDevice) step()  {}

// DelRoute deletes a route that outlives the device: a host route to a
// peer's endpoint through the host's gateway.
type DelRoute struct{ Route netconf.Route }

func (s DelRoute) String() string { return "ip route del " + s.Route.String() }
func (DelRoute) step()            {}
