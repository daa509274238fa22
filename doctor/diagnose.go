//go:build linux

package doctor

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Diagnose turns observed facts into a report. It does nothing to the host.
func Diagnose(f Facts) *Report {
	d := &diag{f: &f}
	d.kind, d.evidence = Classify(f.Env)
	r := &Report{
		Usable:      f.TUN.OK && f.TAP.OK,
		Kernel:      f.Kernel,
		Environment: d.kind,
	}
	r.Results = []Result{
		d.node(),
		d.capability(),
		d.environment(r.Usable),
		d.deviceCgroup(),
		d.kernel(),
		d.trial(CheckCreateTUN, "TUN", f.TUN),
		d.trial(CheckCreateTAP, "TAP", f.TAP),
	}
	return r
}

type diag struct {
	f        *Facts
	kind     Kind
	evidence []string
}

// what a container needs to be given from outside
type need uint8

const (
	needNode   need = 1 << iota // the device node
	needCap                     // CAP_NET_ADMIN
	needDev                     // a device rule allowing c 10:200
	needDriver                  // the tun module loaded on the host
)

// sudo is the prefix for commands that need root, when we are not root.
func (d *diag) sudo() string {
	if d.f.EUID == 0 {
		return ""
	}
	return "sudo "
}

// mknod is the command that makes the node, as this user can run it.
func (d *diag) mknod() string {
	s := d.sudo()
	return s + "mkdir -p /dev/net && " + s + "mknod /dev/net/tun c 10 200 && " + s + "chmod 0666 /dev/net/tun"
}

func (d *diag) exe() string {
	if d.f.Executable != "" {
		return d.f.Executable
	}
	return "/path/to/program"
}

func (d *diag) user() string {
	if d.f.User != "" {
		return d.f.User
	}
	return fmt.Sprint(d.f.EUID)
}

func (d *diag) ctid() string {
	if d.f.Env.VEID != "" && d.f.Env.VEID != "0" {
		return d.f.Env.VEID
	}
	return "CTID"
}

// openRefused reports whether an attempt failed opening /dev/net/tun with
// errno e.
func (d *diag) openRefused(e unix.Errno) bool {
	for _, t := range []Trial{d.f.TUN, d.f.TAP} {
		if t.Tried && !t.OK && t.Stage == StageOpen && t.Errno == e {
			return true
		}
	}
	return false
}

// opened reports whether some attempt got past opening /dev/net/tun.
func (d *diag) opened() bool {
	for _, t := range []Trial{d.f.TUN, d.f.TAP} {
		if t.Tried && (t.OK || t.Stage == StageCreate) {
			return true
		}
	}
	return false
}

func (d *diag) nodeGood() bool {
	n := d.f.Node
	return n.Exists && n.Char && n.Major == NodeMajor && n.Minor == NodeMinor
}

// ----- 1. the device node -----

