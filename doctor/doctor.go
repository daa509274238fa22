//go:build linux

// Package doctor says why TUN/TAP does not work on a host, and how to fix it.
//
// "Cannot open TUN/TAP dev /dev/net/tun" has five usual causes, each with its
// own fix: the device node is missing; the process lacks CAP_NET_ADMIN; a
// container's device rules (the devices cgroup) forbid c 10:200; the kernel
// has no TUN/TAP driver; or, on an OpenVZ/Virtuozzo VPS, the host has not
// enabled TUN/TAP for the container.
//
// The package separates what it observes from what it concludes. Gather reads
// the host into Facts (the device node, the capabilities, container signs,
// the devices cgroup, the kernel's driver, and a real attempt to create a TUN
// and a TAP device); Diagnose turns Facts into a Report of Results, each with
// a cause and a fix written for the environment found (Docker, Podman, LXC,
// OpenVZ, systemd-nspawn, Kubernetes or a plain host). Diagnose is pure, so
// every cause can be tested with made-up facts.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

// The statuses a check can have.
const (
	OK   Status = "ok"   // nothing wrong
	Warn Status = "warn" // works, or may work, but deserves attention
	Fail Status = "fail" // a reason TUN/TAP does not work
	Skip Status = "skip" // could not be checked here
)

// Check identifiers, in the order the checks run.
const (
	CheckNode         = "device-node"
	CheckCapability   = "capability"
	CheckEnvironment  = "environment"
	CheckDeviceCgroup = "device-cgroup"
	CheckKernel       = "kernel"
	CheckCreateTUN    = "create-tun"
	CheckCreateTAP    = "create-tap"
)

// Result is the outcome of one check. Cause and Fix are set for problems
// (Warn and Fail) and empty otherwise; Fix holds exact commands or
// configuration lines, one per line.
type Result struct {
	ID      string `json:"id"`
	Status  Status `json:"status"`
	Summary string `json:"summary"`
	Cause   string `json:"cause"`
	Fix     string `json:"fix"`
	// Detail is supporting text, such as the full error of a failed attempt
	// with the tun package's hint.
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of all checks.
type Report struct {
	// Usable is true when a TUN and a TAP device could both be created.
	Usable bool `json:"usable"`
	// Kernel is the running kernel's release.
	Kernel string `json:"kernel"`
	// Environment is the kind of host: host, docker, podman, lxc, openvz,
	// systemd-nspawn, kubernetes or container.
	Environment Kind     `json:"environment"`
	Results     []Result `json:"results"`
	// Fixed lists what --fix changed before these results were gathered.
	Fixed []string `json:"fixed,omitempty"`
}

// Result returns the result of the check with the given ID, or a zero
// Result.
func (r *Report) Result(id string) Result {
	for _, res := range r.Results {
		if res.ID == id {
			return res
		}
	}
	return Result{}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: one line per check with a mark,
// a cause and a fix under each problem, and a verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tapwire doctor: TUN/TAP on Linux %s\n\n", r.Kernel)
	for _, s := range r.Fixed {
		fmt.Fprintf(&b, "fixed  %s\n", s)
	}
	if len(r.Fixed) > 0 {
		b.WriteString("\n")
	}
	// A cause or fix already printed in full is referred to, not repeated.
	printed := map[string]string{}
	field := func(label, text, id string) {
		if text == "" {
			return
		}
		if first, ok := printed[label+text]; ok {
			text = "as for " + first + " above"
		} else {
			printed[label+text] = id
		}
		writeField(&b, label, text)
	}
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-4s  %-13s  %s\n", mark(res.Status), res.ID, res.Summary)
		if res.Status == OK || res.Status == Skip {
			continue
		}
		field("cause:", res.Cause, res.ID)
		field("fix:", res.Fix, res.ID)
	}
	b.WriteString("\n")
	b.WriteString(r.Verdict())
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Verdict is the report's conclusion in one line.
func (r *Report) Verdict() string {
	if r.Usable {
		return "verdict: TUN/TAP is usable here (a TUN and a TAP device were created and removed)"
	}
	// The first failed attempt names the cause: the headline of its cause.
	for _, id := range []string{CheckCreateTUN, CheckCreateTAP} {
		if res := r.Result(id); res.Status == Fail && res.Cause != "" {
			return "verdict: TUN/TAP is NOT usable here: " + headline(res.Cause) + " (fix above)"
		}
	}
	return "verdict: TUN/TAP is NOT usable here"
}

func mark(s Status) string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return "skip"
}

// indent is where cause and fix text starts: under the summary column.
const indent = "      "

func writeField(b *strings.Builder, label, text string) {
	if text == "" {
		return
	}
	for i, line := range strings.Split(text, "\n") {
		if i == 0 {
			fmt.Fprintf(b, "%s%-7s%s\n", indent, label, line)
		} else {
			fmt.Fprintf(b, "%s%-7s%s\n", indent, "", line)
		}
	}
}

// headline is a cause's first part: causes are written "headline:
// explanation".
func headline(cause string) string {
	cause = strings.SplitN(cause, "\n", 2)[0]
	if h, _, ok := strings.Cut(cause, ": "); ok {
		return h
	}
	return cause
}
