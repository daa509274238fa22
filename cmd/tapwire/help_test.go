//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// result is what one command line did: its exit status and its output,
// stdout and stderr apart.
type result struct {
	code           int
	stdout, stderr string
}

// runApart runs the CLI in-process with stdout and stderr kept apart.
func runApart(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &stdout, &stderr, args)
	return result{code, stdout.String(), stderr.String()}
}

// String is the golden form of r: the exit status, then stdout and stderr
// as txtar sections.
func (r result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exit %d\n", r.code)
	for _, s := range []struct{ name, text string }{{"stdout", r.stdout}, {"stderr", r.stderr}} {
		fmt.Fprintf(&b, "-- %s --\n%s", s.name, s.text)
		if s.text != "" && !strings.HasSuffix(s.text, "\n") {
			b.WriteString("\n(no newline at the end)\n")
		}
	}
	return b.String()
}

// commandPaths returns the names that lead to every command below root,
// parents before their subcommands: [demo] [device] [device add] ...
func commandPaths(c *command, prefix []string) [][]string {
	var paths [][]string
	for _, s := range c.subs {
		p := append(slices.Clone(prefix), s.name)
		paths = append(paths, p)
		paths = append(paths, commandPaths(s, p)...)
	}
	return paths
}

// TestHelpGolden keeps every command's help under review: a change shows
// up as a diff of testdata/help/*.txt (go test -update rewrites them). Help
// asked for goes to stdout with exit status 0, however it is asked for.
func TestHelpGolden(t *testing.T) {
	t.Parallel()
	t.Run("tapwire", func(t *testing.T) {
		t.Parallel()
		r := runApart("help")
		if r.code != 0 || r.stdout == "" || r.stderr != "" {
			t.Errorf("help: want exit 0 and stdout only:\n%s", r)
		}
		golden(t, "help/tapwire.txt", r.String())
		for _, args := range [][]string{{}, {"-h"}, {"--help"}, {"-help"}} { // tapwire alone too
			if got := runApart(args...); got != r {
				t.Errorf("tapwire %s differs from tapwire help:\n%s", strings.Join(args, " "), got)
			}
		}
	})
	for _, path := range commandPaths(rootCommand(), nil) {
		name := strings.Join(path, "-")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runApart(append([]string{"help"}, path...)...)
			if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "Usage: tapwire "+strings.Join(path, " ")) {
				t.Errorf("help %s: want exit 0 and its usage on stdout:\n%s", strings.Join(path, " "), r)
			}
			golden(t, "help/"+name+".txt", r.String())
			same := [][]string{append(slices.Clone(path), "--help"), append(slices.Clone(path), "-h")}
			if len(path) > 1 {
				// tapwire device help add
				same = append(same, append(append(slices.Clone(path[:len(path)-1]), "help"), path[len(path)-1]))
			}
			for _, args := range same {
				if got := runApart(args...); got != r {
					t.Errorf("tapwire %s differs from tapwire help %s:\n%s", strings.Join(args, " "), strings.Join(path, " "), got)
				}
			}
		})
	}
}

// TestUsageGolden: mistakes on the command line go to stderr with exit
// status 2, and nothing to stdout. None of these reaches the system.
func TestUsageGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{

		{"usage-unknown-command", []string{"nonsense"}},
		{"usage-help-unknown-command", []string{"help", "nonsense"}},
		{"usage-device-no-command", []string{"device"}},
		{"usage-device-unknown-command", []string{"device", "nonsense"}},
		{"usage-unknown-flag", []string{"up", "--nonsense", "wg0.conf"}},
		{"usage-unknown-short-flag", []string{"capture", "-x"}},
		{"usage-flag-without-value", []string{"capture", "-w"}},
		{"usage-bad-flag-value", []string{"demo", "--count", "many"}},
		{"usage-value-out-of-range", []string{"demo", "--count", "0"}},
		{"usage-missing-argument", []string{"up"}},
		{"usage-missing-argument-down", []string{"down"}},
		{"usage-missing-argument-device-del", []string{"device", "del", "--netns", "nonexistent"}},
		{"usage-unexpected-argument", []string{"genkey", "extra"}},
		{"usage-too-many-arguments", []string{"up", "a.conf", "-f", "b.conf"}},
		{"usage-bad-log-format", []string{"up", "--log-format", "xml", "nonexistent.conf"}},
		{"usage-bad-log-level", []string{"up", "-f", "--log-level", "loud", "nonexistent.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runApart(tc.args...)
			if r.code != 2 || r.stdout != "" || r.stderr == "" {
				t.Errorf("tapwire %s: want exit 2 and stderr only:\n%s", strings.Join(tc.args, " "), r)
			}
			golden(t, "help/"+tc.name+".txt", r.String())
		})
	}
}