func (d *diag) node() Result {
	n := d.f.Node
	r := Result{ID: CheckNode}
	owner := "owner " + orID(n.Owner, n.UID) + ":" + orID(n.Group, n.GID)
	switch {
	case n.StatErr != "":
		r.Status = Warn
		r.Summary = "cannot inspect " + NodePath + ": " + n.StatErr
		r.Cause = "stat failed, so whether the node exists is unknown"
		r.Fix = "run the doctor as root: sudo " + d.exe() + " doctor"
	case !n.Exists:
		r.Status = Fail
		r.Summary = NodePath + " does not exist"
		r.Cause = d.nodeMissingCause()
		r.Fix = d.nodeMissingFix()
	case !n.Char || n.Major != NodeMajor || n.Minor != NodeMinor:
		what := "not a character device"
		if n.Char {
			what = fmt.Sprintf("character device %d:%d", n.Major, n.Minor)
		}
		r.Status = Fail
		r.Summary = fmt.Sprintf("%s is %s, not the TUN/TAP device (character device 10:200)", NodePath, what)
		r.Cause = "programs open " + NodePath + " expecting the TUN/TAP clone device, c 10:200; this node is something else, so opening it never reaches the TUN/TAP driver"
		s := d.sudo()
		r.Fix = "replace it:\n  " + s + "rm " + NodePath + " && " + s + "mknod /dev/net/tun c 10 200 && " + s + "chmod 0666 /dev/net/tun"
	case n.NoDev:
		r.Status = Fail
		r.Summary = fmt.Sprintf("%s is character device 10:200, but on a filesystem mounted nodev (%s)", NodePath, n.Mount)
		r.Cause = "the filesystem at " + n.Mount + " is mounted with nodev, so the kernel refuses to open any device node on it (EACCES)"
		r.Fix = d.sudo() + "mount -o remount,dev " + n.Mount
		if d.kind.Container() {
			r.Fix += "\nor have the container runtime provide the node:\n" + d.grant(needNode)
		}
	case n.Perm&0o006 != 0o006 && !n.Accessible:
		r.Status = Fail
		r.Summary = fmt.Sprintf("%s: character device 10:200, mode %04o, %s: uid %d may not open it", NodePath, n.Perm, owner, d.f.EUID)
		r.Cause = "opening " + NodePath + " needs read and write permission on the node, and its mode does not give them to this user"
		r.Fix = d.permFix()
	case n.Perm&0o006 != 0o006:
		r.Status = Warn
		r.Summary = fmt.Sprintf("%s: character device 10:200, mode %04o, %s: usable by this process, not by other users", NodePath, n.Perm, owner)
		r.Cause = "the node is not readable and writable by everyone (the usual mode is 0666), so unprivileged users cannot even attach to a persistent device made for them (ip tuntap add ... user NAME); opening the node grants nothing by itself"
		r.Fix = "only if unprivileged users should use TUN/TAP:\n" + d.permFix()
	default:
		r.Status = OK
		r.Summary = fmt.Sprintf("%s: character device 10:200, mode %04o, %s", NodePath, n.Perm, owner)
	}
	return r
}

func orID(name string, id uint32) string {
	if name != "" {
		return name
	}
	return fmt.Sprint(id)
}

func (d *diag) permFix() string {
	s := d.sudo()
	return s + "chmod 0666 " + NodePath + "\n" +
		"to keep the mode across reboots (udev):\n" +
		"  echo 'KERNEL==\"tun\", MODE=\"0666\"' | " + s + "tee /etc/udev/rules.d/50-tun.rules"
}

func (d *diag) nodeMissingCause() string {
	switch d.kind {
	case Docker, Podman:
		return "the container was started without the host's device (--device /dev/net/tun): a container's /dev holds only the devices it is given"
	case Kubernetes:
		return "a pod's containers get only the devices a device plugin (or a privileged securityContext) gives them, and /dev/net/tun is not among them"
	case LXC:
		return "the container's /dev holds only the devices its configuration gives it, and /dev/net/tun is not among them"
	case OpenVZ:
		return "the hardware node has not given this container the TUN/TAP device (vzctl set " + d.ctid() + " --devnodes net/tun:rw)"
	case Nspawn:
		return "systemd-nspawn gives a container a minimal /dev without /dev/net/tun unless it is bound in"
	case Container:
		return "the container's /dev holds only the devices it is given, and /dev/net/tun is not among them"
	}
	dr := d.f.Driver
	switch {
	case d.f.Env.Service != "":
		return "this process runs in systemd unit " + d.f.Env.Service + ": with PrivateDevices=yes a unit gets a private /dev without /dev/net/tun"
	case !dr.Registered() && dr.ModuleFile != "":
		return "the tun driver is not loaded: on a devtmpfs /dev the kernel makes the node when the driver registers"
	}
	return "nothing created it: on a devtmpfs /dev the kernel makes it when the TUN/TAP driver registers, so a minimal /dev (a chroot, an initramfs, a static /dev) needs it made by hand"
}

