//go:build linux

package doctor

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const allCaps = 0x000001ffffffffff

// healthy is a root process on a plain host where everything works.
func healthy() Facts {
	return Facts{
		EUID:       0,
		User:       "root",
		Kernel:     "6.1.0-18-amd64",
		Executable: "/usr/local/bin/tapwire",
		Hostname:   "vps1",
		Node: Node{Exists: true, Char: true, Major: 10, Minor: 200, Perm: 0o666,
			Accessible: true, Owner: "root", Group: "root"},
		Caps:   Caps{Known: true, Eff: allCaps, Prm: allCaps, Bnd: allCaps},
		Cgroup: Cgroup{Version: 2, Path: "/user.slice/user-0.slice/session-1.scope"},
		Driver: Driver{ProcMisc: true, SysClassMisc: true, SysModule: true, Loaded: true, ModulesDir: true,
			ModuleFile: "/lib/modules/6.1.0-18-amd64/kernel/drivers/net/tun.ko", Config: "m", ConfigFile: "/boot/config-6.1.0-18-amd64"},
		TUN: Trial{Tried: true, OK: true, Name: "twdoc0"},
		TAP: Trial{Tried: true, OK: true, Name: "twdoc0"},
	}
}

func failed(stage Stage, e unix.Errno) Trial {
	op := "open /dev/net/tun for twdoc%d"
	if stage == StageCreate {
		op = "create or attach twdoc%d"
	}
	return Trial{Tried: true, Stage: stage, Errno: e, Err: "tun: " + op + ": " + e.Error(), Hint: "a hint"}
}

// both makes both attempts fail alike.
func both(f *Facts, stage Stage, e unix.Errno) { f.TUN, f.TAP = failed(stage, e), failed(stage, e) }

func noNode(f *Facts) {
	f.Node = Node{}
	both(f, StageOpen, unix.ENOENT)
}

func noCap(f *Facts) {
	f.Caps.Eff &^= 1 << capNetAdmin
	f.Caps.Prm &^= 1 << capNetAdmin
	both(f, StageCreate, unix.EPERM)
}

// want is what a test expects of one check.
type want struct {
	status Status
	in     []string // substrings of summary, cause or fix
}

