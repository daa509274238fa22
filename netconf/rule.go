package netconf

import "fmt"

// Rule is a policy routing rule, the kind wg-quick adds to send everything
// through a tunnel except the tunnel's own packets. Policy rules are
// Linux's: elsewhere [Handle.AddRule] and [Handle.DelRule] fail with
// [ErrNotSupported].
type Rule struct {
	V6                bool   // an IPv6 rule (else IPv4)
	Priority          int    // 0: the kernel picks
	Table             int    // look up this table
	Mark              uint32 // match packets carrying this fwmark (0: any)
	Invert            bool   // "not": match packets that do not match
	SuppressPrefixlen int    // with a value > -1, ignore routes this short or shorter (-1: off)
}

// String formats r roughly as ip rule does, with "-6 " first for IPv6.
func (r Rule) String() string {
	s := fmt.Sprintf("table %d", r.Table)
	if r.Mark != 0 {
		s = fmt.Sprintf("fwmark %#x %s", r.Mark, s)
		if r.Invert {
			s = "not " + s
		}
	}
	if r.SuppressPrefixlen >= 0 {
		s += fmt.Sprintf(" suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	if r.V6 {
		return "-6 " + s
	}
	return s
}