// flagToken finds what looks like a flag in help text: -x or --name after
// a space, a bracket, a parenthesis or a bar.
var flagToken = regexp.MustCompile(`(?:^|[\s\[(|])(--?)([a-z][a-z0-9-]*)`)

// TestHelpSpelling: every command's synopsis names each of its flags, and
// its synopsis and long help spell them as the listing does: -x for one
// letter, --name for more. A parent's text may name its subcommands' flags.
func TestHelpSpelling(t *testing.T) {
	t.Parallel()
	var check func(path []*command)
	check = func(path []*command) {
		c := path[len(path)-1]
		defined := map[string]bool{}
		for _, p := range append([][]*command{path}, subPaths(path)...) {
			newFlagSet(p).VisitAll(func(f *flag.Flag) { defined[f.Name] = true })
		}
		name := pathName(path)
		inSynopsis := map[string]bool{}
		for _, m := range flagToken.FindAllStringSubmatch(c.usage, -1) {
			inSynopsis[m[2]] = true
		}
		newFlagSet(path).VisitAll(func(f *flag.Flag) {
			if !inSynopsis[f.Name] {
				t.Errorf("%s: the synopsis %q lacks %s", name, c.usage, spelling(f.Name))
			}
		})
		for what, text := range map[string]string{"synopsis": c.usage, "help": c.long} {
			for _, m := range flagToken.FindAllStringSubmatch(text, -1) {
				dashes, flagName := m[1], m[2]
				switch {
				case dashes == "--" && !defined[flagName]:
					t.Errorf("%s: the %s names --%s, which is not a flag of it", name, what, flagName)
				case defined[flagName] && dashes+flagName != spelling(flagName):
					t.Errorf("%s: the %s spells %s%s, the listing %s", name, what, dashes, flagName, spelling(flagName))
				}
			}
		}
		for _, s := range c.subs {
			check(append(slices.Clone(path), s))
		}
	}
	check([]*command{rootCommand()})
}

// subPaths returns the paths to every command below the last of path.
func subPaths(path []*command) [][]*command {
	var paths [][]*command
	for _, s := range path[len(path)-1].subs {
		p := append(slices.Clone(path), s)
		paths = append(paths, p)
		paths = append(paths, subPaths(p)...)
	}
	return paths
}

