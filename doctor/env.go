//go:build linux

package doctor

import (
	"strings"
)

// Kind is the kind of environment a process runs in.
type Kind string

// The environments the doctor tells apart.
const (
	Host       Kind = "host"
	Docker     Kind = "docker"
	Podman     Kind = "podman"
	LXC        Kind = "lxc"
	OpenVZ     Kind = "openvz"
	Nspawn     Kind = "systemd-nspawn"
	Kubernetes Kind = "kubernetes"
	Container  Kind = "container" // some other container
)

// Container reports whether k is a container of some kind.
func (k Kind) Container() bool { return k != Host && k != "" }

// Name is k for a person.
func (k Kind) Name() string {
	switch k {
	case Host:
		return "host"
	case Docker:
		return "Docker container"
	case Podman:
		return "Podman container"
	case LXC:
		return "LXC container"
	case OpenVZ:
		return "OpenVZ/Virtuozzo container"
	case Nspawn:
		return "systemd-nspawn container"
	case Kubernetes:
		return "Kubernetes pod"
	}
	return "container"
}

// Classify decides the environment from its signs and returns the evidence
// it went by. The strongest signs win: OpenVZ's /proc files (the kernel
// itself), then Kubernetes (whose pods are also Docker or containerd
// containers), then what the container manager declared, then the marker
// files, then cgroup paths.
func Classify(e Env) (Kind, []string) {
	if e.ProcVZ && !e.ProcBC {
		ev := []string{"/proc/vz without /proc/bc"}
		if e.VEID != "" {
			ev = append(ev, "envID "+e.VEID)
		}
		return OpenVZ, ev
	}
	if e.Kubernetes {
		return Kubernetes, []string{"Kubernetes service environment"}
	}
	switch v := e.ContainerVar; {
	case v == "":
	case v == "docker":
		return Docker, []string{"container=docker"}
	case v == "podman" || v == "oci":
		return Podman, []string{"container=" + v}
	case strings.HasPrefix(v, "lxc"):
		return LXC, []string{"container=" + v}
	case v == "systemd-nspawn":
		return Nspawn, []string{"container=" + v}
	default:
		return Container, []string{"container=" + v}
	}
	if e.ContainerEnv {
		ev := "/run/.containerenv"
		if e.ContainerEngine != "" {
			ev += " (" + e.ContainerEngine + ")"
		}
		return Podman, []string{ev}
	}
	if e.DockerEnv {
		return Docker, []string{"/.dockerenv"}
	}
	if e.LXDSocket != "" {
		return LXC, []string{e.LXDSocket}
	}
	if e.LXCDir {
		return LXC, []string{"/dev/.lxc"}
	}
	for _, hint := range []struct {
		sub  string
		kind Kind
	}{
		{"kubepods", Kubernetes},
		{"libpod", Podman},
		{"docker", Docker},
		{"lxc.payload", LXC},
		{"/lxc/", LXC},
		{"machine.slice/machine-", Nspawn},
		{"containerd", Container},
		{"crio", Container},
	} {
		for _, cg := range e.Cgroups {
			if strings.Contains(cg, hint.sub) {
				return hint.kind, []string{"cgroup " + cg}
			}
		}
	}
	return Host, nil
}

// envSummary describes the environment in one line.
func envSummary(f *Facts, kind Kind, evidence []string) string {
	var s string
	if kind == Host {
		s = "no container detected"
		if f.Env.ProcVZ && f.Env.ProcBC {
			s = "an OpenVZ/Virtuozzo hardware node (not a container)"
		}
	} else {
		s = kind.Name()
		if len(evidence) > 0 {
			s += " (" + strings.Join(evidence, ", ") + ")"
		}
	}
	var more []string
	switch f.Env.Virt {
	case "":
	case "unknown":
		more = append(more, "in a virtual machine")
	default:
		more = append(more, "in a "+f.Env.Virt+" virtual machine")
	}
	if f.Env.UserNS {
		more = append(more, "in a user namespace")
	}
	if kind == Host && f.Env.Service != "" {
		more = append(more, "in systemd unit "+f.Env.Service)
	}
	if len(more) > 0 {
		s += "; " + strings.Join(more, ", ")
	}
	return s
}