func (d *diag) nodeMissingFix() string {
	var b strings.Builder
	if d.kind.Container() {
		b.WriteString(d.grant(needNode))
		b.WriteString("\nor, inside the container now (as root; ")
		switch {
		case d.kind == OpenVZ:
			b.WriteString("works once the hardware node allows the device")
		default:
			b.WriteString("lost when it is recreated; ")
			cg := d.f.Cgroup
			switch {
			case cg.Version == 1 && cg.Rules != nil && allowAll(cg.Rules) && !d.cgroupDenies():
				b.WriteString("the device rules here allow all devices, as far as they show")
			case cg.Version == 1 && cg.Rules != nil && !d.cgroupDenies():
				b.WriteString("the device rules here allow c 10:200")
			case d.cgroupDenies():
				b.WriteString("useless until the device rules allow c 10:200")
			default:
				b.WriteString("needs the device rules to allow c 10:200")
			}
		}
		if d.f.Caps.Known && !d.f.Caps.Has(capMknod) {
			b.WriteString("; this process lacks CAP_MKNOD, which mknod needs")
		}
		b.WriteString("):\n")
		b.WriteString("  " + d.mknod() + "\n")
		b.WriteString("  (or: tapwire doctor --fix)")
		return b.String()
	}
	dr := d.f.Driver
	if d.f.Env.Service != "" {
		b.WriteString("in unit " + d.f.Env.Service + " (systemctl edit " + d.f.Env.Service + "):\n")
		b.WriteString("  [Service]\n  PrivateDevices=no\n  DeviceAllow=/dev/net/tun rwm\n")
		b.WriteString("or create the node:\n")
	} else if !dr.Registered() && dr.ModuleFile != "" {
		b.WriteString("load the driver, which makes the node on a devtmpfs /dev:\n")
		b.WriteString("  " + d.sudo() + "modprobe tun\n")
		b.WriteString("or create the node:\n")
	} else {
		b.WriteString("create it:\n")
	}
	b.WriteString("  " + d.mknod() + "\n")
	b.WriteString("  (or: " + d.sudo() + "tapwire doctor --fix)")
	return b.String()
}

// ----- 2. CAP_NET_ADMIN -----

func (d *diag) capability() Result {
	c := d.f.Caps
	r := Result{ID: CheckCapability}
	switch {
	case !c.Known:
		r.Status = Skip
		r.Summary = "could not read the capabilities of this process (/proc/self/status)"
	case c.NetAdmin():
		r.Status = OK
		r.Summary = fmt.Sprintf("CAP_NET_ADMIN is effective (uid %d)", d.f.EUID)
	default:
		r.Status = Fail
		r.Summary = fmt.Sprintf("CAP_NET_ADMIN is not effective (uid %d, CapEff %016x)", d.f.EUID, c.Eff)
		r.Cause = d.capCause()
		r.Fix = d.capFix()
	}
	return r
}

func (d *diag) capCause() string {
	var s string
	if d.f.EUID != 0 {
		s = fmt.Sprintf("no CAP_NET_ADMIN: creating a TUN/TAP device needs it, and uid %d (%s) runs without it", d.f.EUID, d.user())
	} else {
		s = "no CAP_NET_ADMIN: this process runs as root, but without CAP_NET_ADMIN, which creating a TUN/TAP device needs"
		if d.kind.Container() {
			s += "; the " + d.kind.Name() + " was most likely started without it (or a parent process dropped it from the bounding set)"
		} else {
			s += "; whatever started it dropped the capability from its bounding set"
		}
	}
	if !d.f.Caps.BoundNetAdmin() && d.f.EUID != 0 {
		s += "; it is not even in the bounding set, so neither sudo nor setcap from here can give it"
	}
	return s
}

func (d *diag) capFix() string {
	var lines []string
	if d.f.EUID != 0 {
		if d.kind.Container() && !d.f.Caps.BoundNetAdmin() {
			lines = append(lines, d.grant(needCap), "then, inside, run it as root or give the program the capability:")
		} else {
			lines = append(lines, "run it as root:", "  sudo "+d.exe()+" ...", "or give the program the capability:")
		}
		lines = append(lines,
			"  sudo setcap cap_net_admin+ep "+d.exe(),
			"or make a persistent device for "+d.user()+" once; it may attach to it without the capability:",
			"  sudo ip tuntap add dev tun0 mode tun user "+d.user())
		return strings.Join(lines, "\n")
	}
	if d.kind.Container() {
		return d.grant(needCap)
	}
	lines = append(lines,
		"start it from a root shell that has the capability (check: grep CapBnd /proc/self/status; bit 12 is CAP_NET_ADMIN)",
		"for a systemd service: CapabilityBoundingSet= must include CAP_NET_ADMIN (and AmbientCapabilities=CAP_NET_ADMIN for a non-root User=)",
		"setcap works only where the bounding set has CAP_NET_ADMIN:",
		"  setcap cap_net_admin+ep "+d.exe())
	return strings.Join(lines, "\n")
}

