#!/usr/bin/env bash
# Runs every tapwire test. As root (CI runs as root) the tests that create
# network namespaces and TUN/TAP devices run too; without root they skip.
# Installs what the tests need when it is missing: Debian packages (as root)
# and the Go modules. FUZZTIME (default 20s) bounds each fuzz target's run.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

# command:package pairs the tests use
need=()
for pair in ip:iproute2 ping:iputils-ping setpriv:util-linux wg:wireguard-tools nft:nftables tshark:tshark iperf3:iperf3 busybox:busybox resolvconf:openresolv qemu-aarch64-static:qemu-user-static /usr/lib/wine/wine64:wine64 x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64-win32; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
	if [ "$(id -u)" = 0 ]; then
		echo "test.sh: installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "test.sh: missing ${need[*]}: the tests that need them will skip (run as root to install)" >&2
	fi
fi
# promtool checks the metrics the daemon serves (cmd/tapwire). Debian has it
# only in the prometheus package, whose installation would start a
# Prometheus server: promtool alone (one binary) is taken out of the package.
if ! command -v promtool >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && tmp=$(mktemp -d) && chmod 755 "$tmp" &&
		(cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; } &&
			dpkg-deb -x prometheus_*.deb pkg && install -m 755 pkg/usr/bin/promtool /usr/local/bin/promtool); then
		echo "test.sh: installed promtool from Debian's prometheus package"
	else
		echo "test.sh: no promtool: the metrics are not checked with it" >&2
	fi
	[ -z "${tmp:-}" ] || rm -rf "$tmp"
fi
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is missing: install it from go.dev/dl (see go.mod for the version)" >&2
	exit 1
fi
[ "$(id -u)" = 0 ] || echo "test.sh: not root: the device and namespace tests will skip" >&2

go mod download
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
# The other systems: every package (tests included) builds and vets for
# macOS, Windows and FreeBSD, and Linux on arm64. Their devices' runtime
# tests run on such hosts (README: what was verified where).
for target in linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 freebsd/amd64 freebsd/arm64; do
	echo "test.sh: build and vet for $target"
	GOOS=${target%/*} GOARCH=${target#*/} go build ./...
	GOOS=${target%/*} GOARCH=${target#*/} go vet ./...
done
# The pure packages' tests on linux/arm64, under qemu-user-static, as an
# unprivileged user (nobody), so that their tests of the kernel skip.
# The engine's allocation counts are checked natively above: under
# emulation its other goroutines' allocations land in the count
# (AllocsPerRun reads the process's), so those tests skip there.
emuskip='^TestMemHubFloodLimitAllocs$'
if command -v qemu-aarch64-static >/dev/null 2>&1; then
	qdir=$(mktemp -d)
	chmod 755 "$qdir"
	for pkg in packet protocol route l2switch fragment config devconf uapi wgquick tun responder tunnel metrics; do
		GOARCH=arm64 go test -c -o "$qdir/$(basename $pkg).test" ./$pkg
		echo "test.sh: linux/arm64 (qemu) $pkg"
		if [ "$(id -u)" = 0 ]; then
			(cd $pkg && setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
				env HOME=/tmp TMPDIR=/tmp qemu-aarch64-static "$qdir/$(basename $pkg).test" -test.count=1 -test.timeout=10m -test.skip "$emuskip")
		else
			(cd $pkg && qemu-aarch64-static "$qdir/$(basename $pkg).test" -test.count=1 -test.timeout=10m -test.skip "$emuskip")
		fi
	done
	rm -rf "$qdir"
else
	echo "test.sh: no qemu-aarch64-static: the linux/arm64 tests do not run" >&2
fi
# The same on windows/amd64, under wine. Go >= 1.22 starts by loading
# bcryptprimitives.dll (ProcessPrng), which Debian's wine 8.0 lacks: a
# stand-in on BCryptGenRandom (.ci/wine) is built with mingw-w64 into a
# throw-away wine prefix. Wine 8 cannot delete files the way Go's
# os.RemoveAll asks Windows to (POSIX semantics), so the tests whose
# temporary files that fails on skip there, with the allocation count.
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
if [ -x "$wine" ] && command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
	wdir=$(mktemp -d)
	export WINEPREFIX="$wdir/prefix" WINEDEBUG=-all
	"$wine" wineboot --init >/dev/null 2>&1 || true
	if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ] ||
		! x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
			.ci/wine/bcryptprimitives.c .ci/wine/bcryptprimitives.def -lbcrypt; then
		echo "test.sh: wine could not be set up: the windows/amd64 tests do not run" >&2
		wpkgs=""
	else
		wpkgs="packet protocol route l2switch fragment config devconf uapi wgquick tun responder tunnel metrics cmd/tapwire"
	fi
	for pkg in $wpkgs; do
		GOOS=windows GOARCH=amd64 go test -c -o "$wdir/$(basename $pkg).test.exe" ./$pkg
		echo "test.sh: windows/amd64 (wine) $pkg"
		(cd $pkg && "$wine" "$wdir/$(basename $pkg).test.exe" -test.count=1 -test.timeout=10m -test.skip '^(TestMemHubFloodLimitAllocs|TestIPRoute2Tables|TestConfigPath)$')
	done
	"$(dirname "$wine")/wineserver" -k 2>/dev/null || true
	unset WINEPREFIX WINEDEBUG
	rm -rf "$wdir"
else
	echo "test.sh: no wine64 or mingw-w64: the windows/amd64 tests do not run" >&2
fi
# Packages in parallel: the engine's logic runs in memory on an injected
# clock (internal/memnet), so load does not decide a test's outcome; the
# namespace tests that remain wait on events, not on time.
go test -count=1 -timeout 20m ./...
# The engine under the race detector (its allocation counts only logged).
go test -race -count=1 -timeout 20m ./tunnel
# The privilege drop as the Debian package builds it (no cgo: libcap's
# psx on syscall.AllThreadsSyscall instead of its C half).
CGO_ENABLED=0 go test -count=1 ./internal/privdrop
# Byte-level interop of the protocol package with wireguard-go's (its own
# module, so that tapwire itself does not depend on wireguard-go).
(cd protocol/interop && go test -count=1 ./...)

# Every fuzz target, for a bounded time each, from its checked-in corpus.
fuzztime=${FUZZTIME:-20s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target ($fuzztime)"
		log=$(mktemp)
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
			cat "$log"
			# A finding is written to testdata/fuzz/$target; anything else
			# (a worker killed on a loaded machine) gets one more try.
			if [ -n "$(git status --porcelain "$dir/testdata/fuzz/$target" 2>/dev/null)" ] ||
				! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
				cat "$log"
				rm -f "$log"
				echo "test.sh: fuzz target $target failed" >&2
				exit 1
			fi
		fi
		rm -f "$log"
	done
done
echo "test.sh: all tests passed"
