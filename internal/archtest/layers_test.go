package archtest

import (
	"bufio"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A layer is one row of the table: its packages (module-relative paths,
// possibly path.Match patterns such as examples/*) neither import each
// other nor any row above.
type layer struct {
	line     int      // in the document, from 1
	cell     string   // the package cell as written
	patterns []string // the backquoted names in the cell
}

func (l layer) String() string { return fmt.Sprintf("line %d, %s", l.line, l.cell) }

var backquoted = regexp.MustCompile("`([^`]+)`")

// parseLayers returns the rows of the first Markdown table whose first
// header cell is "package", top to bottom.
func parseLayers(doc string) ([]layer, error) {
	var layers []layer
	in := false // inside the table, past its header
	sc := bufio.NewScanner(strings.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		cells := strings.Split(line, "|")
		switch {
		case !in && len(cells) > 2 && strings.TrimSpace(cells[1]) == "package":
			in = true
		case !in:
		case !strings.HasPrefix(line, "|"):
			if len(layers) == 0 {
				return nil, fmt.Errorf("line %d: the table of packages has no rows", n)
			}
			return layers, nil
		case strings.Trim(line, "|-: ") == "":
			// the header's separator
		default:
			if len(cells) < 3 {
				return nil, fmt.Errorf("line %d: a row without cells: %q", n, line)
			}
			cell := strings.TrimSpace(cells[1])
			l := layer{line: n, cell: cell}
			for _, m := range backquoted.FindAllStringSubmatch(cell, -1) {
				if _, err := path.Match(m[1], ""); err != nil {
					return nil, fmt.Errorf("line %d: bad pattern %q: %w", n, m[1], err)
				}
				l.patterns = append(l.patterns, m[1])
			}
			if len(l.patterns) == 0 {
				return nil, fmt.Errorf("line %d: no `package` in the first cell %q", n, cell)
			}
			layers = append(layers, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !in {
		return nil, errors.New(`no table whose first column is "package"`)
	}
	return layers, nil
}

// pkg is what `go list -json` says of a package, as much as checkLayers
// needs.
type pkg struct {
	ImportPath   string
	Imports      []string // of its non-test files
	TestImports  []string // of its _test.go files in the same package
	XTestImports []string // of package ..._test: not checked
	Error        *struct{ Err string }
}

// checkLayers returns what breaks the table's rule in the packages of
// module mod, one sentence each: a package in no row or in two, a row that
// names no package, an import of a package in the same row or above.
func checkLayers(layers []layer, mod string, pkgs []pkg) []string {
	var problems []string
	rel := func(importPath string) (string, bool) {
		if importPath == mod {
			return ".", true
		}
		r, ok := strings.CutPrefix(importPath, mod+"/")
		return r, ok
	}
	used := make([]bool, len(layers))
	// rowOf returns the index of the row that lists the module-relative
	// path p, -1 if none does.
	rowOf := func(p string) int {
		for i, l := range layers {
			for _, pat := range l.patterns {
				if ok, _ := path.Match(pat, p); ok {
					return i
				}
			}
		}
		return -1
	}
	for _, p := range pkgs {
		name, ok := rel(p.ImportPath)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not a package of module %s", p.ImportPath, mod))
			continue
		}
		if p.Error != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", name, p.Error.Err))
		}
		i := rowOf(name)
		if i < 0 {
			problems = append(problems, fmt.Sprintf("%s is in no row of the table: add it in the row of its layer", name))
			continue
		}
		used[i] = true
		for j := i + 1; j < len(layers); j++ {
			if slices.ContainsFunc(layers[j].patterns, func(pat string) bool { ok, _ := path.Match(pat, name); return ok }) {
				problems = append(problems, fmt.Sprintf("%s is in two rows: %s and %s", name, layers[i], layers[j]))
			}
		}
		for _, imp := range []struct {
			who, verb string
			paths     []string
		}{{name, "imports", p.Imports}, {"the internal tests of " + name, "import", p.TestImports}} {
			for _, ip := range imp.paths {
				dep, ok := rel(ip)
				if !ok {
					continue // the standard library or another module
				}
				j := rowOf(dep)
				switch {
				case j < 0:
					// reported as a package in no row
				case j == i:
					problems = append(problems, fmt.Sprintf("%s %s %s, in its own row (%s): a row's packages may import only rows below it", imp.who, imp.verb, dep, layers[i]))
				case j < i:
					problems = append(problems, fmt.Sprintf("%s (%s) %s %s, in a row above it (%s)", imp.who, layers[i], imp.verb, dep, layers[j]))
				}
			}
		}
	}
	for i, l := range layers {
		if !used[i] {
			problems = append(problems, fmt.Sprintf("row %s names no package of the module", l))
		}
	}
	return problems
}

const sampleDoc = "# Architecture\n" +
	"\n" +
	"| package | owns |\n" +
	"|---|---|\n" +
	"| `cmd/x` | the CLI |\n" +
	"| `svc`, `daemon` | services |\n" +
	"| `examples/*` | examples |\n" +
	"| `core` | the engine, see `other` |\n" +
	"| `leaf` | values |\n" +
	"\n" +
	"| package | not this one |\n" +
	"|---|---|\n" +
	"| `ignored` | |\n"

func TestParseLayers(t *testing.T) {
	t.Parallel()
	layers, err := parseLayers(sampleDoc)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, l := range layers {
		got = append(got, l.patterns)
	}
	want := [][]string{{"cmd/x"}, {"svc", "daemon"}, {"examples/*"}, {"core"}, {"leaf"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("rows %q, want %q", got, want)
	}
	if layers[1].line != 6 || layers[1].cell != "`svc`, `daemon`" {
		t.Errorf("row 1 is %+v", layers[1])
	}
}

func TestParseLayersErrors(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		"# no table\n",
		"| name | owns |\n|---|---|\n| `a` | x |\n",
		"| package | owns |\n|---|---|\n\ntext\n",
		"| package | owns |\n|---|---|\n| a | no backquotes |\n",
		"| package | owns |\n|---|---|\n| `a[` | bad pattern |\n",
	} {
		if layers, err := parseLayers(doc); err == nil {
			t.Errorf("parseLayers(%q) = %+v, want an error", doc, layers)
		}
	}
}

func TestCheckLayers(t *testing.T) {
	t.Parallel()
	layers, err := parseLayers(sampleDoc)
	if err != nil {
		t.Fatal(err)
	}
	const mod = "example.com/m"
	p := func(name string, imports ...string) pkg {
		for i, s := range imports {
			if !strings.Contains(s, ".") && s != "fmt" {
				imports[i] = mod + "/" + s
			}
		}
		return pkg{ImportPath: mod + "/" + name, Imports: imports}
	}
	good := []pkg{
		p("cmd/x", "svc", "daemon", "core", "leaf", "fmt", "golang.org/x/sys/unix"),
		p("svc", "core", "leaf"),
		p("daemon"),
		p("examples/a", "core"),
		p("examples/b", "leaf"),
		p("core", "leaf"),
		p("leaf", "fmt"),
	}
	if got := checkLayers(layers, mod, good); len(got) != 0 {
		t.Errorf("a module that keeps the rule: %q", got)
	}
	xtest := slices.Clone(good)
	xtest[5].XTestImports = []string{mod + "/svc"} // core_test serves core through svc
	if got := checkLayers(layers, mod, xtest); len(got) != 0 {
		t.Errorf("an external test importing upwards: %q", got)
	}

	for _, tc := range []struct {
		name   string
		change func([]pkg) []pkg
		want   []string // each in one problem, in order
	}{
		{"import upwards", func(ps []pkg) []pkg {
			ps[5] = p("core", "leaf", "svc")
			return ps
		}, []string{"core (line 8, `core`) imports svc, in a row above it (line 6, `svc`, `daemon`)"}},
		{"internal test imports upwards", func(ps []pkg) []pkg {
			ps[6].TestImports = []string{mod + "/examples/a"}
			return ps
		}, []string{"the internal tests of leaf (line 9, `leaf`) import examples/a, in a row above it (line 7, `examples/*`)"}},
		{"import in the same row", func(ps []pkg) []pkg {
			ps[1] = p("svc", "daemon")
			return ps
		}, []string{"svc imports daemon, in its own row (line 6, `svc`, `daemon`)"}},
		{"same row through a pattern", func(ps []pkg) []pkg {
			ps[3] = p("examples/a", "examples/b")
			return ps
		}, []string{"examples/a imports examples/b, in its own row"}},
		{"package in no row", func(ps []pkg) []pkg {
			return append(ps, p("internal/new"), p("examples/a/deeper"))
		}, []string{"internal/new is in no row", "examples/a/deeper is in no row"}},
		{"the module's root package", func(ps []pkg) []pkg {
			return append(ps, pkg{ImportPath: mod})
		}, []string{". is in no row"}},
		{"row without a package", func(ps []pkg) []pkg {
			return slices.DeleteFunc(ps, func(q pkg) bool { return q.ImportPath == mod+"/cmd/x" })
		}, []string{"row line 5, `cmd/x` names no package"}},
		{"go list error", func(ps []pkg) []pkg {
			ps[6].Error = &struct{ Err string }{"no Go files"}
			return ps
		}, []string{"leaf: no Go files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ps := make([]pkg, len(good))
			for i, q := range good {
				ps[i] = q
				ps[i].Imports = slices.Clone(q.Imports)
			}
			got := checkLayers(layers, mod, tc.change(ps))
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d: %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q does not say %q", got[i], w)
				}
			}
		})
	}
}

func TestCheckLayersTwoRows(t *testing.T) {
	t.Parallel()
	layers, err := parseLayers("| package | owns |\n|---|---|\n| `a/*` | |\n| `a/b` | |\n")
	if err != nil {
		t.Fatal(err)
	}
	got := checkLayers(layers, "m", []pkg{{ImportPath: "m/a/b"}})
	// a/b is counted in its first row; the second then names no package.
	if len(got) != 2 || !strings.Contains(got[0], "a/b is in two rows") || !strings.Contains(got[1], "names no package") {
		t.Errorf("problems %q", got)
	}
}
