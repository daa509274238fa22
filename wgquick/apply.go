package wgquick

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/netconf"
)

// Device is the tunnel device a plan is carried out around: what the start
// function given to Runner.Up returns.
type Device interface {
	// SetFwMark sets the fwmark of the device's socket (SetFwMark steps).
	SetFwMark(mark uint32) error
	// Close closes the device, and its link goes (CloseDevice steps).
	Close() error
}

// ReadHost gathers from the host the facts NewPlan needs for cfg: whether
// its Bridge exists (through nc, in nc's namespace), which tables from
// FirstAutoTable up have routes when the plan will choose a fwmark (a table
// that cannot be listed counts as empty), and for a file with DNS the tool
// that applies it and resolvconf's prefix (from this process's $PATH and
// /etc, as the tools will see them). Host.OS is runtime.GOOS; outside
// Linux, when the tunnel takes a default route, the host's default
// gateways are read (netconf.DefaultGateway; none is the zero Gateway).
func ReadHost(nc *netconf.Handle, cfg *config.Config) Host {
	h := Host{OS: runtime.GOOS}
	in := &cfg.Interface
	if !h.linux() {
		v4, v6 := splitDefaults(cfg)
		for _, f := range []struct {
			on bool
			v6 bool
			gw *Gateway
		}{{v4, false, &h.Gateway4}, {v6, true, &h.Gateway6}} {
			if f.on {
				if via, link, err := nc.DefaultGateway(f.v6); err == nil {
					*f.gw = Gateway{Via: via, Link: link}
				}
			}
		}
	}
	if in.Bridge != "" {
		if _, err := nc.LinkIndex(in.Bridge); err == nil {
			h.Links = append(h.Links, in.Bridge)
		}
	}
	if v4, v6 := defaultRoutes(cfg); (v4 || v6) && in.FwMark == 0 && h.linux() {
		for t := uint32(FirstAutoTable); ; t++ {
			e4, err4 := nc.TableEmpty(int(t), false)
			e6, err6 := nc.TableEmpty(int(t), true)
			if (err4 != nil || e4) && (err6 != nil || e6) {
				break
			}
			h.BusyTables = append(h.BusyTables, t)
		}
	}
	if len(in.DNS) > 0 {
		h.DNS, _ = FindDNSTool()
		h.DNSServices = readDNSServices(h.DNS)
		if b, err := os.ReadFile("/etc/resolvconf/interface-order"); err == nil {
			h.ResolvconfPrefix = ResolvconfPrefix(b)
		}
	}
	return h
}

// Runner carries plans out on a host.
type Runner struct {
	// Net is the network namespace the plan is for. A plan without
	// network steps (hooks, DNS and the device only) needs none.
	Net *netconf.Handle
	// Log says what happens; nil: slog.Default().
	Log *slog.Logger
	// Output takes the hooks' standard output and error; nil: discarded.
	Output io.Writer
	// Command makes the command for a hook (bash -e -o pipefail -c CMD)
	// or a DNS tool; nil: exec.Command. Tests run them in a namespace.
	Command func(name string, args ...string) *exec.Cmd
	// Sysctl sets a kernel parameter (Sysctl steps); nil: written to
	// /proc/sys in this thread's network namespace. Failing to set one is
	// logged, not fatal.
	Sysctl func(key, value string) error
	// Journal, if not nil, is told what Up has left on the host that would
	// outlive the process (see Leftovers): before each step that adds to
	// it, with that step's share already in (so that a process killed in
	// the middle of the step leaves nothing unrecorded), and with the empty
	// Leftovers once a failed Up or Down has taken them back. It gets a
	// copy of its own.
	Journal func(Leftovers)

	// lookPath finds a program in $PATH; nil: exec.LookPath. Tests hide
	// bash with it.
	lookPath  func(file string) (string, error)
	shellOnce sync.Once
	shell     []string // the hooks' shell and its options, up to -c
}

// Applied is a plan that is up.
type Applied struct {
	r    *Runner
	plan *Plan
	dev  Device
}

