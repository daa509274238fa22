package netconf

import (
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (r Rule) nl() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.V6 {
		nr.Family = unix.AF_INET6
	}
	if r.Priority > 0 {
		nr.Priority = r.Priority
	}
	nr.Table = r.Table
	nr.Mark = r.Mark
	nr.Invert = r.Invert
	nr.SuppressPrefixlen = r.SuppressPrefixlen
	return nr
}

// findRule reports whether a rule with r's selector and action exists.
func findRule(nl *netlink.Handle, r Rule) (bool, error) {
	want := r.nl()
	rules, err := nl.RuleList(want.Family)
	if err != nil {
		return false, err
	}
	for _, x := range rules {
		if x.Table == want.Table && x.Mark == want.Mark && x.Invert == want.Invert &&
			x.SuppressPrefixlen == want.SuppressPrefixlen && (r.Priority == 0 || x.Priority == r.Priority) {
			return true, nil
		}
	}
	return false, nil
}

// AddRule adds a policy routing rule (ip rule add). A rule that is already
// there is success.
func (h *Handle) AddRule(r Rule) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	var found bool
	if err == nil {
		found, err = findRule(nl, r)
	}
	if err == nil && !found {
		err = nl.RuleAdd(r.nl())
	}
	if err != nil {
		return h.errorf(err, "add rule %s", r)
	}
	return nil
}

// DelRule deletes a policy routing rule (ip rule del). A rule that is not
// there is success.
func (h *Handle) DelRule(r Rule) error {
	nl, err := h.lock()
	defer h.mu.Unlock()
	for err == nil {
		var found bool
		if found, err = findRule(nl, r); err != nil || !found {
			break
		}
		err = nl.RuleDel(r.nl())
	}
	if err != nil {
		return h.errorf(err, "delete rule %s", r)
	}
	return nil
}