// ----- 3. the environment -----

func (d *diag) environment(usable bool) Result {
	r := Result{ID: CheckEnvironment, Status: OK, Summary: envSummary(d.f, d.kind, d.evidence)}
	if usable || !d.kind.Container() {
		return r
	}
	// What the container lacks. A missing capability is the container's
	// doing when root lacks it, or when it is not even in the bounding set;
	// otherwise it is only this user's.
	var n need
	if !d.nodeGood() {
		n |= needNode
	}
	if c := d.f.Caps; c.Known && !c.NetAdmin() && (d.f.EUID == 0 || !c.BoundNetAdmin()) {
		n |= needCap
	}
	if d.cgroupDenies() {
		n |= needDev
	}
	noDriver := d.openRefused(unix.ENODEV) || d.openRefused(unix.ENXIO)
	if noDriver || (d.kind == OpenVZ && n != 0 && !d.f.Driver.Registered()) {
		n |= needDriver
	}
	if n == 0 {
		return r
	}
	r.Status = Warn
	r.Cause = "TUN/TAP is not granted to this " + d.kind.Name() + ": it has to be granted from outside, by whoever runs the container"
	r.Fix = d.grant(n)
	return r
}

// loadOnHost is the fix for a container whose host has not loaded tun.
const loadOnHost = "a container cannot load modules; on the host:\n  modprobe tun\n  echo tun > /etc/modules-load.d/tun.conf   (to load it at boot)"