// TestHelpListing: the listing has every command once, with a summary in
// its style, and each command either runs or has subcommands. What help
// lays out itself (the listing, flag listings) is no wider than helpWidth.
func TestHelpListing(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, p := range append([][]*command{{rootCommand()}}, subPaths([]*command{rootCommand()})...) {
		c := p[len(p)-1]
		name := pathName(p)
		if seen[name] {
			t.Errorf("%s is there twice", name)
		}
		seen[name] = true
		if c.short == "" || strings.ContainsAny(c.short, "\n") || strings.HasSuffix(c.short, ".") {
			t.Errorf("%s: summary %q: want one line without a period", name, c.short)
		}
		if (c.run == nil) == (c.subs == nil) {
			t.Errorf("%s: want either run or subcommands", name)
		}
		var b bytes.Buffer
		writeHelp(&b, p)
		listing := ""
		for _, header := range []string{"\nCommands:\n", "\nFlags:\n"} {
			if _, after, ok := strings.Cut(b.String(), header); ok {
				listing, _, _ = strings.Cut(after, "\n\n")
			}
		}
		if listing == "" && (c.subs != nil || hasFlags(newFlagSet(p))) {
			t.Errorf("%s: help without its listing:\n%s", name, b.String())
		}
		if n := strings.Count(listing, "\n") + 1; c.subs != nil && n != len(c.subs) {
			t.Errorf("%s: %d subcommands on %d lines: a summary does not fit on its line:\n%s", name, len(c.subs), n, listing)
		}
		for l := range strings.Lines(listing) {
			if len(strings.TrimSuffix(l, "\n")) > helpWidth {
				t.Errorf("%s: listing line wider than %d: %q", name, helpWidth, l)
			}
		}
	}
}

func TestWriteFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var fg bool
	fs.BoolVar(&fg, "f", false, "stay in the foreground")
	fs.BoolVar(&fg, "foreground", false, "stay in the foreground")
	fs.String("mode", "tun", "make a `tun|tap` device")
	fs.Int("count", 0, "send `N` requests")
	fs.Duration("wait", time.Second, "wait this long")
	fs.Func("each", "call a function for `VALUE`, which is a long description that needs to be wrapped onto a second line", func(string) error { return nil })
	fs.String("a-rather-long-flag-name", "", "its `VALUE` goes under it")
	var b bytes.Buffer
	writeFlags(&b, fs)
	want := `  --a-rather-long-flag-name VALUE
                    its VALUE goes under it
  --count N         send N requests
  --each VALUE      call a function for VALUE, which is a long description that
                    needs to be wrapped onto a second line
  -f, --foreground  stay in the foreground
  --mode tun|tap    make a tun|tap device (default tun)
  --wait duration   wait this long (default 1s)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
		ns   string
		err  string
	}{
		{args: nil},
		{args: []string{"a", "--json", "b", "--netns", "x"}, pos: []string{"a", "b"}, json: true, ns: "x"},
		{args: []string{"--netns=x", "a"}, pos: []string{"a"}, ns: "x"},
		{args: []string{"a", "--", "--json", "-b"}, pos: []string{"a", "--json", "-b"}},
		{args: []string{"--", "--json"}, pos: []string{"--json"}},
		{args: []string{"a", "--nope"}, err: "flag provided but not defined: -nope"},
		{args: []string{"a", "--netns"}, err: "flag needs an argument: -netns"},
		{args: []string{"a", "-h"}, err: flag.ErrHelp.Error()},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		json := fs.Bool("json", false, "")
		ns := fs.String("netns", "", "")
		pos, err := parseArgs(fs, tc.args)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case !slices.Equal(pos, tc.pos) || *json != tc.json || *ns != tc.ns:
			t.Errorf("%q: positional %q, --json %v, --netns %q; want %q, %v, %q", tc.args, pos, *json, *ns, tc.pos, tc.json, tc.ns)
		}
	}
}

func TestRespell(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"flag provided but not defined: -nonsense", "flag provided but not defined: --nonsense"},
		{"flag provided but not defined: -x", "flag provided but not defined: -x"},
		{"flag needs an argument: -netns", "flag needs an argument: --netns"},
		{`invalid value "many" for flag -count: parse error`, `invalid value "many" for flag --count: parse error`},
		{`invalid value "a for flag -b" for flag -count: parse error`, `invalid value "a for flag -b" for flag --count: parse error`},
		{`invalid boolean value "maybe" for -json: parse error`, `invalid boolean value "maybe" for --json: parse error`},
		{"--count must be between 1 and 1000", "--count must be between 1 and 1000"},
		{"bad flag syntax: ---x", "bad flag syntax: ---x"},
	} {
		if got := respell(errors.New(tc.in)).Error(); got != tc.want {
			t.Errorf("respell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
