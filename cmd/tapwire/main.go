// Command tapwire is the tapwire command-line tool.
//
//	tapwire demo        an encrypted tunnel between two throw-away namespaces
//	tapwire device      add, delete, list and show TUN/TAP devices
//	tapwire doctor      diagnose TUN/TAP on this host
//	tapwire capture     capture packets crossing a TUN/TAP device
//	tapwire up|down     run a WireGuard (TUN) or Ethernet (TAP) tunnel from a wg-quick file
//	tapwire status      show tunnels: mode, peers, MAC table, drops
//	tapwire version     print the version, VCS revision and Go version of the build
//	tapwire help [CMD]  show help
//
// Each command is a [command] value built in its own file, cmd_NAME.go:
// its name, synopsis, short and long help, flags and the call into the
// code that does the work. This file dispatches to them and prints help;
// flaglist.go prints flag listings and the columns of both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// A command is one command of tapwire, or one subcommand of a command
// (device add): everything its help shows, and how it runs. Each is built
// afresh by its constructor (upCommand, ...), so the variables its flags
// set belong to one run.
type command struct {
	name    string   // as typed: "up", or "add" under device
	aliases []string // other names it answers to ("ls" for list); not listed
	// usage is the synopsis after the command's name, such as
	// "[-f|--foreground] FILE". Lines after the first are indented under
	// the first when printed.
	usage string
	short string // one line for the listing of commands, lower case, no period
	// long is the text under the flag listing: what the command does, and
	// examples. Each line ends in a newline; it may be empty.
	long string
	// flags, if not nil, defines the command's flags on fs: the variables
	// they set are the ones run reads. Help calls it too, without run.
	flags func(fs *flag.FlagSet)
	// args says whether the command takes positional arguments. Without,
	// any is a usage error before run is called.
	args bool
	// run does the work, once the flags are parsed. An error of type
	// usageError is a mistake on the command line (exit status 2), any
	// other a failure (1). Nil when the command has subcommands.
	run  func(ctx context.Context, inv *invocation) error
	subs []*command // device's add, del, list, show
	// unparsed hands run every argument as it came, flags included (the
	// Linux-only commands on other systems, which refuse whatever follows).
	unparsed bool
}

