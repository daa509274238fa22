//go:build linux

package doctor

import (
	"bufio"
	"strconv"
	"strings"
)

// The parsers of the /proc and /sys files Gather reads. They take the
// files' text, so tests feed them samples.

// parseStatus reads the capability sets and the OpenVZ container ID from
// /proc/self/status.
func parseStatus(text string) (c Caps, veid string) {
	var have int
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var dst *uint64
		switch key {
		case "CapEff":
			dst = &c.Eff
		case "CapPrm":
			dst = &c.Prm
		case "CapBnd":
			dst = &c.Bnd
		case "envID":
			veid = val
			continue
		default:
			continue
		}
		v, err := strconv.ParseUint(val, 16, 64)
		if err != nil {
			continue
		}
		*dst = v
		have++
	}
	c.Known = have == 3
	return c, veid
}

// cgroupLine is one line of /proc/PID/cgroup.
type cgroupLine struct {
	controllers []string // empty for the v2 hierarchy
	path        string
}

func parseCgroup(text string) []cgroupLine {
	var out []cgroupLine
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var ctrl []string
		if parts[1] != "" {
			ctrl = strings.Split(parts[1], ",")
		}
		out = append(out, cgroupLine{controllers: ctrl, path: parts[2]})
	}
	return out
}

// devicesPath returns the path of the v1 devices controller, if any, and
// the v2 path ("0::PATH"), if any.
func devicesPath(lines []cgroupLine) (v1 string, hasV1 bool, v2 string, hasV2 bool) {
	for _, l := range lines {
		if len(l.controllers) == 0 {
			v2, hasV2 = l.path, true
			continue
		}
		for _, c := range l.controllers {
			if c == "devices" {
				v1, hasV1 = l.path, true
			}
		}
	}
	return
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	root, point, fstype, opts, super string
}

func parseMountinfo(text string) []mount {
	var out []mount
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, s := range f {
			if s == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			continue
		}
		out = append(out, mount{
			root:   unescapeMount(f[3]),
			point:  unescapeMount(f[4]),
			opts:   f[5],
			fstype: f[sep+1],
			super:  f[sep+3],
		})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountOf returns the mount that holds path: the one with the longest
// mount point that is a prefix of it (the last such, as later mounts hide
// earlier ones).
func mountOf(mounts []mount, path string) (mount, bool) {
	var best mount
	found := false
	for _, m := range mounts {
		p := m.point
		if p != "/" && path != p && !strings.HasPrefix(path, p+"/") {
			continue
		}
		if !found || len(p) >= len(best.point) {
			best, found = m, true
		}
	}
	return best, found
}

func hasOpt(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// devicesAllow reports whether cgroup v1 device rules (devices.list lines
// such as "c 10:200 rwm", "c *:* m" or "a *:* rwm") grant every access in
// want to the device typ major:minor, and the first rule that matched.
func devicesAllow(rules []string, typ byte, major, minor uint32, want string) (bool, string) {
	granted := map[rune]bool{}
	var first string
	for _, rule := range rules {
		f := strings.Fields(rule)
		if len(f) != 3 || len(f[0]) != 1 {
			continue
		}
		if f[0][0] != 'a' && f[0][0] != typ {
			continue
		}
		maj, min, ok := strings.Cut(f[1], ":")
		if f[0][0] == 'a' {
			maj, min, ok = "*", "*", true
		}
		if !ok || !numMatch(maj, major) || !numMatch(min, minor) {
			continue
		}
		matched := false
		for _, a := range f[2] {
			if strings.ContainsRune(want, a) && !granted[a] {
				granted[a] = true
				matched = true
			}
		}
		if matched && first == "" {
			first = rule
		}
	}
	for _, a := range want {
		if !granted[a] {
			return false, ""
		}
	}
	return true, first
}

func numMatch(pattern string, n uint32) bool {
	if pattern == "*" {
		return true
	}
	v, err := strconv.ParseUint(pattern, 10, 32)
	return err == nil && uint32(v) == n
}

// parseKernelConfig reads CONFIG_TUN ("y", "m", "n") and whether the kernel
// has loadable modules from a kernel configuration.
func parseKernelConfig(text string) (tun string, modules bool, ok bool) {
	tun = "n"
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "CONFIG_TUN=y":
			tun = "y"
		case line == "CONFIG_TUN=m":
			tun = "m"
		case line == "CONFIG_MODULES=y":
			modules = true
		}
		if strings.HasPrefix(line, "CONFIG_") {
			ok = true
		}
	}
	return tun, modules, ok
}

// miscHasTun reports whether /proc/misc lists the TUN/TAP driver.
func miscHasTun(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "200" && f[1] == "tun" {
			return true
		}
	}
	return false
}

// modulesHasTun reports whether /proc/modules lists the tun module.
func modulesHasTun(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "tun ") {
			return true
		}
	}
	return false
}

// moduleListHasTun finds the tun module in modules.builtin or modules.dep
// text and returns its path there.
func moduleListHasTun(text string) string {
	for _, line := range strings.Split(text, "\n") {
		p, _, _ := strings.Cut(line, ":")
		p = strings.TrimSpace(p)
		base := p[strings.LastIndex(p, "/")+1:]
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if base == "tun"+ext {
				return p
			}
		}
	}
	return ""
}

// environValue returns a variable from a NUL-separated environment block.
func environValue(block, name string) string {
	for _, kv := range strings.Split(block, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// containerEnvEngine returns the engine= value of /run/.containerenv.
func containerEnvEngine(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "engine="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// uidMapInitial reports whether /proc/self/uid_map is the initial user
// namespace's identity map.
func uidMapInitial(text string) bool {
	f := strings.Fields(text)
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}
