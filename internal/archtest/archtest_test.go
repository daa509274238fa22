package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLayers holds the module to docs/ARCHITECTURE.md's table (see the
// package documentation).
func TestLayers(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command: %v", err)
	}
	var mod struct{ Path, Dir string }
	if err := json.Unmarshal(run(t, goTool, ".", "list", "-m", "-json"), &mod); err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	doc, err := os.ReadFile(filepath.Join(mod.Dir, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := parseLayers(string(doc))
	if err != nil {
		t.Fatalf("docs/ARCHITECTURE.md: %v", err)
	}
	out := run(t, goTool, mod.Dir, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", "./...")
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < len(layers) {
		t.Fatalf("go list found %d packages, fewer than the table's %d rows", len(pkgs), len(layers))
	}
	for _, p := range checkLayers(layers, mod.Path, pkgs) {
		t.Errorf("docs/ARCHITECTURE.md: %s", p)
	}
}

// run runs the go command in dir and returns its standard output.
func run(t *testing.T, goTool, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(goTool, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}
