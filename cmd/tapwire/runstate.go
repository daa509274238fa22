package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/netconf"
	"github.com/tapwire/tapwire/uapi"
	"github.com/tapwire/tapwire/wgquick"
)

// While tapwire up runs an interface NAME it keeps, in runDir():
//
//	NAME.pid    its process id, one line, as pid files are
//	NAME.state  runState as JSON: which process that is, told apart from
//	            one that gets the same pid later, and what it has left on
//	            the host that would outlive it
//
// It writes both before it changes anything and removes them once it has
// taken everything back. When they are still there and their process is
// not running tapwire up of NAME, the process was killed (kill -9, the OOM
// killer): tapwire up and tapwire down then remove them and take back what
// the state says was left, and never signal the process the pid file
// names.

// runState is the content of NAME.state.
type runState struct {
	PID int `json:"pid"`
	// StartTime is when the process started, in clock ticks after boot
	// (field 22 of /proc/PID/stat).
	StartTime uint64 `json:"start_time"`
	// NetNS is the identity (device and inode) of the process's network
	// namespace: leftovers are taken back only from the same one.
	NetNS string `json:"netns"`
	// Config is the file it brought up.
	Config string `json:"config"`
	// Leftovers are what taking the interface down would take back that
	// does not go with the process (wgquick.Leftovers).
	Leftovers wgquick.Leftovers `json:"leftovers"`
	// Privileges are what it kept once the interface was up, as tapwire
	// status shows them (see privileges.go); "" until then.
	Privileges string `json:"privileges,omitempty"`
}

func pidPath(name string) string   { return filepath.Join(runDir(), name+".pid") }
func statePath(name string) string { return filepath.Join(runDir(), name+".state") }

// newRunState describes this process bringing up the file path.
func newRunState(path string) (*runState, error) {
	_, start, err := procStat(os.Getpid())
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &runState{PID: os.Getpid(), StartTime: start, NetNS: netnsID("self"), Config: path}, nil
}

// writeRunFiles writes NAME.state and NAME.pid for st.
func writeRunFiles(name string, st *runState) error {
	if err := os.MkdirAll(runDir(), 0o755); err != nil {
		return err
	}
	if err := writeState(name, st); err != nil {
		return err
	}
	if err := writeFileAtomic(pidPath(name), []byte(strconv.Itoa(st.PID)+"\n")); err != nil {
		return err
	}
	return os.Chmod(pidPath(name), 0o644) // as pid files are: anyone may read it
}

// writeState writes NAME.state for st.
func writeState(name string, st *runState) error {
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(statePath(name), append(b, '\n'))
}

// lockRun takes NAME.lock, an exclusive flock held until unlock (or the
// process's end): one tapwire up of an interface at a time. unlock removes
// the file.
func lockRun(name string) (unlock func(), err error) {
	if err := os.MkdirAll(runDir(), 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(runDir(), name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%s is being brought up, or is up, by another tapwire up (%s is locked)", name, path)
		}
		return nil, fmt.Errorf("%s: lock %s: %w", name, path, err)
	}
	return func() {
		os.Remove(path) // while still holding it
		f.Close()
	}, nil
}

// removeRunFiles removes NAME.pid and NAME.state.
func removeRunFiles(name string) {
	os.Remove(pidPath(name))
	os.Remove(statePath(name))
}

// runFiles is what a look at NAME.pid and NAME.state found.
type runFiles struct {
	pid   int       // the pid they name; 0: no pid file nor state, -1: a pid file without one
	state *runState // nil: none, or unreadable
	live  bool      // pid is tapwire up of NAME, the one that wrote them
	why   string    // when not live: why it is not
}

// lookRunFiles reads NAME.pid and NAME.state and checks that the process
// they name is the tapwire up of NAME that wrote them: the same start time
// as the state records, and a command line of tapwire up with a file of
// that name. A process that has the pid now is anything else.
func lookRunFiles(name string) runFiles {
	var rf runFiles
	if b, err := os.ReadFile(statePath(name)); err == nil {
		var st runState
		if json.Unmarshal(b, &st) == nil && st.PID > 0 {
			rf.state, rf.pid = &st, st.PID
		}
	}
	if b, err := os.ReadFile(pidPath(name)); err == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		switch {
		case err != nil || pid <= 0:
			if rf.state == nil { // nothing names a process
				rf.pid, rf.why = -1, "it holds no process id"
				return rf
			}
		case rf.state != nil && rf.state.PID != pid:
			rf.state, rf.pid = nil, pid // another process's: its start time says nothing
		default:
			rf.pid = pid
		}
	}
	if rf.pid == 0 {
		return rf
	}
	rf.live, rf.why = isUpOf(rf.pid, name, rf.state)
	return rf
}

