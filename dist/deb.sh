#!/usr/bin/env bash
# Builds tapwire's Debian package: dist/out/tapwire_VERSION_ARCH.deb.
#
#   ./dist/deb.sh                    # amd64, the version from git
#   ./dist/deb.sh --arch arm64       # cross-built (the binaries need no cgo)
#   ./dist/deb.sh --version 1.2.3 --out /tmp/pkg
#   sudo dpkg -i dist/out/tapwire_*.deb
#
# The package holds /usr/bin/tapwire and /usr/bin/tapwire-go (static,
# CGO_ENABLED=0, -trimpath, stripped, the version stamped in with
# -X main.version), /lib/systemd/system/tapwire@.service, the documentation
# and licences in /usr/share/doc/tapwire, and /etc/tapwire (mode 0700).
# nfpm (github.com/goreleaser/nfpm/v2) makes the .deb from dist/nfpm.yaml,
# run with go run at a fixed version: nothing to install, go.mod untouched.
#
# The version: --version, else the last tag (v1.2.3 -> 1.2.3; commits after
# it -> 1.2.3+git<date>.<sha>), else 0.0.0~git<date>.<sha> from the commit's
# date; ".dirty" is added when the tree has uncommitted changes. Without git
# it is 0.0.0~unknown. The maintainer is "$DEBFULLNAME <$DEBEMAIL>" when
# both are set. lintian checks the package when it is installed.
set -euo pipefail

readonly nfpm_module=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

usage() {
	sed -n '2,20s/^# \{0,1\}//p' "$0"
	echo "Options: -a|--arch amd64|arm64  -v|--version VERSION  -o|--out DIR  -h|--help"
}

die() {
	echo "deb.sh: $*" >&2
	exit 1
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=amd64
version=
out=$root/dist/out
while [ $# -gt 0 ]; do
	case "$1" in
	-a | --arch)
		[ $# -ge 2 ] || die "$1 needs a value: amd64 or arm64"
		arch=$2
		shift 2
		;;
	-v | --version)
		[ $# -ge 2 ] || die "$1 needs a value, e.g. 1.2.3"
		version=$2
		shift 2
		;;
	-o | --out)
		[ $# -ge 2 ] || die "$1 needs a directory"
		out=$2
		shift 2
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
done

case "$arch" in
amd64 | arm64) ;; # GOARCH and the Debian architecture have the same name
*) die "unsupported architecture $arch: want amd64 or arm64" ;;
esac

# git_version prints the package version git describes (see the top).
git_version() {
	if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
		echo 0.0.0~unknown
		return
	fi
	local sha date tag v
	sha=$(git -C "$root" rev-parse --short=7 HEAD)
	date=$(TZ=UTC git -C "$root" log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
	if tag=$(git -C "$root" describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); then
		v=${tag#v}
		v=${v//-/\~} # v1.2.3-rc1 -> 1.2.3~rc1: sorts before 1.2.3
		if [ "$(git -C "$root" rev-list --count "$tag..HEAD")" != 0 ]; then
			v=$v+git$date.$sha
		fi
	else
		v=0.0.0~git$date.$sha
	fi
	if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		v=$v.dirty
	fi
	echo "$v"
}

if [ -z "$version" ]; then
	version=$(git_version)
fi
# What dpkg accepts: a digit first, then alphanumerics and . + ~ - :
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~:-]*$ ]] || die "version $version is not a Debian version (it must start with a digit)"

if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
	maintainer="$DEBFULLNAME <$DEBEMAIL>"
else
	maintainer="The tapwire authors <tapwire@users.noreply.github.com>"
fi

# The files' times in the package: the commit's, so that a rebuild of the
# same commit makes the same package.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct HEAD 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

stage=$(mktemp -d "${TMPDIR:-/tmp}/tapwire-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/doc" "$out"
out=$(cd "$out" && pwd)

cd "$root"
# The VCS revision goes into the binaries (tapwire version shows it) when
# git can read the tree; not from a tarball, or a tree git refuses.
buildvcs=false
if git status --porcelain >/dev/null 2>&1; then
	buildvcs=auto
fi
echo "deb.sh: building tapwire and tapwire-go $version for linux/$arch"
for cmd in tapwire tapwire-go; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=$buildvcs \
		-ldflags "-s -w -X main.version=$version" -o "$stage/$cmd" "./cmd/$cmd"
done

# The documentation, compressed as Debian wants files over 4 kB.
for f in README.md BENCHMARKS.md docs/ARCHITECTURE.md; do
	gz=$stage/doc/${f##*/}.gz
	gzip -9n <"$f" >"$gz"
done
# The copyright file: tapwire's licence, then the licences of the modules
# linked into the (static) binaries.
{
	cat <<-EOF
		tapwire $version, https://github.com/tapwire/tapwire

		The programs in this package are tapwire's (below) linked statically with
		the Go modules listed after it, each under its own licence.

	EOF
	cat LICENSE
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go list -deps \
		-f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' \
		./cmd/tapwire ./cmd/tapwire-go | sort -u |
		while read -r path modversion dir; do
			printf '\n-------------------------------------------------------------------------------\n%s %s\n\n' "$path" "$modversion"
			lic=$(find "$dir" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'COPYING*' \) | sort | head -n 1)
			[ -n "$lic" ] || die "no licence file in $dir ($path)"
			cat "$lic"
		done
	printf '\n-------------------------------------------------------------------------------\nThe Go standard library and runtime (%s)\n\n' "$(go env GOVERSION)"
	cat "$(go env GOROOT)/LICENSE"
} >"$stage/doc/copyright"
# A Debian changelog: which revision this is.
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
{
	echo "tapwire ($version) unstable; urgency=medium"
	echo
	echo "  * Built by dist/deb.sh from revision $revision."
	echo
	echo " -- $maintainer  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$stage/doc/changelog.Debian.gz"

deb=$out/tapwire_${version}_$arch.deb
rm -f "$deb"
TAPWIRE_STAGE=$stage TAPWIRE_ARCH=$arch TAPWIRE_VERSION=$version TAPWIRE_MAINTAINER=$maintainer \
	go run "$nfpm_module" package --packager deb --config dist/nfpm.yaml --target "$deb"
[ -f "$deb" ] || die "nfpm made no $deb"

if command -v lintian >/dev/null; then
	echo "deb.sh: lintian $deb"
	lintian --fail-on error "$deb"
fi
echo "deb.sh: built $deb"