// Up carries out p.Up. At the StartDevice step it calls start, and the
// device it returns is the one SetFwMark and CloseDevice steps act on. When
// a step fails, Up undoes what the steps before it did, last first (the
// DNS settings, the policy rules, the addresses on a bridge, the device;
// a bridge it created stays, as it may have other ports by then), and
// returns the step's error: a hook's is "STAGE hook "CMD": ...".
//
// When ctx ends, a hook that is running is killed (its process group),
// no further step starts, and Up undoes what it did and returns an error
// that wraps ctx's cause.
func (r *Runner) Up(ctx context.Context, p *Plan, start func(StartDevice) (Device, error)) (*Applied, error) {
	a := &Applied{r: r, plan: p}
	var undo []Step
	var left Leftovers
	rollback := func(err error) (*Applied, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			a.undo(undo[i])
		}
		if !left.Empty() {
			r.journal(Leftovers{})
		}
		return nil, err
	}
	for _, s := range p.Up {
		if ctx.Err() != nil {
			return rollback(fmt.Errorf("interrupted before %s: %w", s, context.Cause(ctx)))
		}
		// What outlives the process is recorded before it is made.
		switch s := s.(type) {
		case AddAddr:
			if s.Link != p.Name {
				left.Addrs = append(left.Addrs, DelAddr(s))
				r.journal(left)
			}
		case AddRule:
			left.Rules = append(left.Rules, s.Rule)
			r.journal(left)
		case AddRoute:
			if s.Route.Link != p.Name {
				left.Routes = append(left.Routes, s.Route)
				r.journal(left)
			}
		case SetDNS:
			left.DNS = &s.Unset
			r.journal(left)
		}
		if err := a.do(ctx, s, start); err != nil {
			return rollback(err)
		}
		switch s := s.(type) {
		case StartDevice:
			undo = append(undo, CloseDevice{s.Name})
		case AddAddr:
			if s.Link != p.Name { // the interface's go with it
				undo = append(undo, DelAddr(s))
			}
		case AddRule:
			undo = append(undo, DelRule(s))
		case AddRoute:
			if s.Route.Link != p.Name { // the interface's go with it
				undo = append(undo, DelRoute(s))
			}
		case SetDNS:
			undo = append(undo, UnsetDNS{s.Unset})
		}
	}
	return a, nil
}

// Down carries out the plan's Down steps: save is called at the SaveConfig
// step. Every step runs; what fails is logged (a failing hook skips the
// hooks after it of its stage, as in Up).
func (a *Applied) Down(save func()) {
	failed := "" // the stage whose hook failed
	for _, s := range a.plan.Down {
		switch s := s.(type) {
		case RunHook:
			if s.Stage == failed {
				continue
			}
			if err := a.r.hook(context.Background(), s); err != nil {
				a.r.log().Warn(s.Stage, "err", err)
				failed = s.Stage
			}
		case SaveConfig:
			save()
		default:
			a.undo(s)
		}
	}
	a.r.journal(Leftovers{})
}

func (r *Runner) journal(l Leftovers) {
	if r.Journal != nil {
		r.Journal(l.clone())
	}
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *Runner) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if r.Command == nil {
		cmd = exec.Command(name, args...)
	} else {
		cmd = r.Command(name, args...)
	}
	if line, ok := cmdLine(name, args); ok {
		setCmdLine(cmd, line)
	}
	return cmd
}

// cmdLine returns the command line that runs "cmd /c SCRIPT..." as
// wireguard-windows runs its hooks: the script as written, not quoted.
// Windows hands a program its command line as one string, and Go quotes
// each argument the way CommandLineToArgvW reads it (a " as \"), which
// cmd.exe does not read: a hook such as `netsh ... name="wg0"` would reach
// netsh as name=\"wg0\". ok is false for any other command.
func cmdLine(name string, args []string) (line string, ok bool) {
	if name != "cmd" || len(args) < 2 || args[0] != "/c" {
		return "", false
	}
	return "cmd /c " + strings.Join(args[1:], " "), true
}

// do carries out one step of Up.
func (a *Applied) do(ctx context.Context, s Step, start func(StartDevice) (Device, error)) error {
	r, nc := a.r, a.r.Net
	switch s := s.(type) {
	case RunHook:
		return r.hook(ctx, s)
	case StartDevice:
		dev, err := start(s)
		if err != nil {
			return err
		}
		a.dev = dev
	case AddBridge:
		r.log().Info("creating bridge", "bridge", s.Name)
		return nc.AddBridge(s.Name)
	case AttachBridge:
		return nc.AttachToBridge(s.Link, s.Bridge)
	case SetUp:
		return nc.SetUp(s.Link)
	case AddAddr:
		return nc.AddAddr(s.Link, s.Addr, netconf.NoDAD())
	case AddRoute:
		return nc.AddRoute(s.Route)
	case SetFwMark:
		if a.dev == nil {
			return fmt.Errorf("wgquick: %s before the device started", s)
		}
		return a.dev.SetFwMark(s.Mark)
	case AddRule:
		return nc.AddRule(s.Rule)
	case Sysctl:
		if err := r.sysctl(s.Key, s.Value); err != nil {
			r.log().Warn("sysctl", "key", s.Key, "value", s.Value, "err", err)
		}
	case SetDNS:
		for _, c := range s.Cmds {
			if err := r.run(c); err != nil {
				return err
			}
		}
		r.log().Info("DNS set", "tool", s.Tool, "dns", s.Entries)
	case Log:
		r.log().Info(s.Msg, s.Args...)
	default:
		return fmt.Errorf("wgquick: %T is not a step of bringing an interface up", s)
	}
	return nil
}

