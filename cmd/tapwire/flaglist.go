package main

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// helpWidth is the width help text is wrapped to.
const helpWidth = 80

// flagEntry is one entry of a flag listing: a flag with its aliases.
type flagEntry struct {
	names []string // one-letter names first: "f", "foreground"
	arg   string   // the name of the flag's value, such as "FILE"; "" for a bool flag
	usage string   // the usage text, its `backquotes` taken out
	def   string   // the default, "" when it is the zero value
}

// spelling is a flag as it is typed: "-f" for a one-letter name,
// "--foreground" for a longer one. The flag package takes both - and --.
func spelling(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagEntries returns the flags of fs in order of their first name. Flags
// that set the same variable (fs.BoolVar(&fg, "f", ...) and
// fs.BoolVar(&fg, "foreground", ...)) are aliases: one entry, whose usage
// is the first name's.
func flagEntries(fs *flag.FlagSet) []flagEntry {
	var groups [][]*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		for i, g := range groups {
			if sameValue(g[0].Value, f.Value) {
				groups[i] = append(g, f)
				return
			}
		}
		groups = append(groups, []*flag.Flag{f})
	})
	entries := make([]flagEntry, 0, len(groups))
	for _, g := range groups {
		slices.SortStableFunc(g, func(a, b *flag.Flag) int {
			return min(len(a.Name), 2) - min(len(b.Name), 2)
		})
		arg, usage := flag.UnquoteUsage(g[0])
		e := flagEntry{arg: arg, usage: usage}
		if !isZeroDefault(g[0]) {
			e.def = g[0].DefValue
		}
		for _, f := range g {
			e.names = append(e.names, f.Name)
		}
		entries = append(entries, e)
	}
	slices.SortStableFunc(entries, func(a, b flagEntry) int { return strings.Compare(a.names[0], b.names[0]) })
	return entries
}

// sameValue reports whether a and b are one flag value: the same pointer
// behind two names.
func sameValue(a, b flag.Value) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// isZeroDefault reports whether f's default is the zero value of its type,
// which a listing does not show, as flag.PrintDefaults does not.
func isZeroDefault(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	if t.Kind() != reflect.Pointer {
		return f.DefValue == ""
	}
	zero, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	return ok && f.DefValue == zero.String()
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// writeFlags writes the flags of fs as a listing, like flag.PrintDefaults
// but with the spellings people type (-f, --mode), aliases on one line, and
// the usage wrapped in a column:
//
//	-f, --foreground  stay in the foreground (log to stderr) instead of
//	                  going into the background
//	--mode tun|tap    make the new device ... (default tun)
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	var rows [][2]string
	for _, e := range flagEntries(fs) {
		spelled := make([]string, len(e.names))
		for j, n := range e.names {
			spelled[j] = spelling(n)
		}
		left := strings.Join(spelled, ", ")
		if e.arg != "" {
			left += " " + e.arg
		}
		usage := e.usage
		if e.def != "" {
			usage += fmt.Sprintf(" (default %s)", e.def)
		}
		rows = append(rows, [2]string{left, usage})
	}
	writeColumns(w, rows)
}

// writeColumns writes rows of two columns, indented by two spaces: the
// left one (a flag, a command), and text wrapped to helpWidth in a column
// just right of the widest left one. A left one too wide for that has the
// text on the lines below it.
func writeColumns(w io.Writer, rows [][2]string) {
	const indent, maxColumn = 2, 26
	column := 0
	for _, r := range rows {
		if n := indent + len(r[0]) + 2; n <= maxColumn {
			column = max(column, n)
		}
	}
	if column == 0 {
		column = maxColumn
	}
	pad := strings.Repeat(" ", column)
	for _, r := range rows {
		left := strings.Repeat(" ", indent) + r[0]
		lines := wrap(r[1], helpWidth-column)
		if len(left)+2 > column || len(lines) == 0 {
			fmt.Fprintln(w, left)
		} else {
			fmt.Fprintf(w, "%-*s%s\n", column, left, lines[0])
			lines = lines[1:]
		}
		for _, l := range lines {
			fmt.Fprintln(w, pad+l)
		}
	}
}

// wrap breaks text into lines of at most width bytes at spaces; a word
// longer than width has a line of its own.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
