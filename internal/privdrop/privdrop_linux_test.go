package privdrop

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// childEnv makes the test binary a child that drops its capabilities (the
// value lists them, as numbers) and reports: a process cannot get them
// back, so the test that checks them cannot be the one that drops them.
const childEnv = "PRIVDROP_TEST_CHILD"

func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(childEnv); ok {
		os.Exit(child(v))
	}
	os.Exit(m.Run())
}

// child drops to the capabilities in list, with threads locked before and
// started after, prints every thread's status, then that of a program it
// runs, then what a second Drop of more says.
func child(list string) int {
	var keep []Capability
	for f := range strings.FieldsSeq(list) {
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Println("bad", childEnv, err)
			return 2
		}
		keep = append(keep, Capability(n))
	}
	// Threads of their own, so that there are several to change.
	block := make(chan struct{})
	defer close(block)
	for range 4 {
		go func() {
			runtime.LockOSThread()
			<-block
		}()
	}
	if err := Drop(keep...); err != nil {
		fmt.Println("drop:", err)
		return 1
	}
	started := make(chan struct{})
	go func() { // a thread made after the drop
		runtime.LockOSThread()
		close(started)
		<-block
	}()
	<-started
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		fmt.Printf("thread %s\n%s", p, b)
	}
	out, err := exec.Command("/bin/sh", "-c", "cat /proc/self/status").CombinedOutput()
	fmt.Printf("exec %v\n%s", err, out)
	fmt.Printf("again %v\n", Drop(append(keep, NetBindService)...))
	return 0
}

// statusFields returns the fields of one /proc/PID/status.
func statusFields(text string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func requireCaps(t *testing.T, caps ...Capability) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a process without capabilities has none to drop")
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	prm, err := strconv.ParseUint(statusFields(string(b))["CapPrm"], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(caps, 8) { // 8: CAP_SETPCAP
		if prm&(1<<c) == 0 {
			t.Skipf("needs %s, which this process does not have (CapPrm %016x)", c, prm)
		}
	}
}

// TestDrop drops to CAP_NET_ADMIN, and to it and CAP_NET_BIND_SERVICE, in
// a child process: every thread, those locked before the drop and one made
// after, has exactly those capabilities in its permitted, effective and
// bounding sets, none inheritable or ambient, and no_new_privs; a program
// it runs as uid 0 gets nothing; a second Drop is refused.
func TestDrop(t *testing.T) {
	for _, keep := range [][]Capability{{NetAdmin}, {NetAdmin, NetBindService}} {
		t.Run(Names(keep), func(t *testing.T) {
			t.Parallel()
			requireCaps(t, keep...)
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			var list []string
			var mask uint64
			for _, c := range keep {
				list = append(list, strconv.Itoa(int(c)))
				mask |= 1 << c
			}
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(list, " "))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			text := string(out)
			threads := strings.Split(text, "thread ")[1:]
			if len(threads) < 6 {
				t.Errorf("the child reported %d threads, want its 4 locked ones, the one made after and main at least:\n%s", len(threads), text)
			}
			want := fmt.Sprintf("%016x", mask)
			for _, th := range threads {
				th, _, _ = strings.Cut(th, "exec ")
				f := statusFields(th)
				for k, v := range map[string]string{"CapInh": "0000000000000000", "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Uid": "0\t0\t0\t0"} {
					if f[k] != v {
						t.Errorf("%s: %s %q, want %q", strings.SplitN(th, "\n", 2)[0], k, f[k], v)
					}
				}
			}
			_, after, _ := strings.Cut(text, "exec ")
			execd, again, _ := strings.Cut(after, "again ")
			if !strings.HasPrefix(execd, "<nil>") {
				t.Fatalf("the child could not run a program: %s", execd)
			}
			f := statusFields(execd)
			for k, v := range map[string]string{"CapPrm": "0000000000000000", "CapEff": "0000000000000000", "CapBnd": want, "NoNewPrivs": "1"} {
				if f[k] != v {
					t.Errorf("a program run after the drop (as uid %s): %s %q, want %q", f["Uid"], k, f[k], v)
				}
			}
			wantErr := "CAP_SETPCAP"
			if len(keep) == 1 {
				wantErr = "cannot keep CAP_NET_BIND_SERVICE"
			}
			if !strings.Contains(again, wantErr) {
				t.Errorf("a second Drop: %s, want an error saying %q", again, wantErr)
			}
		})
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		caps []Capability
		want string
	}{
		{nil, "none"},
		{[]Capability{NetAdmin}, "CAP_NET_ADMIN"},
		{[]Capability{NetAdmin, NetBindService}, "CAP_NET_ADMIN CAP_NET_BIND_SERVICE"},
		{[]Capability{21}, "CAP_21"},
	} {
		if got := Names(c.caps); got != c.want {
			t.Errorf("Names(%v) = %q, want %q", c.caps, got, c.want)
		}
	}
}