// grant is how to give a container what it needs, from outside.
func (d *diag) grant(n need) string {
	if n&(needNode|needCap|needDev) == 0 && d.kind != OpenVZ && d.kind.Container() {
		return loadOnHost
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	switch d.kind {
	case Docker, Podman:
		tool := strings.ToLower(string(d.kind))
		var flags []string
		if n&needCap != 0 {
			flags = append(flags, "--cap-add NET_ADMIN")
		}
		if n&(needNode|needDev) != 0 {
			flags = append(flags, "--device /dev/net/tun")
		}
		host := map[Kind]string{Docker: "Docker", Podman: "Podman"}[d.kind]
		line("on the %s host, recreate the container with:", host)
		line("  %s run %s ... IMAGE", tool, strings.Join(flags, " "))
		var compose []string
		if strings.Contains(strings.Join(flags, " "), "--cap-add") {
			compose = append(compose, "cap_add: [NET_ADMIN]")
		}
		if strings.Contains(strings.Join(flags, " "), "--device") {
			compose = append(compose, `devices: ["/dev/net/tun:/dev/net/tun"]`)
		}
		line("  (compose: %s)", strings.Join(compose, " and "))
		if n&needDriver != 0 {
			line("and load the driver on the host: modprobe tun")
		}
	case Kubernetes:
		device := "in the pod spec, give the container the device"
		if n&needCap != 0 {
			line("in the pod spec, give the container the capability:")
			line("  securityContext:")
			line("    capabilities:")
			line(`      add: ["NET_ADMIN"]`)
			device = "and the device"
		}
		if n&(needNode|needDev) != 0 {
			line("%s, from a device plugin that hands out /dev/net/tun (e.g. squat/generic-device-plugin),", device)
			line("or from a hostPath volume (enough where the runtime's default device rules allow c 10:200, as runc's and crun's do):")
			line("  volumes: [{name: tun, hostPath: {path: /dev/net/tun, type: CharDevice}}]")
			line("  volumeMounts: [{name: tun, mountPath: /dev/net/tun}]   (in the container)")
		}
		if n&needDriver != 0 {
			line("and load the driver on the node: modprobe tun")
		}
	case LXC:
		where := "on the LXC host"
		if d.f.Env.LXDSocket != "" {
			tool := "lxc"
			if strings.Contains(d.f.Env.LXDSocket, "incus") {
				tool = "incus"
			}
			line("on the host (LXD/Incus; the device brings its own device rule):")
			line("  %s config device add CONTAINER tun unix-char path=/dev/net/tun", tool)
			where = "or, for plain LXC"
		}
		line("%s, in the container's config (/var/lib/lxc/CONTAINER/config; Proxmox: /etc/pve/lxc/CTID.conf, with ': ' for ' = '):", where)
		if n&(needDev|needNode) != 0 {
			allow, other, otherV := "lxc.cgroup2.devices.allow = c 10:200 rwm", "lxc.cgroup.devices.allow = c 10:200 rwm", 1
			if d.f.Cgroup.Version == 1 {
				allow, other, otherV = other, allow, 2
			}
			line("  %s   (on a cgroup v%d host: %s)", allow, otherV, other)
			if n&needNode != 0 {
				line("  lxc.mount.entry = /dev/net dev/net none bind,create=dir")
			}
		}
		if n&needCap != 0 {
			line("  and no net_admin in lxc.cap.drop (if lxc.cap.keep is used, it must list net_admin)")
		}
		line("then restart the container")
		if n&needDriver != 0 {
			line("and load the driver on the host: modprobe tun")
		}
	case OpenVZ:
		ct := d.ctid()
		line("on the hardware node (on a VPS: ask the provider to enable TUN/TAP, often a switch in its control panel):")
		if n&needDriver != 0 {
			line("  modprobe tun")
		}
		line("  vzctl set %s --devnodes net/tun:rw --save", ct)
		if n&needCap != 0 {
			line("  vzctl set %s --capability net_admin:on --save", ct)
		}
		line("(vzctl is on OpenVZ 6 and 7 and Virtuozzo 7 hosts; --devnodes creates the node and allows the device)")
	case Nspawn:
		var flags []string
		if n&needCap != 0 {
			flags = append(flags, "--capability=CAP_NET_ADMIN")
		}
		if n&(needNode|needDev) != 0 {
			flags = append(flags, "--bind=/dev/net/tun")
		}
		line("start the container with:")
		line("  systemd-nspawn %s ...", strings.Join(flags, " "))
		line("or in /etc/systemd/nspawn/CONTAINER.nspawn:")
		if n&needCap != 0 {
			line("  [Exec]")
			line("  Capability=CAP_NET_ADMIN")
		}
		if n&(needNode|needDev) != 0 {
			line("  [Files]")
			line("  Bind=/dev/net/tun")
			line("and let its unit use the device (systemctl edit systemd-nspawn@CONTAINER; the stock unit already has it):")
			line("  [Service]")
			line("  DeviceAllow=/dev/net/tun rwm")
		}
	default: // another container, or the host
		if d.kind.Container() {
			var what []string
			if n&needNode != 0 {
				what = append(what, "bind-mount the host's /dev/net/tun into it")
			}
			if n&needDev != 0 {
				what = append(what, "allow the device c 10:200 rw in its device rules")
			}
			if n&needCap != 0 {
				what = append(what, "keep CAP_NET_ADMIN in its capabilities")
			}
			if n&needDriver != 0 {
				what = append(what, "load the driver on the host (modprobe tun)")
			}
			line("from outside the container: %s", strings.Join(what, "; "))
			break
		}
		// The host itself: only the device rule reaches here.
		if d.f.Env.Service != "" {
			line("in unit %s (systemctl edit %s):", d.f.Env.Service, d.f.Env.Service)
			line("  [Service]")
			line("  DeviceAllow=/dev/net/tun rwm")
		} else if d.f.Cgroup.Version == 1 && d.f.Cgroup.File != "" {
			dir := strings.TrimSuffix(d.f.Cgroup.File, "devices.list")
			line("allow it in this process's devices cgroup (from a process outside it, as root):")
			line("  echo 'c 10:200 rwm' | %stee %sdevices.allow", d.sudo(), dir)
		} else {
			line("allow c 10:200 rw in the device rules of the cgroup this process runs in (%s)", d.f.Cgroup.Path)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ----- 4. the devices cgroup -----

// cgroupDenies reports whether the device rules forbid c 10:200: read from
// cgroup v1 rules, or inferred from EPERM on opening a good node.
func (d *diag) cgroupDenies() bool {
	cg := d.f.Cgroup
	if cg.Version == 1 && cg.Rules != nil && !allowAll(cg.Rules) {
		ok, _ := devicesAllow(cg.Rules, 'c', NodeMajor, NodeMinor, "rw")
		return !ok
	}
	return d.nodeGood() && d.openRefused(unix.EPERM)
}

// allowAll reports whether cgroup v1 device rules are in allow-all mode,
// where the kernel lists only "a *:* rwm" and hides the devices it denies
// as exceptions: the list then proves nothing about one device.
func allowAll(rules []string) bool {
	return len(rules) == 1 && strings.Join(strings.Fields(rules[0]), " ") == "a *:* rwm"
}

func (d *diag) deviceCgroup() Result {
	cg := d.f.Cgroup
	r := Result{ID: CheckDeviceCgroup}
	eperm := d.nodeGood() && d.openRefused(unix.EPERM)
	switch {
	case cg.Version == 1 && cg.Rules != nil && allowAll(cg.Rules) && eperm:
		r.Status = Fail
		r.Summary = fmt.Sprintf("the cgroup v1 devices cgroup %s denies c 10:200 (inferred: it lists \"a *:* rwm\", but opening a good %s fails with EPERM)", cg.Path, NodePath)
		r.Cause = d.devCause() + "; in allow-all mode the kernel lists only \"a *:* rwm\" in " + cg.File + " and hides the devices denied as exceptions"
		r.Fix = d.devFix()
	case cg.Version == 1 && cg.Rules != nil:
		ok, rule := devicesAllow(cg.Rules, 'c', NodeMajor, NodeMinor, "rw")
		if ok {
			r.Status = OK
			r.Summary = fmt.Sprintf("cgroup v1 device rules allow c 10:200 rw (%q in %s)", rule, cg.File)
			return r
		}
		r.Status = Fail
		r.Summary = fmt.Sprintf("cgroup v1 device rules of %s do not allow c 10:200 rw", cg.Path)
		r.Cause = "the devices cgroup forbids c 10:200: " + cg.File + " lists no rule allowing it, so opening " + NodePath + " fails with EPERM"
		r.Detail = "rules: " + strings.Join(cg.Rules, "; ")
		r.Fix = d.devFix()
	case eperm:
		r.Status = Fail
		how := "cgroup v2: the device rules are an eBPF program and cannot be read"
		if cg.Version == 1 {
			how = "cgroup v1 device rules unreadable (" + cg.ReadErr + ")"
		} else if cg.Version == 0 {
			how = "no devices cgroup found"
		}
		r.Summary = "opening " + NodePath + " is refused (EPERM) although the node is good: device rules forbid c 10:200 (inferred; " + how + ")"
		r.Cause = d.devCause()
		r.Fix = d.devFix()
	case cg.Version == 2 && d.opened():
		r.Status = OK
		r.Summary = "cgroup v2: the device rules are an eBPF program and cannot be read, but opening " + NodePath + " worked, so they allow c 10:200"
	case cg.Version == 2:
		r.Status = Skip
		r.Summary = "cgroup v2: the device rules are an eBPF program and cannot be read; not inferable, as " + NodePath + " could not be tried"
	case cg.Version == 1:
		r.Status = Skip
		r.Summary = "cgroup v1 device rules could not be read: " + cg.ReadErr
	default:
		r.Status = Skip
		r.Summary = "no devices cgroup found"
		if d.opened() {
			r.Status = OK
			r.Summary += "; opening " + NodePath + " worked"
		}
	}
	return r
}

func (d *diag) devCause() string {
	if d.kind == OpenVZ {
		return "the hardware node has not allowed this container the TUN/TAP device: opening " + NodePath + " is refused with EPERM"
	}
	s := "the devices cgroup forbids c 10:200: opening a good " + NodePath + " fails with EPERM"
	if d.f.Cgroup.Version == 2 {
		s += "; on cgroup v2 the rules are an eBPF program attached to the cgroup, which cannot be read back, and EPERM on opening a good node is what it does to a device it does not allow"
	}
	switch d.kind {
	case Docker, Podman, Kubernetes:
		s += "; runc and crun allow c 10:200 by default, except runc 1.2.0 to 1.2.3, so the container was made with narrower rules or by one of those"
	}
	return s
}

func (d *diag) devFix() string {
	return d.grant(needDev)
}

// ----- 5. the kernel's driver -----

func (d *diag) kernel() Result {
	dr := d.f.Driver
	rel := d.f.Kernel
	r := Result{ID: CheckKernel}
	noDriver := d.openRefused(unix.ENODEV) || d.openRefused(unix.ENXIO)
	failOrWarn := Warn
	if noDriver {
		failOrWarn = Fail
	}
	switch {
	case dr.Registered():
		r.Status = OK
		var how, where string
		switch {
		case dr.Loaded:
			how = "loaded as the tun module"
		case dr.Builtin || dr.Config == "y" || (dr.ProcMisc && !dr.SysModule):
			how = "built into the kernel"
		default:
			how = "in the running kernel"
		}
		switch {
		case dr.ProcMisc:
			where = "/proc/misc lists 200 tun"
		case dr.SysClassMisc:
			where = "/sys/class/misc/tun"
		default:
			where = "/sys/module/tun"
		}
		r.Summary = fmt.Sprintf("the TUN/TAP driver is %s (%s)", how, where)
	case d.f.TUN.OK || d.f.TAP.OK:
		r.Status = OK
		r.Summary = "the TUN/TAP driver was loaded on demand when " + NodePath + " was opened"
	case dr.Config == "n":
		r.Status = Fail
		r.Summary = "this kernel was built without TUN/TAP (CONFIG_TUN is not set in " + dr.ConfigFile + ")"
		r.Cause = "no TUN/TAP in the kernel: Linux " + rel + " has no TUN/TAP driver, neither built in nor as a module"
		r.Fix = d.driverFix(false)
	case d.kind == OpenVZ:
		r.Status = failOrWarn
		r.Summary = "the TUN/TAP driver is not visible inside this OpenVZ/Virtuozzo container"
		r.Cause = "the container runs on the hardware node's kernel and cannot load modules: the node must load tun and enable TUN/TAP for this container"
		r.Fix = d.driverFix(true)
	case dr.ModuleFile != "":
		r.Status = failOrWarn
		r.Summary = "the tun module is not loaded (found " + dr.ModuleFile + ")"
		r.Cause = "the kernel has TUN/TAP as a module, tun, that is not loaded; opening " + NodePath + " normally loads it on demand (alias char-major-10-200), but not where module loading is blocked or the node is missing"
		r.Fix = d.driverFix(true)
	case dr.Builtin:
		r.Status = OK
		r.Summary = "the TUN/TAP driver is built into the kernel (modules.builtin)"
	case d.kind.Container() && !dr.ModulesDir:
		r.Status = failOrWarn
		r.Summary = "no TUN/TAP driver in the running kernel, and its modules are not visible here (no /lib/modules/" + rel + ")"
		r.Cause = "a container runs on the host's kernel: only the host can tell whether it has a tun module, and load it"
		r.Fix = d.driverFix(true)
	case dr.Config == "m":
		r.Status = Fail
		r.Summary = "TUN/TAP is a module in this kernel (CONFIG_TUN=m), but the module file is not installed"
		r.Cause = "no TUN/TAP driver: the tun module of Linux " + rel + " is missing from /lib/modules/" + rel
		r.Fix = "install this kernel's modules (Debian/Ubuntu: apt install linux-modules-" + rel + " or linux-image-" + rel + "), then:\n  " + d.sudo() + "modprobe tun"
	default:
		r.Status = Fail
		if !dr.ModulesDir {
			r.Summary = "no TUN/TAP driver in the running kernel, and no modules for it (/lib/modules/" + rel + " is missing)"
		} else {
			r.Summary = "this kernel has no TUN/TAP: the driver is not built in and there is no tun module under /lib/modules/" + rel
		}
		if dr.NoModules {
			r.Summary = "this kernel has no TUN/TAP: the driver is not built in and the kernel cannot load modules"
		}
		r.Cause = "no TUN/TAP in the kernel: Linux " + rel + " has no TUN/TAP driver that can be loaded"
		r.Fix = d.driverFix(false)
	}
	return r
}

// driverFix says how to get the driver: load the module (canLoad) or get
// another kernel.
func (d *diag) driverFix(canLoad bool) string {
	switch {
	case d.kind == OpenVZ:
		return d.grant(needDriver | needNode)
	case d.kind.Container() && canLoad:
		return loadOnHost
	case d.kind.Container():
		return "the container shares the host's kernel: the host needs a kernel built with CONFIG_TUN=y or =m (every distribution kernel has it)"
	case canLoad:
		s := d.sudo()
		return s + "modprobe tun\n" + "to load it at boot:\n  echo tun | " + s + "tee /etc/modules-load.d/tun.conf"
	}
	return "boot a kernel built with CONFIG_TUN=y or =m; every distribution kernel has it (Debian: apt install linux-image-amd64; Ubuntu: apt install linux-generic), then reboot\n" +
		"on a VPS whose kernel the provider controls, ask the provider for one with TUN/TAP"
}

// ----- 6. creating devices -----

func (d *diag) trial(id, mode string, t Trial) Result {
	r := Result{ID: id}
	switch {
	case !t.Tried:
		r.Status = Skip
		r.Summary = "no " + mode + " device was attempted"
		return r
	case t.OK:
		r.Status = OK
		r.Summary = "created and removed " + mode + " device " + t.Name
		return r
	}
	r.Status = Fail
	r.Summary = "could not create a " + mode + " device: " + t.Err
	if name := unix.ErrnoName(t.Errno); name != "" && t.Errno != 0 {
		r.Summary += " (" + name + ")"
	}
	r.Detail = t.Err
	if t.Hint != "" {
		r.Detail += " (" + t.Hint + ")"
	}
	r.Cause, r.Fix = d.explain(t)
	return r
}

// explain names the cause of a failed attempt from its errno and the other
// facts, and the fix for it.
func (d *diag) explain(t Trial) (cause, fix string) {
	n := d.f.Node
	switch e := t.Errno; {
	case n.Exists && n.StatErr == "" && !d.nodeGood():
		return "the device node is wrong: " + NodePath + " is not the TUN/TAP device, c 10:200, so opening it reaches something else", d.node().Fix
	case e == unix.ENOENT && !n.Exists:
		return "the device node " + NodePath + " is missing: " + d.nodeMissingCause(), d.nodeMissingFix()
	case e == unix.ENODEV || e == unix.ENXIO:
		c := "no TUN/TAP driver: the node is there, but no driver in the kernel answers for c 10:200"
		if d.kind == OpenVZ {
			c = "TUN/TAP is not enabled for this OpenVZ/Virtuozzo container: the hardware node has not loaded the tun driver for it"
		}
		return c, d.driverFix(d.f.Driver.ModuleFile != "" || d.kind.Container())
	case e == unix.EACCES && t.Stage == StageOpen && n.NoDev:
		return "the device node is on a filesystem mounted nodev (" + n.Mount + "), where device nodes cannot be opened", d.node().Fix
	case e == unix.EACCES && t.Stage == StageOpen && !n.Accessible:
		return "no permission to open " + NodePath + ": its mode does not let this user read and write it", d.permFix()
	case e == unix.EACCES && t.Stage == StageOpen:
		return "opening " + NodePath + " was refused although its mode allows it: a security module (AppArmor or SELinux) most likely denied it",
			"look for the denial: dmesg | grep -i -e apparmor -e avc   (or journalctl -k)\nthen allow /dev/net/tun rw in that profile or policy"
	case e == unix.EPERM && t.Stage == StageOpen:
		if cg := d.f.Cgroup; cg.Version == 1 && cg.Rules != nil && !allowAll(cg.Rules) && !d.cgroupDenies() {
			return "opening " + NodePath + " was refused although the devices cgroup allows c 10:200: a security module (AppArmor or SELinux) most likely denied it",
				"look for the denial: dmesg | grep -i -e apparmor -e avc   (or journalctl -k)"
		}
		return d.devCause(), d.devFix()
	case (e == unix.EPERM || e == unix.EACCES) && t.Stage == StageCreate:
		if d.f.Caps.Known && !d.f.Caps.NetAdmin() {
			return d.capCause(), d.capFix()
		}
		return "the kernel refused to create the interface although CAP_NET_ADMIN is effective: the capability must be held in the user namespace that owns this network namespace (in a rootless container sharing the host's network it is not), or a security module refused",
			"run it in a network namespace of its own (drop --network=host from a rootless container), or as real root\nlook for a denial: dmesg | grep -i -e apparmor -e avc"
	}
	cause = "unexpected error: " + t.Err
	if t.Hint != "" {
		fix = t.Hint
	} else {
		fix = "none known; the error above is the kernel's answer"
	}
	return cause, fix
}
