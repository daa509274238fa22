//go:build linux

package doctor

import (
	"os"

	"golang.org/x/sys/unix"
)

// NodePath is the TUN/TAP clone device every TUN/TAP descriptor is opened
// from, and its device numbers.
const (
	NodePath  = "/dev/net/tun"
	NodeMajor = 10
	NodeMinor = 200
)

// Capability bits in the capability sets.
const (
	capNetAdmin = 12 // CAP_NET_ADMIN
	capMknod    = 27 // CAP_MKNOD
)

// Facts is what Gather observed on a host: the input of Diagnose. Tests
// build Facts by hand.
type Facts struct {
	EUID       int
	User       string // the effective user's name, if known
	Kernel     string // uname -r
	Executable string // this program's path, for setcap
	Hostname   string

	Node   Node
	Caps   Caps
	Env    Env
	Cgroup Cgroup
	Driver Driver

	// TUN and TAP are the attempts to create a device of each mode.
	TUN, TAP Trial
}

// Node is what stat says about /dev/net/tun.
type Node struct {
	Exists  bool
	StatErr string // a stat error other than "does not exist"

	Char         bool        // a character device
	Major, Minor uint32      // its device numbers, if Char
	Perm         os.FileMode // permission bits
	UID, GID     uint32
	Owner, Group string // names of UID and GID, if known

	// Accessible says whether this process may open it for reading and
	// writing, by its mode (access(2) with the effective IDs).
	Accessible bool
	// NoDev is set when the filesystem holding it is mounted nodev, so no
	// device node on it can be opened; Mount is that filesystem's mount
	// point.
	NoDev bool
	Mount string
}

// Caps are the capability sets of the process, from /proc/self/status.
type Caps struct {
	Known         bool
	Eff, Prm, Bnd uint64
}

// Has reports whether capability number c is effective.
func (c Caps) Has(bit uint) bool { return c.Eff&(1<<bit) != 0 }

// NetAdmin reports whether CAP_NET_ADMIN is effective.
func (c Caps) NetAdmin() bool { return c.Eff&(1<<capNetAdmin) != 0 }

// BoundNetAdmin reports whether CAP_NET_ADMIN is in the bounding set: whether
// a program started from here could ever gain it.
func (c Caps) BoundNetAdmin() bool { return c.Bnd&(1<<capNetAdmin) != 0 }

// Env holds the signs of a container or VPS.
type Env struct {
	ProcVZ bool   // /proc/vz exists: an OpenVZ/Virtuozzo kernel
	ProcBC bool   // /proc/bc exists: ... and this is its hardware node
	VEID   string // OpenVZ container ID (envID in /proc/self/status)

	// ContainerVar is $container as systemd and container managers set it
	// for PID 1 (from /proc/1/environ, this process's environment or
	// /run/systemd/container): docker, podman, lxc, systemd-nspawn, ...
	ContainerVar    string
	DockerEnv       bool   // /.dockerenv
	ContainerEnv    bool   // /run/.containerenv (Podman, Buildah, CRI-O)
	ContainerEngine string // its engine= line, e.g. podman-4.9.3
	LXCDir          bool   // /dev/.lxc or /dev/.lxc-boot-id
	LXDSocket       string // /dev/lxd or /dev/incus: an LXD or Incus container
	Kubernetes      bool   // KUBERNETES_SERVICE_HOST or a service account

	// Cgroups are the cgroup paths of PID 1 and of this process.
	Cgroups []string
	// Service is the systemd unit this process runs in, on a host.
	Service string
	// UserNS is set when the process is in a user namespace other than the
	// initial one (a rootless or unprivileged container).
	UserNS bool
	// Virt names the hypervisor when the kernel runs in a virtual machine
	// (a KVM or Xen VPS): "" on bare metal or when unknown.
	Virt string
}

// Cgroup describes the devices cgroup of the process.
type Cgroup struct {
	// Version is 1 when the cgroup v1 devices controller governs the
	// process, 2 on a cgroup v2 (unified) host, 0 when unknown.
	Version int
	Path    string // the process's cgroup, as /proc/self/cgroup has it
	// File is the devices.list read, and Rules its lines (v1 only);
	// ReadErr says why it could not be read.
	File    string
	Rules   []string
	ReadErr string
}

// Driver describes the kernel's TUN/TAP driver.
type Driver struct {
	ProcMisc     bool   // /proc/misc lists "200 tun": the driver is registered
	SysClassMisc bool   // /sys/class/misc/tun exists: likewise
	SysModule    bool   // /sys/module/tun exists
	Loaded       bool   // tun is a loaded module (/proc/modules)
	Builtin      bool   // modules.builtin lists it
	ModuleFile   string // the tun module file under /lib/modules/RELEASE
	ModulesDir   bool   // /lib/modules/RELEASE exists
	// Config is CONFIG_TUN from the kernel's configuration: "y", "m", "n"
	// (not set), or "" when the configuration could not be read;
	// ConfigFile is where it was read.
	Config     string
	ConfigFile string
	// NoModules is set when the kernel was built without loadable module
	// support (CONFIG_MODULES is not set).
	NoModules bool
}

// Registered reports whether the driver is in the running kernel.
func (d Driver) Registered() bool { return d.ProcMisc || d.SysClassMisc || d.SysModule }

// Stage is where an attempt to create a device failed.
type Stage string

// The stages of creating a device.
const (
	StageOpen   Stage = "open"   // opening /dev/net/tun
	StageCreate Stage = "create" // TUNSETIFF: creating the interface
	StageOther  Stage = "other"  // anything else
)

// Trial is one attempt to create (and at once delete) a device.
type Trial struct {
	Tried bool
	OK    bool
	Name  string // the device's name, when created
	// On failure: where, the errno (0 if none), the error without the
	// hint, and the tun package's hint.
	Stage Stage
	Errno unix.Errno
	Err   string
	Hint  string
}