// invocation is what a command's run gets: the parsed command line and
// where to write.
type invocation struct {
	stdout, stderr io.Writer
	// args are the positional arguments: flags may come before and after
	// them, and everything after "--" is positional.
	args  []string
	flags *flag.FlagSet // parsed; Visit tells which flags were given
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// rootCommand is tapwire itself: its subcommands are the listing.
func rootCommand() *command {
	return &command{
		name:  "tapwire",
		usage: "COMMAND [flags]",
		short: "TUN/TAP devices and tunnels",
		subs: []*command{
			demoCommand(),
			deviceCommand(),
			doctorCommand(),
			captureCommand(),
			upCommand(),
			downCommand(),
			statusCommand(),
			genkeyCommand(),
			pubkeyCommand(),
			genpskCommand(),
			versionCommand(),
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit statuses, as wg(8) and the flag package use them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// run runs the command line args and returns the exit status: 0 success
// (and help asked for, which goes to stdout), 1 failure, 2 bad usage.
// Errors go to stderr.
func run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	root := rootCommand()
	return dispatch(ctx, stdout, stderr, []*command{root}, args)
}

// dispatch runs args for the last command of path, the chain of commands
// from the root that the command line named so far.
func dispatch(ctx context.Context, stdout, stderr io.Writer, path []*command, args []string) int {
	c := path[len(path)-1]
	if c.subs != nil {
		switch {
		case len(args) == 0 && len(path) == 1:
			// tapwire alone: its help, as before and as git and wg
			// give something useful for no arguments.
			writeHelp(stdout, path)
			return exitOK
		case len(args) == 0:
			// What is missing is a subcommand: the help lists them.
			writeHelp(stderr, path)
			return exitUsage
		case isHelpFlag(args[0]):
			writeHelp(stdout, path)
			return exitOK
		case args[0] == "help":
			return help(stdout, stderr, path, args[1:])
		}
		sub := c.sub(args[0])
		if sub == nil {
			return usageFailure(stderr, path, fmt.Errorf("unknown command %q", args[0]))
		}
		return dispatch(ctx, stdout, stderr, append(path, sub), args[1:])
	}

	fs := newFlagSet(path)
	var pos []string
	var err error
	if c.unparsed {
		pos = args
		if len(args) > 0 && isHelpFlag(args[0]) {
			err = flag.ErrHelp
		}
	} else {
		pos, err = parseArgs(fs, args)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, path)
		return exitOK
	case err != nil:
		return usageFailure(stderr, path, respell(err))
	case !c.args && len(pos) > 0:
		return usageFailure(stderr, path, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	err = c.run(ctx, &invocation{stdout: stdout, stderr: stderr, args: pos, flags: fs})
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return usageFailure(stderr, path, err)
	default:
		fmt.Fprintf(stderr, "%s: %v\n", pathName(path), err)
		return exitFailure
	}
}

// help prints the help of the command that names lead to from the last
// command of path: tapwire help, tapwire help device add, tapwire device
// help add. Help goes to stdout; a name that leads nowhere is a usage error.
func help(stdout, stderr io.Writer, path []*command, names []string) int {
	for _, name := range names {
		c := path[len(path)-1]
		sub := c.sub(name)
		if sub == nil {
			return usageFailure(stderr, path, fmt.Errorf("unknown command %q", name))
		}
		path = append(path, sub)
	}
	writeHelp(stdout, path)
	return exitOK
}

// sub returns the subcommand of c called name (or one of its aliases), or
// nil.
func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name || slices.Contains(s.aliases, name) {
			return s
		}
	}
	return nil
}

func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

// usageFailure prints a mistake on the command line to stderr, as go(1)
// does: the error, the command's usage, and where its help is. It returns
// exit status 2.
func usageFailure(stderr io.Writer, path []*command, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", pathName(path), err)
	writeUsage(stderr, path)
	fmt.Fprintf(stderr, "Run '%s' for details.\n", helpCommandLine(path))
	return exitUsage
}

// newFlagSet returns the flag set of the last command of path, its flags
// defined. Parse errors and -h are returned, not printed: dispatch prints
// them where they belong.
func newFlagSet(path []*command) *flag.FlagSet {
	fs := flag.NewFlagSet(pathName(path), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c := path[len(path)-1]; c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// parseArgs parses args with fs, taking flags before and after the
// positional arguments (device add tap0 --mode tap), and returns the
// positional ones. After "--" every argument is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagInError finds the flag a flag package error names, always as -name:
// "flag provided but not defined: -x", "flag needs an argument: -w",
// "invalid value "x" for flag -count: parse error".
var flagInError = regexp.MustCompile(`^(flag provided but not defined: |flag needs an argument: |invalid (?:boolean )?value ".*" for (?:flag )?)-([^\s:=]+)`)

// respell returns a flag parse error with its flag spelled as help spells
// it (--count, -w), so that no message says -count. Other errors are
// returned as they are.
func respell(err error) error {
	m := flagInError.FindStringSubmatchIndex(err.Error())
	if m == nil {
		return err
	}
	msg := err.Error()
	return errors.New(msg[:m[3]] + spelling(msg[m[4]:m[5]]) + msg[m[5]:])
}

// pathName is the command line that names the last command of path:
// "tapwire device add".
func pathName(path []*command) string {
	names := make([]string, len(path))
	for i, c := range path {
		names[i] = c.name
	}
	return strings.Join(names, " ")
}

// helpCommandLine is the command line that shows the help of the last
// command of path: "tapwire help device add".
func helpCommandLine(path []*command) string {
	if len(path) == 1 {
		return path[0].name + " help"
	}
	return path[0].name + " help " + pathName(path[1:])
}

// writeUsage writes "Usage: tapwire NAME SYNOPSIS", the synopsis's later
// lines indented under its first.
func writeUsage(w io.Writer, path []*command) {
	prefix := "Usage: " + pathName(path) + " "
	lines := strings.Split(path[len(path)-1].usage, "\n")
	fmt.Fprintln(w, strings.TrimRight(prefix+lines[0], " "))
	for _, l := range lines[1:] {
		fmt.Fprintln(w, strings.Repeat(" ", len(prefix))+l)
	}
}

// writeHelp writes the help of the last command of path: its usage, then
// its flags or its subcommands, then its long help. The root's help starts
// with what tapwire is.
func writeHelp(w io.Writer, path []*command) {
	c := path[len(path)-1]
	if len(path) == 1 {
		fmt.Fprintf(w, "%s: %s\n\n", c.name, c.short)
	}
	writeUsage(w, path)
	if c.subs != nil {
		fmt.Fprintln(w, "\nCommands:")
		rows := make([][2]string, len(c.subs))
		for i, s := range c.subs {
			rows[i] = [2]string{s.name, s.short}
		}
		writeColumns(w, rows)
	} else if fs := newFlagSet(path); hasFlags(fs) {
		fmt.Fprintln(w, "\nFlags:")
		writeFlags(w, fs)
	}
	if c.long != "" {
		fmt.Fprintf(w, "\n%s", c.long)
	}
	if c.subs != nil {
		fmt.Fprintf(w, "\nRun '%s COMMAND' for a command's flags.\n", helpCommandLine(path))
	}
}
