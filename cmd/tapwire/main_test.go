//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/nstest"
)

func TestTunnelDemo(t *testing.T) {
	nstest.RequireRoot(t)
	var out bytes.Buffer
	name := fmt.Sprintf("twt-tdemo-%d", os.Getpid())
	err := tunnelDemo(context.Background(), &out, demoOptions{Count: 3, Namespace: name, Interval: 10e6, Duration: time.Second})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"TUN mode", "PING 198.51.100.2", "3 sent, 3 answered, 0 lost", "handshake  completed",
		"Mbit/s", "all of it received", "TAP mode", "PING 203.0.113.2", "switch     tapwire-tap learned 2 MACs",
		"namespaces " + name + "-a and " + name + "-b deleted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "all of it received"); n != 2 {
		t.Errorf("%d throughput runs completed, want 2 (TUN and TAP):\n%s", n, out.String())
	}
	for _, ns := range []string{name + "-a", name + "-b"} {
		if _, err := os.Stat("/var/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("demo left namespace %s behind: %v", ns, err)
		}
	}
}

func TestEchoDemo(t *testing.T) {
	nstest.RequireRoot(t)
	var out bytes.Buffer
	name := fmt.Sprintf("twt-demo-%d", os.Getpid())
	err := echoDemo(context.Background(), &out, demoOptions{Count: 3, Namespace: name, Interval: 10e6})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"PING 192.0.2.2", "PING 2001:db8::2", "3 sent, 3 answered, 0 lost",
		"the responder answered 6 echo requests", "namespace " + name + " deleted",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat("/var/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("demo left its namespace behind: %v", err)
	}
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 0, "Commands:"},
		{[]string{"help"}, 0, "demo"},
		{[]string{"nonsense"}, 2, "unknown command"},
		{[]string{"demo", "-count", "0"}, 2, "--count must be"},
		{[]string{"demo", "-seconds", "100"}, 2, "--seconds must be"},
		{[]string{"demo", "extra"}, 2, "unexpected argument"},
		{[]string{"demo", "-h"}, 0, "Usage: tapwire demo"},
		{[]string{"help", "demo"}, 0, "Usage: tapwire demo"},
		{[]string{"version"}, 0, "tapwire "},
	} {
		var out bytes.Buffer
		code := run(context.Background(), &out, &out, tc.args)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("tapwire %v: exit %d, want %d; output lacks %q?\n%s", tc.args, code, tc.code, tc.out, out.String())
		}
	}
}

func TestVersionText(t *testing.T) {
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	full := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/tapwire/tapwire/cmd/tapwire",
		Main:      debug.Module{Path: "github.com/tapwire/tapwire", Version: "v0.0.0-20261206131803-28173e9b8faa+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "-compiler", Value: "gc"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "28173e9b8faa44d26a9bc5ebfe9ccfce153198af"},
			{Key: "vcs.time", Value: "2026-12-06T13:18:03Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	noVCS := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tapwire/tapwire", Version: "(devel)"}}
	for _, tc := range []struct {
		name    string
		bi      *debug.BuildInfo
		stamped string
		want    string
	}{
		{"go build in a checkout", full, "", "tapwire v0.0.0-20261206131803-28173e9b8faa+dirty\n" +
			"  module    github.com/tapwire/tapwire\n" +
			"  revision  28173e9b8faa44d26a9bc5ebfe9ccfce153198af\n" +
			"  time      2026-12-06T13:18:03Z\n" +
			"  modified  true\n" +
			"  go        go1.26.8" + platform},
		{"no VCS information", noVCS, "", "tapwire (devel)\n" +
			"  module    github.com/tapwire/tapwire\n" +
			"  revision  unknown (no VCS information: go run, go test and -buildvcs=false record none)\n" +
			"  time      unknown\n" +
			"  modified  unknown\n" +
			"  go        go1.26.8" + platform},
		{"no build information", nil, "", "tapwire unknown\n" +
			"  module    unknown\n" +
			"  revision  unknown (no VCS information: go run, go test and -buildvcs=false record none)\n" +
			"  time      unknown\n" +
			"  modified  unknown\n" +
			"  go        " + runtime.Version() + platform},
		{"a packaged build (dist/deb.sh)", noVCS, "0.0.0~git20261206.28173e9", "tapwire 0.0.0~git20261206.28173e9\n" +
			"  module    github.com/tapwire/tapwire\n" +
			"  revision  unknown (no VCS information: go run, go test and -buildvcs=false record none)\n" +
			"  time      unknown\n" +
			"  modified  unknown\n" +
			"  go        go1.26.8" + platform},
	} {
		if got := versionText(tc.bi, tc.stamped); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// The command itself, built by go test: the Go version is known, VCS
// information is not, and no line is left empty.
func TestVersionCommand(t *testing.T) {
	code, out := tapwire("version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "tapwire ") || strings.Contains(lines[0], "  ") {
		t.Errorf("want a first line \"tapwire VERSION\" and 5 more:\n%s", out)
	}
	wantAll(t, "tapwire version", out, "  module    github.com/tapwire/tapwire\n", "  revision  ", "  time      ", "  modified  ",
		"  go        "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) < 2 {
			t.Errorf("line %q has no value:\n%s", l, out)
		}
	}
}
