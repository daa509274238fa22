//go:build !windows

package wgquick

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/netconf"
)

// events records what a runner test sees happen, in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// fakeDevice records its calls; closing it runs onClose, if any.
type fakeDevice struct {
	ev      *events
	onClose func() error
}

func (d *fakeDevice) SetFwMark(mark uint32) error {
	d.ev.add("fwmark %d", mark)
	return nil
}

func (d *fakeDevice) Close() error {
	d.ev.add("device closed")
	if d.onClose != nil {
		return d.onClose()
	}
	return nil
}

// fakeDNSTool writes a program that records its arguments and input as
// events read back by readTool, and fails when an argument is "fail".
func fakeDNSTool(t *testing.T) (DNSTool, func() []string) {
	t.Helper()
	dir := t.TempDir()
	rec := filepath.Join(dir, "calls")
	prog := filepath.Join(dir, "resolvconf")
	script := "#!/bin/sh\nin=$(cat)\necho \"dns $* [$in]\" >> " + rec + "\nfor a; do [ \"$a\" = fail ] && { echo refused >&2; exit 1; }; done\nexit 0\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return DNSTool{Resolvconf, prog}, func() []string {
		b, _ := os.ReadFile(rec)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// hookRecorder returns a hook command that appends its words to a file,
// and what reads them back.
func hookRecorder(t *testing.T) (func(words string) string, func() []string) {
	t.Helper()
	rec := filepath.Join(t.TempDir(), "hooks")
	return func(words string) string { return "echo " + words + " >> " + rec }, func() []string {
		b, _ := os.ReadFile(rec)
		return strings.Fields(string(b))
	}
}

// TestRunnerOrderAndRollback runs hand-made plans with hooks, the device
// and DNS only, which need no root: steps run in order, a failing step
// undoes those before it, last first, and Down runs every step.
func TestRunnerOrderAndRollback(t *testing.T) {
	t.Parallel()
	tool, dnsCalls := fakeDNSTool(t)
	hookCmd, hooksRan := hookRecorder(t)
	set, unset := dnsSteps(tool, "", "wg0", []string{"192.0.2.53", "example.test"}, false, nil)
	plan := &Plan{
		Name: "wg0", AddrLink: "wg0",
		Up: []Step{RunHook{"PreUp", hookCmd("pre1")}, RunHook{"PreUp", hookCmd("pre2")}, StartDevice{Name: "wg0"},
			SetFwMark{"wg0", 51820}, Log{"hello", []any{"k", 1}}, set, RunHook{"PostUp", hookCmd("post")}},
		Down: []Step{RunHook{"PreDown", "exit 3"}, RunHook{"PreDown", hookCmd("skipped")}, SaveConfig{}, unset, CloseDevice{"wg0"},
			RunHook{"PostDown", hookCmd("postdown")}},
	}
	ev := &events{}
	var logs bytes.Buffer
	var lmu sync.Mutex
	r := &Runner{Log: slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, nil))}
	a, err := r.Up(t.Context(), plan, func(sd StartDevice) (Device, error) {
		ev.add("start %s", sd)
		return &fakeDevice{ev: ev}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hooksRan(), []string{"pre1", "pre2", "post"}; !slices.Equal(got, want) {
		t.Errorf("hooks after up: %q, want %q", got, want)
	}
	if got, want := ev.get(), []string{"start start the tun device wg0 (MTU automatic)", "fwmark 51820"}; !slices.Equal(got, want) {
		t.Errorf("device: %q, want %q", got, want)
	}
	if got, want := dnsCalls(), []string{"dns -a wg0 -m 0 -x [nameserver 192.0.2.53", "search example.test]"}; !slices.Equal(got, want) {
		t.Errorf("DNS tool: %q, want %q", got, want)
	}
	a.Down(func() { ev.add("saved") })
	// The failing PreDown hook skips the other PreDown hook, and the rest goes on.
	if got, want := hooksRan(), []string{"pre1", "pre2", "post", "postdown"}; !slices.Equal(got, want) {
		t.Errorf("hooks after down: %q, want %q", got, want)
	}
	if got, want := ev.get()[2:], []string{"saved", "device closed"}; !slices.Equal(got, want) {
		t.Errorf("down: %q, want %q", got, want)
	}
	if got := dnsCalls(); len(got) != 3 || got[2] != "dns -d wg0 -f []" {
		t.Errorf("DNS tool after down: %q", got)
	}
	lmu.Lock()
	out := logs.String()
	lmu.Unlock()
	for _, want := range []string{`msg="running hook" stage=PreUp cmd="echo pre1`, "msg=hello k=1", `msg="DNS set" tool=resolvconf dns="[192.0.2.53 example.test]"`,
		`level=WARN msg=PreDown err="PreDown hook \"exit 3\": exit status 3"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRunnerRollback fails each step of a plan in turn: the steps before
// it are undone, last first, and the error is the step's.
func TestRunnerRollback(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		fail    int // the index of the failing step
		err     string
		events  []string // after Up returns
		dnsUndo bool     // the DNS settings were taken back
	}{
		{"PreUp", 0, `PreUp hook "exit 4": exit status 4`, nil, false},
		{"device", 1, "no device", nil, false},
		{"DNS", 2, "exit status 1: refused", []string{"start", "device closed"}, false},
		{"PostUp", 3, `PostUp hook "exit 5": exit status 5`, []string{"start", "device closed"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tool, dnsCalls := fakeDNSTool(t)
			set, _ := dnsSteps(tool, "", "wg0", []string{"192.0.2.53"}, false, nil)
			if c.fail == 2 {
				set.Cmds[0].Args = append(set.Cmds[0].Args, "fail") // the fake tool refuses
			}
			pre, post := RunHook{"PreUp", "true"}, RunHook{"PostUp", "true"}
			if c.fail == 0 {
				pre.Cmd = "exit 4"
			}
			if c.fail == 3 {
				post.Cmd = "exit 5"
			}
			ev := &events{}
			plan := &Plan{Name: "wg0", AddrLink: "wg0", Up: []Step{pre, StartDevice{Name: "wg0"}, set, post}}
			a, err := (&Runner{Log: slog.New(slog.DiscardHandler)}).Up(t.Context(), plan, func(StartDevice) (Device, error) {
				if c.fail == 1 {
					return nil, errors.New("no device")
				}
				ev.add("start")
				return &fakeDevice{ev: ev}, nil
			})
			if err == nil || a != nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("Up: %v, %v; want the error %q", a, err, c.err)
			}
			if got := ev.get(); !slices.Equal(got, c.events) {
				t.Errorf("device: %q, want %q", got, c.events)
			}
			calls := dnsCalls()
			if undone := slices.Contains(calls, "dns -d wg0 -f []"); undone != c.dnsUndo {
				t.Errorf("DNS undone: %v, want %v (calls %q)", undone, c.dnsUndo, calls)
			}
		})
	}
}

// TestRunnerRejectsForeignSteps: a Down step in Up, or a step on the
// device before it started, is an error, not a silent no-op or a panic.
func TestRunnerRejectsForeignSteps(t *testing.T) {
	t.Parallel()
	_, err := (&Runner{Log: slog.New(slog.DiscardHandler)}).Up(t.Context(), &Plan{Up: []Step{SaveConfig{}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "SaveConfig is not a step of bringing an interface up") {
		t.Errorf("Up with SaveConfig: %v", err)
	}
	_, err = (&Runner{Log: slog.New(slog.DiscardHandler)}).Up(t.Context(), &Plan{Up: []Step{SetFwMark{"wg0", 1}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "wg set wg0 fwmark 1 before the device started") {
		t.Errorf("Up with SetFwMark first: %v", err)
	}
}

// TestHooksRunWithBash: hooks run as wg-quick runs them, with bash, so
// that wg-quick(8)'s own example with a process substitution works, and
// with errexit and pipefail, so a failing command fails the hook.
func TestHooksRunWithBash(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	hookCmd, hooksRan := hookRecorder(t)
	rec := strings.TrimPrefix(hookCmd(""), "echo  >> ")
	for _, c := range []struct {
		hook string
		err  string   // "": Up succeeds
		ran  []string // what the hooks recorded
	}{
		// As wg-quick(8)'s example: PostUp = wg set %i private-key <(some command).
		{"cat <(echo substituted) >> " + rec, "", []string{"substituted"}},
		{"echo $0 >> " + rec, "", []string{"bash"}},
		{"false; echo errexit-ignored >> " + rec, "exit status 1", nil},
		{"false | true; echo pipefail-ignored >> " + rec, "exit status 1", nil},
	} {
		os.Remove(rec)
		plan := &Plan{Name: "wg0", AddrLink: "wg0", Up: []Step{RunHook{"PostUp", c.hook}}}
		_, err := (&Runner{Log: slog.New(slog.DiscardHandler)}).Up(t.Context(), plan, nil)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("hook %q: %v, want error %q", c.hook, err, c.err)
		}
		if got := hooksRan(); !slices.Equal(got, c.ran) {
			t.Errorf("hook %q recorded %q, want %q", c.hook, got, c.ran)
		}
	}
}

// TestHooksWithoutBash: where bash is not installed, hooks run with sh,
// which the log says once.
func TestHooksWithoutBash(t *testing.T) {
	t.Parallel()
	hookCmd, hooksRan := hookRecorder(t)
	rec := strings.TrimPrefix(hookCmd(""), "echo  >> ")
	var logs bytes.Buffer
	var lmu sync.Mutex
	r := &Runner{
		Log:      slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, nil)),
		lookPath: func(string) (string, error) { return "", exec.ErrNotFound },
	}
	plan := &Plan{Name: "wg0", AddrLink: "wg0",
		Up:   []Step{RunHook{"PreUp", "echo $0 >> " + rec}, RunHook{"PostUp", "echo post >> " + rec}},
		Down: []Step{RunHook{"PostDown", "false; echo errexit-ignored >> " + rec}}}
	a, err := r.Up(t.Context(), plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Down(func() {})
	if got, want := hooksRan(), []string{"sh", "post"}; !slices.Equal(got, want) {
		t.Errorf("hooks recorded %q, want %q", got, want)
	}
	lmu.Lock()
	out := logs.String()
	lmu.Unlock()
	if n := strings.Count(out, "bash is not installed: hooks run with sh"); n != 1 {
		t.Errorf("the log says %d times that bash is missing, want once:\n%s", n, out)
	}
}

// TestRunnerInterrupted: when Up's context ends while a hook runs, the
// hook is killed, and Up undoes what it did and returns the cause.
func TestRunnerInterrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancelCause(t.Context())
	ev := &events{}
	var journals []Leftovers
	tool, dnsCalls := fakeDNSTool(t)
	set, _ := dnsSteps(tool, "", "wg0", []string{"192.0.2.53"}, false, nil)
	plan := &Plan{Name: "wg0", AddrLink: "wg0", Up: []Step{StartDevice{Name: "wg0"}, set,
		RunHook{"PostUp", "echo $$ > " + pidFile + ".new; mv " + pidFile + ".new " + pidFile + "; exec sleep 600"},
		RunHook{"PostUp", "echo never > " + filepath.Join(dir, "second")}}}
	r := &Runner{Log: slog.New(slog.DiscardHandler), Journal: func(l Leftovers) { journals = append(journals, l) }}
	type result struct {
		a   *Applied
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := r.Up(ctx, plan, func(StartDevice) (Device, error) { return &fakeDevice{ev: ev}, nil })
		done <- result{a, err}
	}()
	var pid int
	for deadline := time.Now().Add(time.Minute); pid == 0; time.Sleep(5 * time.Millisecond) {
		select {
		case res := <-done: // Up ended before the hook started: say why
			t.Fatalf("Up ended before its PostUp hook ran: %v, %v", res.a, res.err)
		default:
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else if time.Now().After(deadline) {
			t.Fatal("the hook did not start")
		}
	}
	cancel(errors.New("asked to stop"))
	var res result
	select {
	case res = <-done:
	case <-time.After(time.Minute):
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal("Up still running a minute after its context ended: the hook was not killed")
	}
	if res.a != nil || res.err == nil || !strings.Contains(res.err.Error(), `PostUp hook "echo`) || !strings.Contains(res.err.Error(), "stopped: asked to stop") {
		t.Errorf("Up: %v, %v; want the hook stopped, with the cause", res.a, res.err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the hook's process %d: %v, want it gone", pid, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "second")); err == nil {
		t.Error("a step after the interruption ran")
	}
	if got := ev.get(); !slices.Equal(got, []string{"device closed"}) {
		t.Errorf("device: %q, want it closed", got)
	}
	if calls := dnsCalls(); !slices.Contains(calls, "dns -d wg0 -f []") {
		t.Errorf("DNS not taken back: %q", calls)
	}
	// The journal had the DNS settings before they were made, and nothing
	// once they were taken back.
	if len(journals) != 2 || journals[0].DNS == nil || strings.Join(journals[0].DNS.Args, " ") != tool.Path+" -d wg0 -f" || !journals[1].Empty() {
		t.Errorf("journal: %+v", journals)
	}

	// A context that ended before Up starts nothing.
	_, err := r.Up(ctx, plan, func(StartDevice) (Device, error) { t.Error("started a device"); return nil, nil })
	if err == nil || !strings.Contains(err.Error(), "interrupted before start the tun device wg0") {
		t.Errorf("Up after the end: %v", err)
	}
}

// TestLeftoversJSON: leftovers survive a trip through JSON (the pid file's
// neighbour, where tapwire up keeps them) and come back as Down's steps.
func TestLeftoversJSON(t *testing.T) {
	t.Parallel()
	l := Leftovers{
		Rules: []netconf.Rule{{Table: 51820, Mark: 51820, Invert: true, SuppressPrefixlen: -1}, {V6: true, Table: 254, SuppressPrefixlen: 0}},
		Addrs: []DelAddr{{"br0", netip.MustParsePrefix("198.51.100.1/24")}, {"br0", netip.MustParsePrefix("2001:db8::1/64")}},
		DNS:   &Command{Args: []string{"/sbin/resolvconf", "-d", "wg0", "-f"}},
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back Leftovers
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := []string{"/sbin/resolvconf -d wg0 -f", "ip rule del not fwmark 0xca6c table 51820", "ip -6 rule del table 254 suppress_prefixlength 0",
		"ip address del 198.51.100.1/24 dev br0", "ip address del 2001:db8::1/64 dev br0"}
	if got := strs(back.Steps()); !slices.Equal(got, want) {
		t.Errorf("steps after JSON %s:\n got %q\nwant %q", b, got, want)
	}
	if (Leftovers{}).Empty() != true || back.Empty() {
		t.Error("Empty")
	}
}
