package wgquick

import (
	"slices"

	"github.com/tapwire/tapwire/netconf"
)

// Leftovers are what bringing an interface up leaves on the host that
// outlives the device and the process that brought it up: the policy rules
// of a default route, the addresses put on a bridge, the routes to the
// peers' endpoints outside the tunnel (outside Linux), the DNS settings.
// (Routes through the device go with it; sysctls and a bridge created for the
// interface stay, as they do on down.) Runner.Up reports them through
// Runner.Journal as it goes, so that when the process is killed before it
// takes the interface down, the next one takes them back with
// Runner.Clean. They marshal to JSON.
type Leftovers struct {
	Rules []netconf.Rule `json:"rules,omitempty"`
	Addrs []DelAddr      `json:"addrs,omitempty"`
	// Routes are routes not through the device (endpoint routes).
	Routes []netconf.Route `json:"routes,omitempty"`
	// DNS takes the DNS settings back (UnsetDNS's command).
	DNS *Command `json:"dns,omitempty"`
}

// Empty reports whether there is nothing to take back.
func (l Leftovers) Empty() bool {
	return len(l.Rules) == 0 && len(l.Addrs) == 0 && len(l.Routes) == 0 && l.DNS == nil
}

// Steps returns the steps that take the leftovers back, in the order Down
// takes them: DNS, the rules, the bridge's addresses, the routes.
func (l Leftovers) Steps() []Step {
	var steps []Step
	if l.DNS != nil {
		steps = append(steps, UnsetDNS{*l.DNS})
	}
	for _, r := range l.Rules {
		steps = append(steps, DelRule{r})
	}
	for _, a := range l.Addrs {
		steps = append(steps, a)
	}
	for _, r := range l.Routes {
		steps = append(steps, DelRoute{r})
	}
	return steps
}

// clone returns a copy that shares nothing with l.
func (l Leftovers) clone() Leftovers {
	c := Leftovers{Rules: slices.Clone(l.Rules), Addrs: slices.Clone(l.Addrs), Routes: slices.Clone(l.Routes)}
	if l.DNS != nil {
		dns := Command{Args: slices.Clone(l.DNS.Args), Stdin: l.DNS.Stdin}
		c.DNS = &dns
	}
	return c
}

// Clean takes back what an Up whose process is gone left behind (see
// Leftovers), in the order Down would: every step runs, and what fails is
// logged. What is gone already (a rule, an address, the bridge) is no
// failure.
func (r *Runner) Clean(l Leftovers) {
	a := &Applied{r: r}
	for _, s := range l.Steps() {
		r.log().Info("taking back what a process that is gone left", "step", s.String())
		a.undo(s)
	}
}
