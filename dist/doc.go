//go:build linux

// Package dist holds tapwire's packaging, and no code: deb.sh builds the
// Debian package (dist/out/tapwire_VERSION_ARCH.deb) with nfpm from
// nfpm.yaml, with the unit in systemd/ and the maintainer scripts in deb/.
//
// Its test (deb_test.go, root only) builds the package, reads its contents
// and metadata, installs it with dpkg, runs the installed commands and
// purges it, checking that nothing of it is left.
package dist