// isUpOf reports whether process pid is tapwire up of the interface name;
// if not, why. With st (the state it wrote) the process must have started
// when st says; without, its command line must be tapwire up of a file for
// name.
func isUpOf(pid int, name string, st *runState) (bool, string) {
	state, start, err := procStat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false, fmt.Sprintf("process %d is gone", pid)
	}
	if st != nil {
		if st.StartTime != start {
			return false, fmt.Sprintf("process %d is another process than the one that wrote it (it started later)", pid)
		}
		return true, ""
	}
	// Without a state file (an older tapwire's) the command line alone
	// could name another program's "up wg0.conf" (wg-quick's): the
	// executable must be tapwire's too.
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil || !strings.HasPrefix(filepath.Base(strings.TrimSuffix(exe, " (deleted)")), "tapwire") {
		return false, fmt.Sprintf("process %d is not tapwire (it is %s)", pid, exe)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false, fmt.Sprintf("process %d is gone", pid)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if !upArgsName(args, name) {
		return false, fmt.Sprintf("process %d is not tapwire up of %s (it is %q)", pid, name, strings.Join(args, " "))
	}
	return true, ""
}

// upArgsName reports whether the command line args is "PROGRAM ... up ...
// FILE ...", with a FILE for the interface name, or the name itself.
func upArgsName(args []string, name string) bool {
	if len(args) < 3 {
		return false
	}
	i := slices.Index(args[1:], "up")
	if i < 0 {
		return false
	}
	for _, a := range args[i+2:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if a == name {
			return true
		}
		if n, err := config.InterfaceName(a); err == nil && n == name {
			return true
		}
	}
	return false
}

// cleanStale removes the run files of name whose process is gone (rf not
// live), and takes back from the host what its state says the process
// left, if this process is in the same network namespace. It says what it
// does to w, each line after prefix, and reports whether it found anything.
func cleanStale(name string, rf runFiles, w io.Writer, prefix string) bool {
	found := false
	if rf.pid != 0 {
		found = true
		what := pidPath(name)
		if _, err := os.Stat(what); errors.Is(err, fs.ErrNotExist) {
			what = statePath(name)
		}
		fmt.Fprintf(w, "%sremoving the stale %s: %s\n", prefix, what, rf.why)
	}
	if st := rf.state; st != nil && !st.Leftovers.Empty() {
		if st.NetNS != "" && st.NetNS != netnsID("self") {
			fmt.Fprintf(w, "%s%s left by process %d are in another network namespace: not taken back from this one\n", prefix, leftoverWords(st.Leftovers), st.PID)
		} else if nc, err := netconf.Open(""); err != nil {
			fmt.Fprintf(w, "%scannot take back what process %d left: %v\n", prefix, st.PID, err)
		} else {
			fmt.Fprintf(w, "%staking back what process %d left: %s\n", prefix, st.PID, leftoverWords(st.Leftovers))
			log := slog.New(slog.NewTextHandler(prefixWriter{w, prefix}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			(&wgquick.Runner{Net: nc, Log: log}).Clean(st.Leftovers)
			nc.Close()
		}
	}
	removeRunFiles(name)
	// A live socket is another implementation's (tapwire-go): it stays.
	if removed, _ := uapi.RemoveStale(name); removed {
		found = true
		fmt.Fprintf(w, "%sremoved the stale socket %s\n", prefix, uapi.SocketPath(name))
	}
	return found
}

// leftoverWords says what l holds, as "2 policy rules, 1 address on br0,
// DNS settings".
func leftoverWords(l wgquick.Leftovers) string {
	var parts []string
	plural := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	}
	if n := len(l.Rules); n > 0 {
		parts = append(parts, plural(n, "policy rule", "policy rules"))
	}
	if n := len(l.Addrs); n > 0 {
		parts = append(parts, plural(n, "address on "+l.Addrs[0].Link, "addresses on "+l.Addrs[0].Link))
	}
	if l.DNS != nil {
		parts = append(parts, "DNS settings")
	}
	return strings.Join(parts, ", ")
}

// prefixWriter writes each line after a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitAfterSeq(string(b), "\n") {
		if line != "" {
			if _, err := io.WriteString(p.w, p.prefix+line); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}
