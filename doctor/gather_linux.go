package doctor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tapwire/tapwire/tun"
)

// TrialName is the name pattern of the devices Gather creates and at once
// deletes.
const TrialName = "twdoc%d"

// Gather reads the facts of this host and process. It changes nothing,
// except that it creates a TUN and a TAP device (non-persistent, named from
// TrialName) and closes each at once, which deletes it.
func Gather() Facts {
	f := GatherStatic()
	f.TUN = try(tun.ModeTUN)
	f.TAP = try(tun.ModeTAP)
	return f
}

// GatherStatic reads everything Gather does except the attempts to create
// devices.
func GatherStatic() Facts {
	var f Facts
	f.EUID = os.Geteuid()
	if u, err := user.LookupId(strconv.Itoa(f.EUID)); err == nil {
		f.User = u.Username
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		f.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	f.Executable, _ = os.Executable()
	f.Hostname, _ = os.Hostname()

	mounts := parseMountinfo(readFile("/proc/self/mountinfo"))
	f.Node = gatherNode(mounts)
	f.Caps, f.Env.VEID = parseStatus(readFile("/proc/self/status"))
	gatherEnv(&f.Env)
	f.Cgroup = gatherCgroup(mounts)
	f.Driver = gatherDriver(f.Kernel)
	return f
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return string(b)
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

func gatherNode(mounts []mount) Node {
	var n Node
	var st unix.Stat_t
	err := unix.Stat(NodePath, &st)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return n
	case err != nil:
		n.StatErr = err.Error()
		return n
	}
	n.Exists = true
	n.Char = st.Mode&unix.S_IFMT == unix.S_IFCHR
	if n.Char {
		n.Major, n.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	n.Perm = os.FileMode(st.Mode & 0o777)
	n.UID, n.GID = st.Uid, st.Gid
	if u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10)); err == nil {
		n.Owner = u.Username
	}
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10)); err == nil {
		n.Group = g.Name
	}
	n.Accessible = unix.Faccessat(unix.AT_FDCWD, NodePath, unix.R_OK|unix.W_OK, unix.AT_EACCESS) == nil
	var sfs unix.Statfs_t
	if unix.Statfs(NodePath, &sfs) == nil && sfs.Flags&unix.ST_NODEV != 0 {
		n.NoDev = true
		path := NodePath
		if p, err := filepath.EvalSymlinks(NodePath); err == nil {
			path = p
		}
		if m, ok := mountOf(mounts, path); ok {
			n.Mount = m.point
		}
	}
	return n
}

func gatherEnv(e *Env) {
	e.ProcVZ = exists("/proc/vz")
	e.ProcBC = exists("/proc/bc")
	e.ContainerVar = environValue(readFile("/proc/1/environ"), "container")
	if e.ContainerVar == "" {
		e.ContainerVar = os.Getenv("container")
	}
	if e.ContainerVar == "" {
		e.ContainerVar = strings.TrimSpace(readFile("/run/systemd/container"))
	}
	e.DockerEnv = exists("/.dockerenv")
	if exists("/run/.containerenv") {
		e.ContainerEnv = true
		e.ContainerEngine = containerEnvEngine(readFile("/run/.containerenv"))
	}
	e.LXCDir = exists("/dev/.lxc") || exists("/dev/.lxc-boot-id")
	for _, s := range []string{"/dev/lxd", "/dev/incus"} {
		if exists(s) {
			e.LXDSocket = s
			break
		}
	}
	e.Kubernetes = os.Getenv("KUBERNETES_SERVICE_HOST") != "" || exists("/var/run/secrets/kubernetes.io/serviceaccount")
	seen := map[string]bool{}
	for _, file := range []string{"/proc/1/cgroup", "/proc/self/cgroup"} {
		for _, l := range parseCgroup(readFile(file)) {
			if l.path != "/" && !seen[l.path] {
				seen[l.path] = true
				e.Cgroups = append(e.Cgroups, l.path)
			}
		}
	}
	for _, l := range parseCgroup(readFile("/proc/self/cgroup")) {
		if len(l.controllers) == 0 || (len(l.controllers) == 1 && l.controllers[0] == "name=systemd") {
			if base := filepath.Base(l.path); strings.HasSuffix(base, ".service") {
				e.Service = base
			}
		}
	}
	if m := readFile("/proc/self/uid_map"); m != "" {
		e.UserNS = !uidMapInitial(m)
	}
	e.Virt = detectVirt()
}

// detectVirt names the hypervisor, "unknown" for a virtual machine of an
// unknown kind, or "" on bare metal.
func detectVirt() string {
	vendor := strings.TrimSpace(readFile("/sys/class/dmi/id/sys_vendor"))
	product := strings.TrimSpace(readFile("/sys/class/dmi/id/product_name"))
	switch {
	case strings.Contains(product, "KVM") || strings.Contains(vendor, "QEMU") || strings.Contains(product, "QEMU"):
		return "KVM"
	case strings.Contains(vendor, "Xen") || strings.TrimSpace(readFile("/sys/hypervisor/type")) == "xen":
		return "Xen"
	case strings.Contains(vendor, "VMware"):
		return "VMware"
	case strings.Contains(vendor, "Microsoft") && strings.Contains(product, "Virtual"):
		return "Hyper-V"
	case strings.Contains(vendor, "innotek"):
		return "VirtualBox"
	case strings.Contains(vendor, "Amazon"), strings.Contains(product, "Google Compute"), strings.Contains(vendor, "DigitalOcean"), strings.Contains(vendor, "Hetzner"):
		return vendor
	}
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if strings.HasPrefix(line, "flags") {
			if strings.Contains(line+" ", " hypervisor ") {
				return "unknown"
			}
			break
		}
	}
	return ""
}