func TestDoctorDiagnose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		facts  func(f *Facts)
		usable bool
		kind   Kind
		checks map[string]want
	}{
		{
			name: "healthy host", usable: true, kind: Host,
			facts: func(f *Facts) {},
			checks: map[string]want{
				CheckNode:         {OK, []string{"character device 10:200, mode 0666, owner root:root"}},
				CheckCapability:   {OK, []string{"CAP_NET_ADMIN is effective"}},
				CheckEnvironment:  {OK, []string{"no container detected"}},
				CheckDeviceCgroup: {OK, []string{"cgroup v2", "cannot be read", "opening /dev/net/tun worked"}},
				CheckKernel:       {OK, []string{"loaded as the tun module"}},
				CheckCreateTUN:    {OK, []string{"created and removed TUN device twdoc0"}},
				CheckCreateTAP:    {OK, []string{"TAP device"}},
			},
		},
		{
			name: "no device node, root on a host", kind: Host,
			facts: noNode,
			checks: map[string]want{
				CheckNode:        {Fail, []string{"/dev/net/tun does not exist", "mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun", "tapwire doctor --fix"}},
				CheckEnvironment: {OK, nil},
				CheckCreateTUN:   {Fail, []string{"ENOENT", "device node /dev/net/tun is missing", "mknod /dev/net/tun c 10 200"}},
				CheckCreateTAP:   {Fail, []string{"device node /dev/net/tun is missing"}},
			},
		},
		{
			name: "no device node, unprivileged user", kind: Host,
			facts: func(f *Facts) {
				noNode(f)
				f.EUID, f.User = 1000, "alice"
			},
			checks: map[string]want{
				CheckNode: {Fail, []string{"sudo mkdir -p /dev/net && sudo mknod /dev/net/tun c 10 200 && sudo chmod 0666 /dev/net/tun"}},
			},
		},
		{
			name: "no device node, driver module not loaded", kind: Host,
			facts: func(f *Facts) {
				noNode(f)
				f.Driver = Driver{ModulesDir: true, ModuleFile: "/lib/modules/6.1.0-18-amd64/kernel/drivers/net/tun.ko.xz", Config: "m"}
			},
			checks: map[string]want{
				CheckNode:   {Fail, []string{"tun driver is not loaded", "modprobe tun", "mknod"}},
				CheckKernel: {Warn, []string{"not loaded", "tun.ko.xz", "modprobe tun", "/etc/modules-load.d/tun.conf"}},
			},
		},
		{
			name: "no device node in a systemd service", kind: Host,
			facts: func(f *Facts) {
				noNode(f)
				f.Env.Service = "openvpn.service"
			},
			checks: map[string]want{
				CheckNode:        {Fail, []string{"PrivateDevices=yes", "systemctl edit openvpn.service", "PrivateDevices=no"}},
				CheckEnvironment: {OK, []string{"in systemd unit openvpn.service"}},
			},
		},
		{
			name: "wrong device numbers", kind: Host,
			facts: func(f *Facts) {
				f.Node.Minor = 201
				both(f, StageOpen, unix.ENODEV)
			},
			checks: map[string]want{
				CheckNode:      {Fail, []string{"character device 10:201, not the TUN/TAP device", "rm /dev/net/tun && mknod /dev/net/tun c 10 200"}},
				CheckKernel:    {OK, nil},
				CheckCreateTUN: {Fail, []string{"ENODEV", "the device node is wrong", "rm /dev/net/tun && mknod"}},
			},
		},
		{
			name: "not a character device", kind: Host,
			facts: func(f *Facts) {
				f.Node = Node{Exists: true, Perm: 0o644, Accessible: true}
				both(f, StageOther, unix.ENOTTY)
			},
			checks: map[string]want{
				CheckNode:      {Fail, []string{"not a character device"}},
				CheckCreateTUN: {Fail, []string{"ENOTTY", "the device node is wrong"}},
			},
		},
		{
			name: "node on a nodev filesystem", kind: Host,
			facts: func(f *Facts) {
				f.Node.NoDev, f.Node.Mount = true, "/dev"
				both(f, StageOpen, unix.EACCES)
			},
			checks: map[string]want{
				CheckNode:      {Fail, []string{"nodev", "mount -o remount,dev /dev"}},
				CheckCreateTUN: {Fail, []string{"EACCES", "mounted nodev"}},
			},
		},
		{
			name: "root-only node, unprivileged user", kind: Host,
			facts: func(f *Facts) {
				f.EUID, f.User = 1000, "alice"
				f.Node.Perm, f.Node.Accessible = 0o600, false
				both(f, StageOpen, unix.EACCES)
			},
			checks: map[string]want{
				CheckNode:      {Fail, []string{"mode 0600", "uid 1000 may not open it", "sudo chmod 0666 /dev/net/tun", `KERNEL=="tun", MODE="0666"`}},
				CheckCreateTUN: {Fail, []string{"no permission to open /dev/net/tun"}},
			},
		},
		{
			name: "root-only node, root", usable: true, kind: Host,
			facts: func(f *Facts) { f.Node.Perm = 0o600 },
			checks: map[string]want{
				CheckNode: {Warn, []string{"mode 0600", "not by other users", "ip tuntap add", "chmod 0666"}},
			},
		},
		{
			name: "no CAP_NET_ADMIN, unprivileged user", kind: Host,
			facts: func(f *Facts) {
				f.EUID, f.User = 1000, "alice"
				f.Caps = Caps{Known: true, Bnd: allCaps}
				both(f, StageCreate, unix.EPERM)
			},
			checks: map[string]want{
				CheckCapability: {Fail, []string{"CAP_NET_ADMIN is not effective (uid 1000", "no CAP_NET_ADMIN",
					"sudo /usr/local/bin/tapwire", "sudo setcap cap_net_admin+ep /usr/local/bin/tapwire",
					"sudo ip tuntap add dev tun0 mode tun user alice"}},
				CheckCreateTUN: {Fail, []string{"EPERM", "no CAP_NET_ADMIN", "setcap"}},
			},
		},
		{
			name: "no CAP_NET_ADMIN, root with a reduced bounding set", kind: Host,
			facts: func(f *Facts) {
				noCap(f)
				f.Caps.Bnd &^= 1 << capNetAdmin
			},
			checks: map[string]want{
				CheckCapability: {Fail, []string{"runs as root, but without CAP_NET_ADMIN", "bounding set", "CapabilityBoundingSet=", "setcap cap_net_admin+ep"}},
				CheckCreateTUN:  {Fail, []string{"no CAP_NET_ADMIN"}},
			},
		},
		{
			name: "docker without the device", kind: Docker,
			facts: func(f *Facts) {
				noNode(f)
				f.Env.DockerEnv = true
			},
			checks: map[string]want{
				CheckNode:        {Fail, []string{"--device /dev/net/tun", "docker run --device /dev/net/tun ... IMAGE", `devices: ["/dev/net/tun:/dev/net/tun"]`, "mknod /dev/net/tun c 10 200"}},
				CheckEnvironment: {Warn, []string{"Docker container (/.dockerenv)", "granted from outside", "docker run --device /dev/net/tun"}},
				CheckCreateTUN:   {Fail, []string{"device node /dev/net/tun is missing", "docker run"}},
			},
		},
		{
			name: "docker without the capability", kind: Docker,
			facts: func(f *Facts) {
				noCap(f)
				f.Caps.Bnd &^= 1 << capNetAdmin
				f.Env.ContainerVar = "docker"
			},
			checks: map[string]want{
				CheckCapability:  {Fail, []string{"Docker container was most likely started without it", "docker run --cap-add NET_ADMIN ... IMAGE", "cap_add: [NET_ADMIN]"}},
				CheckEnvironment: {Warn, []string{"container=docker", "--cap-add NET_ADMIN"}},
				CheckCreateTUN:   {Fail, []string{"no CAP_NET_ADMIN", "--cap-add NET_ADMIN"}},
			},
		},
		{
			name: "docker with neither", kind: Docker,
			facts: func(f *Facts) {
				noNode(f)
				f.Caps.Eff &^= 1 << capNetAdmin
				f.Env.DockerEnv = true
			},
			checks: map[string]want{
				CheckEnvironment: {Warn, []string{"docker run --cap-add NET_ADMIN --device /dev/net/tun ... IMAGE"}},
			},
		},
		{
			name: "docker, cgroup v1 rules without c 10:200", kind: Docker,
			facts: func(f *Facts) {
				f.Env.DockerEnv = true
				f.Cgroup = Cgroup{Version: 1, Path: "/docker/0123abcd", File: "/sys/fs/cgroup/devices/devices.list",
					Rules: []string{"c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm", "c *:* m", "b *:* m"}}
				both(f, StageOpen, unix.EPERM)
			},
			checks: map[string]want{
				CheckDeviceCgroup: {Fail, []string{"cgroup v1 device rules of /docker/0123abcd do not allow c 10:200 rw", "devices cgroup forbids c 10:200", "docker run --device /dev/net/tun"}},
				CheckCreateTUN:    {Fail, []string{"EPERM", "devices cgroup forbids c 10:200", "--device /dev/net/tun"}},
			},
		},
		{
			name: "host, cgroup v1 rules without c 10:200", kind: Host,
			facts: func(f *Facts) {
				f.Cgroup = Cgroup{Version: 1, Path: "/jail", File: "/sys/fs/cgroup/devices/jail/devices.list", Rules: []string{"c 1:3 rwm"}}
				both(f, StageOpen, unix.EPERM)
			},
			checks: map[string]want{
				CheckDeviceCgroup: {Fail, []string{"echo 'c 10:200 rwm' | tee /sys/fs/cgroup/devices/jail/devices.allow"}},
			},
		},
		{
			name: "cgroup v1 rules allow, EPERM anyway: a security module", kind: Host,
			facts: func(f *Facts) {
				f.Cgroup = Cgroup{Version: 1, Path: "/", File: "/sys/fs/cgroup/devices/devices.list", Rules: []string{"c 1:3 rwm", "c 10:200 rwm"}}
				both(f, StageOpen, unix.EPERM)
			},
			checks: map[string]want{
				CheckDeviceCgroup: {OK, []string{`"c 10:200 rwm"`}},
				CheckCreateTUN:    {Fail, []string{"security module", "apparmor"}},
			},
		},
		{
			name: "cgroup v1 in allow-all mode with a hidden deny", kind: Host,
			facts: func(f *Facts) {
				f.Cgroup = Cgroup{Version: 1, Path: "/jail", File: "/sys/fs/cgroup/devices/jail/devices.list", Rules: []string{"a *:* rwm"}}
				both(f, StageOpen, unix.EPERM)
			},
			checks: map[string]want{
				CheckDeviceCgroup: {Fail, []string{"inferred", "hides the devices denied", "echo 'c 10:200 rwm' | tee /sys/fs/cgroup/devices/jail/devices.allow"}},
				CheckCreateTUN:    {Fail, []string{"devices cgroup forbids c 10:200"}},
			},
		},
		{
			name: "cgroup v1 in allow-all mode, all fine", usable: true, kind: Host,
			facts: func(f *Facts) {
				f.Cgroup = Cgroup{Version: 1, Path: "/", File: "/sys/fs/cgroup/devices/devices.list", Rules: []string{"a *:* rwm"}}
			},
			checks: map[string]want{
				CheckDeviceCgroup: {OK, []string{`"a *:* rwm"`}},
			},
		},
		{
			name: "lxc, cgroup v2 rules inferred from EPERM", kind: LXC,
			facts: func(f *Facts) {
				f.Env.ContainerVar = "lxc"
				both(f, StageOpen, unix.EPERM)
			},
			checks: map[string]want{
				CheckDeviceCgroup: {Fail, []string{"inferred", "eBPF program", "lxc.cgroup2.devices.allow = c 10:200 rwm",
					"lxc.cgroup.devices.allow = c 10:200 rwm"}},
				CheckEnvironment: {Warn, []string{"LXC container (container=lxc)", "/var/lib/lxc/CONTAINER/config"}},
				CheckCreateTUN:   {Fail, []string{"devices cgroup forbids c 10:200", "lxc.cgroup2.devices.allow"}},
			},
		},
		{
			name: "lxd without the device", kind: LXC,
			facts: func(f *Facts) {
				noNode(f)
				f.Env.LXDSocket = "/dev/lxd"
			},
			checks: map[string]want{
				CheckNode: {Fail, []string{"lxc config device add CONTAINER tun unix-char path=/dev/net/tun",
					"lxc.mount.entry = /dev/net dev/net none bind,create=dir", "lxc.cgroup2.devices.allow = c 10:200 rwm"}},
			},
		},
		{
			name: "openvz container without TUN/TAP", kind: OpenVZ,
			facts: func(f *Facts) {
				noNode(f)
				f.Env = Env{ProcVZ: true, VEID: "101"}
				f.Driver = Driver{}
				f.Kernel = "2.6.32-042stab145.3"
			},
			checks: map[string]want{
				CheckNode:        {Fail, []string{"hardware node has not given this container", "vzctl set 101 --devnodes net/tun:rw --save"}},
				CheckEnvironment: {Warn, []string{"OpenVZ/Virtuozzo container", "envID 101", "modprobe tun", "vzctl set 101 --devnodes net/tun:rw --save"}},
				CheckKernel:      {Warn, []string{"not visible inside this OpenVZ/Virtuozzo container", "modprobe tun", "ask the provider"}},
				CheckCreateTUN:   {Fail, []string{"vzctl set 101"}},
			},
		},
		{
			name: "openvz container, node present, no driver", kind: OpenVZ,
			facts: func(f *Facts) {
				f.Env = Env{ProcVZ: true}
				f.Driver = Driver{}
				f.Node.Perm = 0o600
				both(f, StageOpen, unix.ENODEV)
			},
			checks: map[string]want{
				CheckKernel:    {Fail, []string{"modprobe tun", "vzctl set CTID --devnodes net/tun:rw --save"}},
				CheckCreateTUN: {Fail, []string{"ENODEV", "not enabled for this OpenVZ/Virtuozzo container", "vzctl set CTID"}},
			},
		},
		{
			name: "openvz container without the capability", kind: OpenVZ,
			facts: func(f *Facts) {
				noCap(f)
				f.Env = Env{ProcVZ: true, VEID: "202"}
			},
			checks: map[string]want{
				CheckCapability: {Fail, []string{"vzctl set 202 --capability net_admin:on --save"}},
			},
		},
		{
			name: "openvz hardware node is a host", usable: true, kind: Host,
			facts: func(f *Facts) { f.Env = Env{ProcVZ: true, ProcBC: true} },
			checks: map[string]want{
				CheckEnvironment: {OK, []string{"hardware node"}},
			},
		},
		{
			name: "systemd-nspawn without device and capability", kind: Nspawn,
			facts: func(f *Facts) {
				noNode(f)
				f.Caps.Eff &^= 1 << capNetAdmin
				f.Env.ContainerVar = "systemd-nspawn"
			},
			checks: map[string]want{
				CheckEnvironment: {Warn, []string{"systemd-nspawn --capability=CAP_NET_ADMIN --bind=/dev/net/tun",
					"Capability=CAP_NET_ADMIN", "Bind=/dev/net/tun", "DeviceAllow=/dev/net/tun rwm"}},
				CheckNode:       {Fail, []string{"minimal /dev", "--bind=/dev/net/tun"}},
				CheckCapability: {Fail, []string{"--capability=CAP_NET_ADMIN"}},
			},
		},
		{
			name: "kubernetes pod without capability", kind: Kubernetes,
			facts: func(f *Facts) {
				noCap(f)
				f.Env.Kubernetes = true
				f.Env.DockerEnv = true // Kubernetes wins over the runtime's marker
			},
			checks: map[string]want{
				CheckCapability: {Fail, []string{"securityContext:", `add: ["NET_ADMIN"]`}},
			},
		},
		{
			name: "kubernetes pod without the device", kind: Kubernetes,
			facts: func(f *Facts) {
				noNode(f)
				f.Env.Cgroups = []string{"/kubepods/besteffort/pod1234/abcd"}
			},
			checks: map[string]want{
				CheckNode: {Fail, []string{"device plugin", "hostPath", "type: CharDevice"}},
			},
		},
		{
			name: "podman without the device", kind: Podman,
			facts: func(f *Facts) {
				noNode(f)
				f.Env.ContainerEnv, f.Env.ContainerEngine = true, "podman-4.9.3"
			},
			checks: map[string]want{
				CheckNode:        {Fail, []string{"podman run --device /dev/net/tun ... IMAGE"}},
				CheckEnvironment: {Warn, []string{"Podman container (/run/.containerenv (podman-4.9.3))"}},
			},
		},
		{
			name: "module missing but file present", kind: Host,
			facts: func(f *Facts) {
				f.Driver = Driver{ModulesDir: true, ModuleFile: "/lib/modules/6.1.0-18-amd64/kernel/drivers/net/tun.ko.zst", Config: "m"}
				both(f, StageOpen, unix.ENODEV)
			},
			checks: map[string]want{
				CheckKernel:    {Fail, []string{"the tun module is not loaded", "tun.ko.zst", "modprobe tun", "echo tun | tee /etc/modules-load.d/tun.conf"}},
				CheckCreateTUN: {Fail, []string{"ENODEV", "no TUN/TAP driver", "modprobe tun"}},
			},
		},
		{
			name: "unprivileged user in a container that allows the capability", kind: Docker,
			facts: func(f *Facts) {
				f.Env.DockerEnv = true
				f.EUID, f.User = 1000, "app"
				f.Caps = Caps{Known: true, Bnd: allCaps}
				both(f, StageCreate, unix.EPERM)
			},
			checks: map[string]want{
				CheckEnvironment: {OK, []string{"Docker container"}},
				CheckCapability:  {Fail, []string{"sudo setcap cap_net_admin+ep", "user app"}},
			},
		},
		{
			name: "unprivileged user in a container without the capability", kind: Docker,
			facts: func(f *Facts) {
				f.Env.DockerEnv = true
				f.EUID, f.User = 1000, "app"
				f.Caps = Caps{Known: true}
				both(f, StageCreate, unix.EPERM)
			},
			checks: map[string]want{
				CheckEnvironment: {Warn, []string{"--cap-add NET_ADMIN"}},
				CheckCapability:  {Fail, []string{"not even in the bounding set", "--cap-add NET_ADMIN", "then, inside", "setcap"}},
			},
		},
		{
			name: "module missing in a container", kind: Docker,
			facts: func(f *Facts) {
				f.Env.DockerEnv = true
				f.Driver = Driver{}
				both(f, StageOpen, unix.ENXIO)
			},
			checks: map[string]want{
				CheckEnvironment: {Warn, []string{"cannot load modules; on the host"}},
				CheckKernel:      {Fail, []string{"modules are not visible here", "cannot load modules; on the host", "modprobe tun"}},
				CheckCreateTUN:   {Fail, []string{"ENXIO", "no TUN/TAP driver"}},
			},
		},
		{
			name: "kernel without TUN/TAP", kind: Host,
			facts: func(f *Facts) {
				f.Driver = Driver{ModulesDir: true, Config: "n", ConfigFile: "/boot/config-6.1.0-18-amd64"}
				both(f, StageOpen, unix.ENODEV)
			},
			checks: map[string]want{
				CheckKernel:    {Fail, []string{"built without TUN/TAP", "CONFIG_TUN is not set in /boot/config-6.1.0-18-amd64", "CONFIG_TUN=y or =m", "apt install linux-image-amd64"}},
				CheckCreateTUN: {Fail, []string{"no TUN/TAP driver", "CONFIG_TUN"}},
			},
		},
		{
			name: "no module at all, configuration unknown", kind: Host,
			facts: func(f *Facts) {
				f.Driver = Driver{ModulesDir: true}
				both(f, StageOpen, unix.ENODEV)
			},
			checks: map[string]want{
				CheckKernel: {Fail, []string{"this kernel has no TUN/TAP", "no tun module under /lib/modules/6.1.0-18-amd64", "CONFIG_TUN"}},
			},
		},
		{
			name: "no modules installed for the running kernel", kind: Host,
			facts: func(f *Facts) {
				f.Driver = Driver{Config: "m", ConfigFile: "/proc/config.gz"}
				both(f, StageOpen, unix.ENODEV)
			},
			checks: map[string]want{
				CheckKernel: {Fail, []string{"CONFIG_TUN=m", "linux-modules-6.1.0-18-amd64"}},
			},
		},
		{
			name: "built-in driver with no /sys/module entry", usable: true, kind: Host,
			facts: func(f *Facts) {
				f.Driver = Driver{ProcMisc: true, SysClassMisc: true, Config: "y", ConfigFile: "/proc/config.gz", NoModules: true}
			},
			checks: map[string]want{
				CheckKernel: {OK, []string{"built into the kernel", "/proc/misc lists 200 tun"}},
			},
		},
		{
			name: "driver loaded on demand by the attempt", usable: true, kind: Host,
			facts: func(f *Facts) {
				f.Driver = Driver{ModulesDir: true, ModuleFile: "/lib/modules/x/tun.ko"}
			},
			checks: map[string]want{
				CheckKernel: {OK, []string{"loaded on demand"}},
			},
		},
		{
			name: "capability present but refused: user namespace", kind: Podman,
			facts: func(f *Facts) {
				f.Env.ContainerVar, f.Env.UserNS = "podman", true
				both(f, StageCreate, unix.EPERM)
			},
			checks: map[string]want{
				CheckCapability: {OK, nil},
				CheckCreateTUN:  {Fail, []string{"user namespace that owns this network namespace", "--network=host"}},
			},
		},
		{
			name: "TAP unsupported, TUN fine", kind: Host,
			facts: func(f *Facts) {
				f.TAP = Trial{Tried: true, Stage: StageOther, Err: "tun: TAP is not supported by this kernel", Hint: "a hint"}
			},
			checks: map[string]want{
				CheckCreateTUN: {OK, nil},
				CheckCreateTAP: {Fail, []string{"unexpected error", "TAP is not supported", "a hint"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy()
			tc.facts(&f)
			r := Diagnose(f)
			if r.Usable != tc.usable {
				t.Errorf("usable = %v, want %v", r.Usable, tc.usable)
			}
			if r.Environment != tc.kind {
				t.Errorf("environment = %q, want %q", r.Environment, tc.kind)
			}
			if len(r.Results) != 7 {
				t.Fatalf("%d results, want 7", len(r.Results))
			}
			for id, w := range tc.checks {
				res := r.Result(id)
				if res.ID != id {
					t.Errorf("no result %s", id)
					continue
				}
				if res.Status != w.status {
					t.Errorf("%s: status %s, want %s\n%s", id, res.Status, w.status, dump(res))
				}
				all := res.Summary + "\n" + res.Cause + "\n" + res.Fix
				for _, s := range w.in {
					if !strings.Contains(all, s) {
						t.Errorf("%s lacks %q:\n%s", id, s, dump(res))
					}
				}
			}
			for _, res := range r.Results {
				if (res.Status == Fail || res.Status == Warn) && (res.Cause == "" || res.Fix == "") {
					t.Errorf("%s is %s without cause or fix:\n%s", res.ID, res.Status, dump(res))
				}
				if res.Status == OK && (res.Cause != "" || res.Fix != "") {
					t.Errorf("%s is ok with a cause or fix:\n%s", res.ID, dump(res))
				}
			}
			// The text form must hold every problem's cause and fix,
			// or a reference to one printed above.
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			text := b.String()
			if testing.Verbose() {
				t.Log("\n" + text)
			}
			for _, res := range r.Results {
				if !strings.Contains(text, res.Summary) {
					t.Errorf("text lacks summary %q", res.Summary)
				}
			}
			if tc.usable != strings.Contains(text, "verdict: TUN/TAP is usable") {
				t.Errorf("verdict wrong:\n%s", text)
			}
		})
	}
}

func dump(r Result) string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

func TestDoctorWriteText(t *testing.T) {
	f := healthy()
	noNode(&f)
	f.Env.DockerEnv = true
	r := Diagnose(f)
	r.Fixed = []string{"created something"}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, s := range []string{
		"fixed  created something",
		"FAIL  device-node    /dev/net/tun does not exist\n",
		"      cause: the container was started without",
		"      fix:   on the Docker host, recreate the container with:\n",
		"             or, inside the container now",
		"ok    capability     CAP_NET_ADMIN is effective",
		"WARN  environment",
		"FAIL  create-tap",
		"      fix:   as for device-node above\n",
		"verdict: TUN/TAP is NOT usable here: the device node /dev/net/tun is missing (fix above)\n",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
}

func TestDoctorWriteJSON(t *testing.T) {
	f := healthy()
	noCap(&f)
	r := Diagnose(f)
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got["usable"] != false || got["environment"] != "host" {
		t.Errorf("usable/environment wrong: %s", b.String())
	}
	results, _ := got["results"].([]any)
	if len(results) != 7 {
		t.Fatalf("%d results:\n%s", len(results), b.String())
	}
	for _, x := range results {
		m := x.(map[string]any)
		for _, k := range []string{"id", "status", "summary", "cause", "fix"} {
			if _, ok := m[k]; !ok {
				t.Errorf("result lacks %q: %v", k, m)
			}
		}
	}
	if c := results[1].(map[string]any); c["id"] != CheckCapability || c["status"] != "fail" || !strings.Contains(c["cause"].(string), "CAP_NET_ADMIN") {
		t.Errorf("capability result wrong: %v", c)
	}
}

func TestDoctorClassify(t *testing.T) {
	for _, tc := range []struct {
		env  Env
		want Kind
	}{
		{Env{}, Host},
		{Env{ProcVZ: true, ProcBC: true}, Host},
		{Env{ProcVZ: true, DockerEnv: true}, OpenVZ},
		{Env{Kubernetes: true, DockerEnv: true}, Kubernetes},
		{Env{ContainerVar: "podman", DockerEnv: true}, Podman},
		{Env{ContainerVar: "lxc-libvirt"}, LXC},
		{Env{ContainerVar: "systemd-nspawn"}, Nspawn},
		{Env{ContainerVar: "wsl"}, Container},
		{Env{ContainerEnv: true}, Podman},
		{Env{DockerEnv: true}, Docker},
		{Env{LXCDir: true}, LXC},
		{Env{Cgroups: []string{"/docker/abc"}}, Docker},
		{Env{Cgroups: []string{"/system.slice/docker-abc.scope"}}, Docker},
		{Env{Cgroups: []string{"/lxc.payload.web"}}, LXC},
		{Env{Cgroups: []string{"/machine.slice/machine-web.scope"}}, Nspawn},
		{Env{Cgroups: []string{"/system.slice/ssh.service"}}, Host},
	} {
		if got, ev := Classify(tc.env); got != tc.want {
			t.Errorf("Classify(%+v) = %s %v, want %s", tc.env, got, ev, tc.want)
		}
	}
}

func TestDoctorParseStatus(t *testing.T) {
	c, veid := parseStatus("Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffefff\nCapEff:\t000001fffeffefff\nCapBnd:\t000001ffffffffff\nenvID:\t101\n")
	if !c.Known || c.NetAdmin() || !c.BoundNetAdmin() || veid != "101" {
		t.Errorf("got %+v %q", c, veid)
	}
	c, _ = parseStatus("CapEff:\t0000000000001000\nCapPrm:\t0\nCapBnd:\t0\n")
	if !c.NetAdmin() {
		t.Errorf("bit 12 not seen: %+v", c)
	}
	if c, _ := parseStatus("garbage"); c.Known {
		t.Error("known from garbage")
	}
}

func TestDoctorDevicesAllow(t *testing.T) {
	for _, tc := range []struct {
		rules []string
		want  bool
	}{
		{[]string{"a *:* rwm"}, true},
		{[]string{"c 10:200 rwm"}, true},
		{[]string{"c 10:* rw"}, true},
		{[]string{"c *:* m", "c 10:200 r", "c 10:200 w"}, true},
		{[]string{"c *:* m", "c 1:3 rwm", "c 136:* rwm"}, false},
		{[]string{"c 10:200 r"}, false},
		{[]string{"b 10:200 rwm"}, false},
		{[]string{"c 10:229 rwm"}, false},
		{nil, false},
	} {
		if got, _ := devicesAllow(tc.rules, 'c', 10, 200, "rw"); got != tc.want {
			t.Errorf("devicesAllow(%q) = %v, want %v", tc.rules, got, tc.want)
		}
	}
}

func TestDoctorParseCgroupAndMounts(t *testing.T) {
	lines := parseCgroup("12:devices:/docker/abc\n11:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n")
	v1, hasV1, v2, hasV2 := devicesPath(lines)
	if !hasV1 || v1 != "/docker/abc" || !hasV2 || v2 != "/docker/abc" {
		t.Errorf("devicesPath: %q %v %q %v", v1, hasV1, v2, hasV2)
	}
	_, hasV1, _, hasV2 = devicesPath(parseCgroup("0::/user.slice\n"))
	if hasV1 || !hasV2 {
		t.Error("pure v2 misread")
	}
	mounts := parseMountinfo("22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n" +
		"24 22 0:6 / /dev rw,nosuid - devtmpfs devtmpfs rw\n" +
		"30 24 0:40 / /dev/net rw,nodev - tmpfs tmpfs rw\n" +
		"31 22 0:41 /docker/abc /sys/fs/cgroup/devices rw shared:5 - cgroup cgroup rw,devices\n" +
		"32 22 0:42 / /mnt/with\\040space rw - tmpfs tmpfs rw\n")
	if len(mounts) != 5 {
		t.Fatalf("%d mounts: %+v", len(mounts), mounts)
	}
	if m, _ := mountOf(mounts, "/dev/net/tun"); m.point != "/dev/net" || !hasOpt(m.opts, "nodev") {
		t.Errorf("mountOf /dev/net/tun = %+v", m)
	}
	if m, _ := mountOf(mounts, "/dev/netx"); m.point != "/dev" {
		t.Errorf("mountOf /dev/netx = %+v", m)
	}
	if mounts[3].fstype != "cgroup" || !hasOpt(mounts[3].super, "devices") || mounts[3].root != "/docker/abc" {
		t.Errorf("cgroup mount misread: %+v", mounts[3])
	}
	if mounts[4].point != "/mnt/with space" {
		t.Errorf("escape not undone: %q", mounts[4].point)
	}
}

func TestDoctorParseKernelFiles(t *testing.T) {
	if tun, mods, ok := parseKernelConfig("# CONFIG_MODULES is not set\nCONFIG_TUN=y\n"); tun != "y" || mods || !ok {
		t.Errorf("config: %q %v %v", tun, mods, ok)
	}
	if tun, mods, ok := parseKernelConfig("CONFIG_MODULES=y\n# CONFIG_TUN is not set\n"); tun != "n" || !mods || !ok {
		t.Errorf("config: %q %v %v", tun, mods, ok)
	}
	if _, _, ok := parseKernelConfig(""); ok {
		t.Error("empty config read as a config")
	}
	if !miscHasTun(" 61 vhost-net\n200 tun\n237 loop-control\n") || miscHasTun("229 fuse\n") {
		t.Error("miscHasTun")
	}
	if !modulesHasTun("tap 28672 0 - Live 0x0\ntun 61440 2 - Live 0x0\n") || modulesHasTun("tunnel4 16384 0\n") {
		t.Error("modulesHasTun")
	}
	if p := moduleListHasTun("kernel/drivers/net/tap.ko.xz:\nkernel/drivers/net/tun.ko.xz: kernel/drivers/net/tap.ko.xz\n"); p != "kernel/drivers/net/tun.ko.xz" {
		t.Errorf("moduleListHasTun = %q", p)
	}
	if p := moduleListHasTun("kernel/net/ipv4/tunnel4.ko\n"); p != "" {
		t.Errorf("moduleListHasTun = %q", p)
	}
}

func TestDoctorParseEnvFiles(t *testing.T) {
	if v := environValue("PATH=/bin\x00container=lxc\x00HOME=/\x00", "container"); v != "lxc" {
		t.Errorf("environValue = %q", v)
	}
	if e := containerEnvEngine("engine=\"podman-4.9.3\"\nname=\"web\"\n"); e != "podman-4.9.3" {
		t.Errorf("engine = %q", e)
	}
	if !uidMapInitial("         0          0 4294967295\n") || uidMapInitial("0 1000 1\n") {
		t.Error("uidMapInitial")
	}
}

// TestGatherStatic reads this host: whatever it is, the facts must be
// consistent enough to diagnose.
func TestDoctorGatherStatic(t *testing.T) {
	f := GatherStatic()
	if f.Kernel == "" {
		t.Error("no kernel release")
	}
	if !f.Caps.Known {
		t.Error("capabilities unknown")
	}
	if f.EUID != os.Geteuid() {
		t.Error("wrong euid")
	}
	if _, err := os.Stat(NodePath); err == nil != f.Node.Exists {
		t.Errorf("node exists = %v, stat says %v", f.Node.Exists, err)
	}
	r := Diagnose(f)
	t.Logf("environment %s, kernel %s", r.Environment, r.Result(CheckKernel).Summary)
}