// undo carries out a step that takes something back, logging its failure.
func (a *Applied) undo(s Step) {
	r, nc := a.r, a.r.Net
	switch s := s.(type) {
	case CloseDevice:
		if a.dev != nil {
			if err := a.dev.Close(); err != nil {
				r.log().Warn("close the device", "name", s.Name, "err", err)
			}
		}
	case DelAddr:
		if err := nc.DelAddr(s.Link, s.Addr); err != nil && !errors.Is(err, netconf.ErrLinkNotFound) {
			r.log().Warn("remove address", "link", s.Link, "addr", s.Addr.String(), "err", err)
		}
	case DelRoute:
		if err := nc.DelRoute(s.Route); err != nil {
			r.log().Warn("remove route", "route", s.Route.String(), "err", err)
		}
	case DelRule:
		if err := nc.DelRule(s.Rule); err != nil {
			r.log().Warn("remove policy rule", "rule", s.Rule.String(), "err", err)
		}
	case UnsetDNS:
		if err := r.run(s.Cmd); err != nil {
			r.log().Warn("DNS", "err", err)
		}
	default:
		r.log().Warn("wgquick: not a step of taking an interface down", "step", s.String())
	}
}

// hook runs a hook as wg-quick does, with bash, errexit and pipefail (a
// command that fails fails the hook; on Windows with cmd /c), its output
// to r.Output. The hook is the leader of a process group of its own,
// which is killed when ctx ends; except on a terminal (tapwire up -f typed
// by a user), where a process group of its own would be a background one,
// stopped (SIGTTIN, SIGTTOU) if it reads or writes the terminal (a sudo
// prompt, say): there it stays in tapwire's group, as under wg-quick, and
// only the hook's shell is killed. On Windows only the shell is killed.
func (r *Runner) hook(ctx context.Context, h RunHook) error {
	r.log().Info("running hook", "stage", h.Stage, "cmd", h.Cmd)
	sh := r.hookShell()
	cmd := r.command(sh[0], append(sh[1:], h.Cmd)...)
	if r.Output != nil {
		cmd.Stdout, cmd.Stderr = r.Output, r.Output
	}
	group := !onTerminal()
	ownGroup(cmd, group)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s hook %q: %w", h.Stage, h.Cmd, err)
	}
	stop := context.AfterFunc(ctx, func() { kill(cmd, group) })
	err := cmd.Wait()
	if !stop() {
		return fmt.Errorf("%s hook %q: stopped: %w", h.Stage, h.Cmd, context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("%s hook %q: %w", h.Stage, h.Cmd, err)
	}
	return nil
}

// hookShell returns the shell hooks run with and its options, up to the
// one the command follows: bash where it is installed, as wg-quick (a
// bash script) runs them, so that bash's syntax, such as wg-quick(8)'s own
// example with <(...), works; sh where it is not, which the log says
// once; on Windows cmd /c, as wireguard-windows runs them.
func (r *Runner) hookShell() []string {
	r.shellOnce.Do(func() {
		if runtime.GOOS == "windows" {
			r.shell = []string{"cmd", "/c"}
			return
		}
		look := r.lookPath
		if look == nil {
			look = exec.LookPath
		}
		if _, err := look("bash"); err == nil {
			r.shell = []string{"bash", "-e", "-o", "pipefail", "-c"}
			return
		}
		r.shell = []string{"sh", "-e", "-c"}
		r.log().Warn("bash is not installed: hooks run with sh, where bash's syntax, such as <(...), fails")
	})
	return r.shell
}

// run runs a DNS tool's command; the error has its output.
func (r *Runner) run(c Command) error {
	cmd := r.command(c.Args[0], c.Args[1:]...)
	cmd.Stdin = strings.NewReader(c.Stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("DNS: %s: %v: %s", strings.Join(c.Args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (r *Runner) sysctl(key, value string) error {
	if r.Sysctl != nil {
		return r.Sysctl(key, value)
	}
	return os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(value), 0o644)
}