func gatherCgroup(mounts []mount) Cgroup {
	var c Cgroup
	text := readFile("/proc/self/cgroup")
	if text == "" {
		return c
	}
	v1, hasV1, v2, hasV2 := devicesPath(parseCgroup(text))
	switch {
	case hasV1:
		c.Version, c.Path = 1, v1
	case hasV2:
		c.Version, c.Path = 2, v2
		return c
	default:
		return c
	}
	var tried []string
	for _, m := range mounts {
		if m.fstype != "cgroup" || !hasOpt(m.super, "devices") {
			continue
		}
		rel := v1
		if m.root != "/" && strings.HasPrefix(v1, m.root) {
			rel = strings.TrimPrefix(v1, m.root)
		}
		for _, file := range []string{filepath.Join(m.point, rel, "devices.list"), filepath.Join(m.point, "devices.list")} {
			tried = append(tried, file)
			b, err := os.ReadFile(file)
			if err != nil {
				c.ReadErr = err.Error()
				continue
			}
			c.File = file
			c.Rules = []string{}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					c.Rules = append(c.Rules, line)
				}
			}
			c.ReadErr = ""
			return c
		}
	}
	if len(tried) == 0 {
		c.ReadErr = "the devices controller is not mounted"
	}
	return c
}

func gatherDriver(release string) Driver {
	var d Driver
	d.ProcMisc = miscHasTun(readFile("/proc/misc"))
	d.SysClassMisc = exists("/sys/class/misc/tun")
	d.SysModule = exists("/sys/module/tun")
	d.Loaded = modulesHasTun(readFile("/proc/modules"))
	if release != "" {
		dir := filepath.Join("/lib/modules", release)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			d.ModulesDir = true
		}
		d.Builtin = moduleListHasTun(readFile(filepath.Join(dir, "modules.builtin"))) != ""
		for _, ext := range []string{"", ".xz", ".zst", ".gz"} {
			if p := filepath.Join(dir, "kernel/drivers/net/tun.ko"+ext); exists(p) {
				d.ModuleFile = p
				break
			}
		}
		if d.ModuleFile == "" {
			if p := moduleListHasTun(readFile(filepath.Join(dir, "modules.dep"))); p != "" {
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				if exists(p) {
					d.ModuleFile = p
				}
			}
		}
	}
	for _, src := range []string{"/proc/config.gz", "/boot/config-" + release} {
		text := readFile(src)
		if strings.HasSuffix(src, ".gz") && text != "" {
			text = gunzip(text)
		}
		if tunCfg, modules, ok := parseKernelConfig(text); ok {
			d.Config, d.ConfigFile, d.NoModules = tunCfg, src, !modules
			break
		}
	}
	return d
}

func gunzip(s string) string {
	r, err := gzip.NewReader(strings.NewReader(s))
	if err != nil {
		return ""
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(r, 16<<20)); err != nil {
		return ""
	}
	return b.String()
}

// try creates a device of the given mode and closes it at once.
func try(mode tun.Mode) Trial {
	t := Trial{Tried: true}
	dev, err := tun.Open(tun.Config{Name: TrialName, Mode: mode, NoOffload: true})
	if err == nil {
		t.OK = true
		t.Name = dev.Name()
		if err := dev.Close(); err != nil {
			t.OK = false
			t.Stage = StageOther
			t.Err = fmt.Sprintf("created %s, but closing it failed: %v", t.Name, err)
		}
		return t
	}
	t.Stage = StageOther
	t.Err = err.Error()
	var oe *tun.OpError
	if errors.As(err, &oe) {
		t.Hint = oe.Hint
		t.Err = "tun: " + oe.Op
		if oe.Name != "" {
			t.Err += " " + oe.Name
		}
		t.Err += ": " + oe.Err.Error()
		switch {
		case strings.HasPrefix(oe.Op, "open "+NodePath):
			t.Stage = StageOpen
		case oe.Op == "create or attach":
			t.Stage = StageCreate
		}
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		t.Errno = errno
	}
	return t
}

// Fixable reports whether FixNode can repair what the facts show: a
// missing /dev/net/tun.
func Fixable(f Facts) bool { return !f.Node.Exists && f.Node.StatErr == "" }

// FixNode creates /dev/net/tun, the character device 10:200 with mode 0666,
// and /dev/net if need be. It needs root (CAP_MKNOD), and in a container
// device rules that allow making c 10:200. It returns what it did.
func FixNode() (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("creating " + NodePath + " needs root: run it with sudo")
	}
	if err := os.MkdirAll(filepath.Dir(NodePath), 0o755); err != nil {
		return "", fmt.Errorf("mkdir -p /dev/net: %w", err)
	}
	if err := unix.Mknod(NodePath, unix.S_IFCHR|0o666, int(unix.Mkdev(NodeMajor, NodeMinor))); err != nil {
		err = &os.PathError{Op: "mknod", Path: NodePath, Err: err}
		switch {
		case errors.Is(err, unix.EPERM):
			return "", fmt.Errorf("%w: this process lacks CAP_MKNOD, or the device rules forbid making c 10:200 here; the device must be given from outside", err)
		case errors.Is(err, unix.EROFS):
			return "", fmt.Errorf("%w: /dev is read-only here; the device must be given from outside", err)
		}
		return "", err
	}
	// mknod's mode is filtered by the umask.
	if err := unix.Chmod(NodePath, 0o666); err != nil {
		return "", fmt.Errorf("chmod 0666 %s: %w", NodePath, err)
	}
	return "created " + NodePath + " (character device 10:200, mode 0666)", nil
}
