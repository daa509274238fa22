// Package archtest holds tests of the module's structure, and no code.
// TestLayers reads the layer table of docs/ARCHITECTURE.md and the module's
// packages (`go list`), and fails when a package imports one that is not
// in a row below its own, when a package is missing from the table, or
// when a row names no package.
//
// The rule covers a package's own files and its internal tests (_test.go
// files of the same package), which are compiled into it. External tests
// (package foo_test) are exempt: such a package can import anything,
// nothing can import it, and it is where tests that drive a package through
// the layers above it belong (tunnel's tests serve the UAPI, say).
package archtest
