package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the version a packager stamps into the binary at link time,
// as dist/deb.sh does:
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/tapwire
//
// Empty (go build, go install) means the version Go recorded, the module's
// version from go install or the VCS tag, is the one reported. It is set
// by the linker only, never assigned.
var version string

func versionCommand() *command {
	return &command{
		name:  "version",
		short: "print the version, VCS revision and Go version of the build",
		long: `Prints the version of the tapwire module, the VCS revision it was built
from, the revision's time and whether the tree had changes, and the Go
version: what go version -m shows of the binary. A build that recorded no
VCS information (go run, go test, -buildvcs=false) says unknown. A
packaged build (dist/deb.sh) reports the package's version.
`,
		run: func(ctx context.Context, inv *invocation) error { return runVersion(inv.stdout) },
	}
}

func runVersion(stdout io.Writer) error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	fmt.Fprint(stdout, versionText(bi, version))
	return nil
}

// versionText describes the build recorded in bi (nil: none), with the
// values go version -m shows: the main module's path and version, the VCS
// revision, its time and whether the tree was modified, and the Go version.
// What is not recorded is "unknown": go run and go test, and builds with
// -buildvcs=false, record no VCS information. A stamped version (not
// empty) is reported instead of the module's.
func versionText(bi *debug.BuildInfo, stamped string) string {
	const unknown = "unknown"
	version, module, goVersion := unknown, unknown, runtime.Version()
	vcs := map[string]string{"vcs.revision": unknown, "vcs.time": unknown, "vcs.modified": unknown}
	recorded := false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			if _, ok := vcs[s.Key]; ok && s.Value != "" {
				vcs[s.Key] = s.Value
				recorded = true
			}
		}
	}
	if stamped != "" {
		version = stamped
	}
	revision := vcs["vcs.revision"]
	if !recorded {
		revision += " (no VCS information: go run, go test and -buildvcs=false record none)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tapwire %s\n", version)
	for _, l := range [][2]string{
		{"module", module},
		{"revision", revision},
		{"time", vcs["vcs.time"]},
		{"modified", vcs["vcs.modified"]},
		{"go", goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH},
	} {
		fmt.Fprintf(&b, "  %-9s %s\n", l[0], l[1])
	}
	return b.String()
}
