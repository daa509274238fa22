#!/usr/bin/env bash
# hub.sh -- a WireGuard hub with N peers: tapwire-go and wireguard-go side by
# side.  For each implementation and each N: the hub's RSS, `wg setconf` of N
# peers (apply) and `wg show dump` (show) timed, idle CPU, then real clients
# (bench/hub run) handshaking and pinging through the hub, and a restart of
# the hub with every client coming back at once (the thundering herd).
# See README.md.
#
#   ns hubb-PID: lo only.  The hub's TUN hbPID (10.96.0.1/11, fd00:7a9::1/64)
#   listens on 127.0.0.1:51820; client i sends from its own 127.16.x.y.
#
# Network rule: everything lives in one namespace this script creates per
# (implementation, N); only loopback carries traffic; every step is bounded
# by timeout; on exit, error, Ctrl-C or SIGTERM the processes started here
# are killed by pid, the namespace deleted, the UAPI socket removed.
set -euo pipefail

HUB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HUB_DIR/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../peers/lib.sh
source "$HUB_DIR/../peers/lib.sh"

# ---- defaults -------------------------------------------------------------------
OUT=/tmp/hub-bench.jsonl
COUNTS=1000           # peers of the hub, comma-separated
IMPLS=tapwire,wireguard-go
CLIENTS=""            # clients that handshake; empty: min(N, 10000)
RATE=1000             # first initiations per second of the wave
IDLE=10               # seconds of each idle CPU window
SETTLE=20             # seconds after the wave before the settled window with sessions
SEED=bench
HERD=1
RUN_TIMEOUT=150       # bench/hub run -timeout, seconds
BIN_TW=""             # empty: build ./cmd/tapwire-go
KEEP=0
NO_INSTALL=${NO_INSTALL:-0}
PORT=51820
BG_WARN=10            # % of all CPUs busy before the run counted as "disturbed"
MAX_N=1000000
HUB4=10.96.0.1/11; HUB6=fd00:7a9::1/64   # the hub's addresses in bench/hub's default layout
WGGO_VERSION=$(sed -n 's/^const wireguardGoVersion = "\(.*\)"$/\1/p' "$REPO/tunnel/harness_test.go" 2>/dev/null || true)
WGGO_VERSION=${WGGO_VERSION:-v0.0.0-20260522210424-ecfc5a8d5446}

NS=hubb-$$
IF=hb$$

usage() {
    cat <<EOF
usage: $0 [options]
  -n LIST    peers of the hub, comma-separated (default $COUNTS, max $MAX_N each)
  -i IMPLS   tapwire, wireguard-go or both, comma-separated (default $IMPLS)
  -c N       clients that handshake (default: min(peers, 10000))
  -R RATE    first initiations per second of the wave (default $RATE)
  -I SECS    idle CPU window (default $IDLE, max 300)
  -W SECS    wait after the wave's first idle window before the settled one (default $SETTLE, max 300)
  -s SEED    key seed (default $SEED)
  -H         no herd (hub restart) step
  -T SECS    bound of each client run (default $RUN_TIMEOUT, max 1800)
  -a BIN     tapwire-go binary (default: go build ./cmd/tapwire-go from $REPO)
  -o FILE    JSON lines, one per implementation and N (default $OUT)
  -k         keep the scratch dir (configs, logs, dumps, client reports) even on success
  -N         install nothing (no apt-get; wireguard-go must be built already)
Must run as root. Progress goes to stderr, the table to stdout.
The Go toolchain is \$GO, else go on PATH, else /usr/local/go/bin/go.
EOF
}

CMDLINE="$0 $*"
while getopts "n:i:c:R:I:W:s:HT:a:o:kNh" opt; do
    case $opt in
        n) COUNTS=$OPTARG ;;  i) IMPLS=$OPTARG ;;  c) CLIENTS=$OPTARG ;;  R) RATE=$OPTARG ;;
        I) IDLE=$OPTARG ;;    s) SEED=$OPTARG ;;   H) HERD=0 ;;          T) RUN_TIMEOUT=$OPTARG ;;
        a) BIN_TW=$OPTARG ;;  o) OUT=$OPTARG ;;    k) KEEP=1 ;;          N) NO_INSTALL=1 ;;
        W) SETTLE=$OPTARG ;;
        h) usage; exit 0 ;;   *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(( $# == 0 )) || { usage >&2; exit 2; }
export NO_INSTALL
IFS=, read -r -a COUNT_LIST <<<"$COUNTS"
(( ${#COUNT_LIST[@]} > 0 )) || { log "-n needs at least one count"; exit 2; }
for n in "${COUNT_LIST[@]}"; do
    if ! [[ $n =~ ^[1-9][0-9]*$ ]] || (( n > MAX_N )); then log "-n: '$n' is not a count in [1, $MAX_N]"; exit 2; fi
done
for v in RATE IDLE SETTLE RUN_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { log "$v must be a positive integer"; exit 2; }
done
[[ -z $CLIENTS || $CLIENTS =~ ^[1-9][0-9]*$ ]] || { log "-c must be a positive integer"; exit 2; }
(( IDLE <= 300 )) || { log "-I is capped at 300 s"; exit 2; }
(( SETTLE <= 300 )) || { log "-W is capped at 300 s"; exit 2; }
(( RUN_TIMEOUT <= 1800 )) || { log "-T is capped at 1800 s"; exit 2; }
(( RATE <= 1000000 )) || { log "-R is capped at 1000000"; exit 2; }
[[ $SEED =~ ^[A-Za-z0-9._-]+$ ]] || { log "-s: letters, digits, '.', '_' and '-' only"; exit 2; }
IFS=, read -r -a IMPL_LIST <<<"$IMPLS"
(( ${#IMPL_LIST[@]} > 0 )) || { log "-i needs at least one implementation"; exit 2; }
for i in "${IMPL_LIST[@]}"; do
    [[ $i =~ ^(tapwire|wireguard-go)$ ]] || { log "unknown implementation '$i'"; exit 2; }
done
if [[ $EUID != 0 ]]; then
    echo "$0: needs root (network namespaces, TUN devices); run it with sudo" >&2
    exit 2
fi
[[ -z $BIN_TW || -x $BIN_TW ]] || { log "$BIN_TW is not an executable file"; exit 2; }

# ---- scratch dir, cleanup -----------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/hub-bench.XXXXXX) || die "mktemp failed"
SHARED=$SCRATCH
WORK=$SCRATCH
RESULTS=$SCRATCH/results.jsonl; : >"$RESULTS"
NS_MADE=0
ANY_FAIL=0
FINISHED=0

teardown() {          # kill what this run started (by pid), delete the namespace and the socket
    local p
    # lib.sh's kill_pid reaps with wait, whose status errexit must not see
    for p in "${AUX_PIDS[@]}"; do kill_pid "$p" || true; done
    for p in "${TUN_PIDS[@]}"; do kill_pid "$p" || true; done
    AUX_PIDS=(); TUN_PIDS=()
    if (( NS_MADE )); then ip netns del "$NS" 2>/dev/null || true; NS_MADE=0; fi
    rm -f "/var/run/wireguard/$IF.sock"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    teardown
    if (( FINISHED == 0 )) && [[ -s $RESULTS ]]; then
        cp "$RESULTS" "$OUT" 2>/dev/null && log "partial results written to $OUT"
    fi
    if [[ $KEEP == 1 || $ANY_FAIL == 1 || $rc != 0 ]]; then
        log "scratch dir kept: $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---- helpers ------------------------------------------------------------------------
nsx() { ip netns exec "$NS" "$@"; }
jn() { [[ -n ${1:-} ]] && echo "$1" || echo null; }      # number or null for JSON
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status" 2>/dev/null || true; }
now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN{ printf "%.3f", (b - a) / 1e9 }'; }
busy_pct() {          # busy_pct "b0 t0" "b1 t1" -> % of all CPUs busy in between
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$1"; read -r b1 t1 <<<"$2"
    awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN{ if (t > 0) printf "%.0f", 100*b/t; else print 0 }'
}
listening() { nsx ss -Hlun "sport = :$PORT" 2>/dev/null | grep -q .; }
hub_ready() { [[ -S /var/run/wireguard/$IF.sock ]] || ! kill -0 "$HUB_PID" 2>/dev/null; }   # or dead
link_gone() { ! ip -n "$NS" link show "$IF" >/dev/null 2>&1; }
bound() { echo $(( 120 + $1 / 200 )); }   # seconds allowed a wg command on N peers

ns_create() {
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; then
        log "namespace $NS already exists"; return 1
    fi
    ip netns add "$NS" || return 1
    NS_MADE=1
    ip -n "$NS" link set lo up
}

# start_hub IMPL LABEL -> the hub process in $HUB_PID, its UAPI socket up
start_hub() {
    local impl=$1 label=$2
    [[ -e /var/run/wireguard/$IF.sock ]] && { log "/var/run/wireguard/$IF.sock exists"; return 1; }
    if [[ $impl == tapwire ]]; then
        bench_spawn "$NS" "$label" env LOG_LEVEL=error "$TWGO" -f "$IF"
    else
        bench_spawn "$NS" "$label" env LOG_LEVEL=error "$WGGO" -f "$IF"
    fi
    HUB_PID=$SPAWNED_PID
    wait_until 15 hub_ready || true
    if [[ ! -S /var/run/wireguard/$IF.sock ]] || ! kill -0 "$HUB_PID" 2>/dev/null; then
        log "$impl made no UAPI socket$(kill -0 "$HUB_PID" 2>/dev/null || echo ': it exited')"; return 1
    fi
}

# configure CONF -> APPLY_S: wg setconf timed; then the addresses, the link up, the port listening
APPLY_S=""
configure() {
    local conf=$1 n=$2 t0
    t0=$(now_ns)
    nsx timeout "$(bound "$n")" wg setconf "$IF" "$conf" || { log "wg setconf failed"; return 1; }
    APPLY_S=$(secs_since "$t0")
    ip -n "$NS" addr add "$HUB4" dev "$IF" || return 1
    ip -n "$NS" addr add "$HUB6" dev "$IF" nodad || return 1
    ip -n "$NS" link set "$IF" up || return 1
    wait_until 15 listening || { log "nothing listens on UDP $PORT"; return 1; }
}

# show ID N -> SHOW_S (wg show dump timed), SHOW_LINES, SESSIONS (peers with a handshake)
SHOW_S=""; SHOW_LINES=""; SESSIONS=""
show() {
    local id=$1 n=$2 t0
    t0=$(now_ns)
    nsx timeout "$(bound "$n")" wg show "$IF" dump >"$WORK/$id.dump" || { log "wg show dump failed"; return 1; }
    SHOW_S=$(secs_since "$t0")
    SHOW_LINES=$(wc -l <"$WORK/$id.dump")
    SESSIONS=$(awk -F'\t' 'NR > 1 && $5 != 0' "$WORK/$id.dump" | wc -l)
}

# idle -> IDLE_JSON: the hub's CPU over $IDLE s while nothing is sent to it
IDLE_JSON=""
idle() {
    local p0 p1
    local sp
    p0=$(pid_ticks "$HUB_PID")
    sleep "$IDLE" & sp=$!; AUX_PIDS+=("$sp")
    wait "$sp"        # a wait a signal interrupts, so that Ctrl-C is not held up
    p1=$(pid_ticks "$HUB_PID")
    IDLE_JSON=$(jq -nc --argjson t $((p1 - p0)) --argjson hz "$CLK_TCK" --argjson s "$IDLE" \
        '{ticks: $t, seconds: $s, cpu_pct: ($t / $hz / $s * 100 * 100 | round / 100)}')
}

# clients ID ARGS... -> CLIENTS_JSON: bench/hub run in the namespace, and HUB_CPU_S the hub's CPU meanwhile
CLIENTS_JSON=""; HUB_CPU_S=""
clients() {
    local id=$1 p0 p1 pid rc=0; shift
    p0=$(pid_ticks "$HUB_PID")
    nsx timeout $((RUN_TIMEOUT + 120)) "$HUBTOOL" run -q -to "127.0.0.1:$PORT" -seed "$SEED" -timeout "${RUN_TIMEOUT}s" "$@" \
        >"$WORK/$id.json" 2>"$WORK/$id.err" </dev/null &
    pid=$!; AUX_PIDS+=("$pid")
    wait "$pid" || rc=$?
    p1=$(pid_ticks "$HUB_PID")
    HUB_CPU_S=$(awk -v t=$((p1 - p0)) -v hz="$CLK_TCK" 'BEGIN{ printf "%.2f", t / hz }')
    CLIENTS_JSON=$(jq -c . "$WORK/$id.json" 2>/dev/null || true)
    if (( rc != 0 )) || [[ -z $CLIENTS_JSON ]]; then
        log "bench/hub run failed ($rc): $(tail -c 300 "$WORK/$id.err")"; CLIENTS_JSON=null; return 1
    fi
}

stop_hub() {
    kill_pid "$HUB_PID" || true
    wait_until 10 link_gone || { log "$IF still there after the hub exited"; return 1; }
    rm -f "/var/run/wireguard/$IF.sock"
}

# ---- one implementation, one N ------------------------------------------------------------
run_one() {           # run_one IMPL N
    local impl=$1 n=$2 m err="" id conf
    local rss0="" rss1="" rss2="" rss3="" apply="" show_s="" lines="" idle1=null idle2=null idle3=null sp
    local wave=null wave_cpu="" sessions="" herd=null herd_cpu="" herd_apply="" herd_sessions=""
    m=${CLIENTS:-$(( n < 10000 ? n : 10000 ))}; (( m > n )) && m=$n
    id=$impl-$n
    conf=$SCRATCH/hub-$n.conf
    WORK=$SCRATCH/$id; mkdir -p "$WORK"
    TUN_PIDS=(); AUX_PIDS=(); HUB_PID=""
    log "=== $impl, $n peers, $m clients"
    if [[ $impl == wireguard-go ]] && (( n > 65536 )); then
        # Its device.MaxPeers: wg setconf fails with "too many peers".
        err="wireguard-go takes at most 65536 peers (MaxPeers)"
    elif [[ ! -s $conf ]] && ! "$HUBTOOL" conf -n "$n" -seed "$SEED" -port "$PORT" -o "$conf"; then
        err="bench/hub conf failed"
    elif ! ns_create; then
        err="namespace setup failed"
    elif ! start_hub "$impl" hub; then
        err="$impl did not start (logs in $WORK)"
    else
        rss0=$(rss_kb "$HUB_PID")
        if ! configure "$conf" "$n"; then
            err="configuring the hub failed"
        else
            apply=$APPLY_S; rss1=$(rss_kb "$HUB_PID")
            log "  apply ${apply}s, RSS ${rss0} -> ${rss1} kB"
            if ! show empty "$n"; then err="wg show failed"
            elif (( SHOW_LINES != n + 1 )); then err="wg show dump has $SHOW_LINES lines, want $((n + 1))"
            fi
            show_s=$SHOW_S; lines=$SHOW_LINES
        fi
    fi
    if [[ -z $err ]]; then
        log "  show ${show_s}s ($lines lines); idle ${IDLE}s"
        idle; idle1=$IDLE_JSON
        log "  idle: $idle1; wave: $m clients at $RATE/s"
        if clients wave -n "$m" -rate "$RATE"; then :; else err="the client wave failed"; fi
        wave=$CLIENTS_JSON; wave_cpu=$HUB_CPU_S
        rss2=$(rss_kb "$HUB_PID")
        log "  wave: $(jq -r '"\(.established) up, \(.failed) failed, \(.handshakes_per_s | round) handshakes/s, \(.cookie_replies) cookies, \(.retries) retries, \(.data_replies) pings back"' <<<"$wave" 2>/dev/null); hub CPU ${wave_cpu}s"
    fi
    if [[ -z $err ]]; then
        show sessions "$n" && sessions=$SESSIONS
        idle; idle2=$IDLE_JSON
        log "  idle with $sessions sessions: $idle2; settled window in ${SETTLE}s"
        # The same sessions once what a new session starts is over (tapwire
        # sends each new peer path MTU probes for a few seconds).
        sleep "$SETTLE" & sp=$!; AUX_PIDS+=("$sp"); wait "$sp"
        idle; idle3=$IDLE_JSON
        log "  idle with $sessions sessions, settled: $idle3"
    fi
    if [[ -z $err && $HERD == 1 ]]; then
        log "  restart, then a herd of $m clients"
        if ! stop_hub; then err="the hub did not stop"
        elif ! start_hub "$impl" hub-restarted; then err="$impl did not restart (logs in $WORK)"
        elif ! configure "$conf" "$n"; then err="configuring the restarted hub failed"
        else
            herd_apply=$APPLY_S
            if clients herd -n "$m" -herd; then :; else err="the herd failed"; fi
            herd=$CLIENTS_JSON; herd_cpu=$HUB_CPU_S
            rss3=$(rss_kb "$HUB_PID")
            show herd-sessions "$n" && herd_sessions=$SESSIONS
            log "  herd: $(jq -r '"\(.established) back in \(.all_up_s // "-") s, \(.failed) failed, \(.cookie_replies) cookies, \(.retries) retries"' <<<"$herd" 2>/dev/null); hub CPU ${herd_cpu}s"
        fi
    fi
    [[ -n $err ]] && { log "  FAILED: $err"; ANY_FAIL=1; }
    jq -nc --arg impl "$impl" --argjson n "$n" --argjson m "$m" --arg err "$err" --argjson meta "$(<"$SCRATCH/meta.json")" \
        --argjson rss0 "$(jn "$rss0")" --argjson rss1 "$(jn "$rss1")" --argjson rss2 "$(jn "$rss2")" --argjson rss3 "$(jn "$rss3")" \
        --argjson apply "$(jn "$apply")" --argjson show "$(jn "$show_s")" --argjson lines "$(jn "$lines")" \
        --argjson idle1 "$idle1" --argjson idle2 "$idle2" --argjson idle3 "$idle3" --argjson wave "$wave" --argjson wcpu "$(jn "$wave_cpu")" \
        --argjson sessions "$(jn "$sessions")" --argjson herd "$herd" --argjson hcpu "$(jn "$herd_cpu")" \
        --argjson happly "$(jn "$herd_apply")" --argjson hsessions "$(jn "$herd_sessions")" '
        {impl: $impl, peers: $n, clients: $m, ok: ($err == ""), error: (if $err == "" then null else $err end),
         apply_s: $apply, show_s: $show, show_lines: $lines,
         rss_kb: {start: $rss0, configured: $rss1, after_wave: $rss2, after_herd: $rss3},
         rss_bytes_per_peer: (if $rss0 != null and $rss1 != null then (($rss1 - $rss0) * 1024 / $n | round) else null end),
         idle_configured: $idle1, idle_sessions: $idle2, idle_sessions_settled: $idle3,
         wave: $wave, wave_hub_cpu_s: $wcpu,
         hub_ms_per_handshake: (if $wcpu != null and $wave != null and $wave.established > 0 then ($wcpu * 1000 / $wave.established * 100 | round / 100) else null end),
         hub_sessions: $sessions,
         herd: $herd, herd_hub_cpu_s: $hcpu, herd_apply_s: $happly, herd_hub_sessions: $hsessions,
         meta: $meta}' >>"$RESULTS"
    teardown
}

# ---- report --------------------------------------------------------------------------------
print_table() {
    echo
    echo "**A hub with N peers, tapwire-go and wireguard-go** — $(jq -rs '.[0].meta | "kernel \(.kernel), \(.cpu_model) (\(.ncpu) CPUs), \(.started), tapwire \(.git_revision)\(if .git_dirty then " (modified)" else "" end), wireguard-go \(.wireguard_go)"' "$OUT")"
    echo
    echo "Command: \`$CMDLINE\`"
    echo
    echo "| impl | peers | apply s | show s | RSS MiB start → peers → sessions | B/peer | idle CPU % (peers / sessions / settled) | clients | handshakes/s | hub CPU ms/handshake | up ms p50 / p99 | herd: all back s | herd cookies / retries / failed |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    jq -r 'def mib: if . == null then "-" else (. / 1024 * 10 | round / 10 | tostring) end;
           def n: if . == null then "-" else tostring end;
        if .ok | not then "| \(.impl) | \(.peers) | FAILED: \(.error) |||||||||||"
        else "| \(.impl) | \(.peers) | \(.apply_s | n) | \(.show_s | n) | \(.rss_kb.start | mib) → \(.rss_kb.configured | mib) → \(.rss_kb.after_wave | mib) | \(.rss_bytes_per_peer | n) | \(.idle_configured.cpu_pct | n) / \(.idle_sessions.cpu_pct | n) / \(.idle_sessions_settled.cpu_pct | n) | \(.clients) | \(.wave.handshakes_per_s // null | if . == null then "-" else round end) | \(.hub_ms_per_handshake | n) | \(.wave.up_ms.p50 | round) / \(.wave.up_ms.p99 | round) | \(if .herd == null then "-" else (.herd.all_up_s // null | if . == null then "not all (\(.herd.established))" else (. * 100 | round / 100) end) end) | \(if .herd == null then "-" else "\(.herd.cookie_replies) / \(.herd.retries) / \(.herd.failed)" end) |" end' "$OUT"
    echo
    echo "apply: \`wg setconf\` of N peers (one /32 and one /128 each); show: \`wg show dump\`; RSS: VmRSS of the hub at start, with N peers, after the wave; idle CPU: the hub's utime+stime over ${IDLE} s with no traffic, as % of one CPU, with N peers, then with the wave's sessions alive just after it, then ${SETTLE} s later (settled)."
    echo "wave: the clients (bench/hub run) start handshakes at ${RATE}/s, each sends a ping through the hub and a keepalive; handshakes/s from the first initiation to the last response; hub CPU per handshake = the hub's CPU during the wave / handshakes. herd: the hub restarted with the same config, every client initiating at once, WireGuard's retries (5 s + jitter)."
    jq -rs --argjson w "$BG_WARN" '.[0].meta | select(.background_busy_pct_before >= $w) | "WARNING: the machine was \(.background_busy_pct_before)% busy before the run: noisy figures"' "$OUT"
}

# ---- dependencies, binaries -------------------------------------------------------------------
log "scratch dir $SCRATCH"
need_cmd ip iproute2       || die "ip (iproute2) missing"
need_cmd ss iproute2       || die "ss (iproute2) missing"
need_cmd jq jq             || die "jq missing"
need_cmd wg wireguard-tools || die "wg (wireguard-tools) missing"
need_cmd timeout coreutils || die "timeout missing"
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing"

GOCMD=${GO:-$(command -v go 2>/dev/null || true)}
[[ -z $GOCMD && -x /usr/local/go/bin/go ]] && GOCMD=/usr/local/go/bin/go
[[ -n $GOCMD ]] || die "no go toolchain (set \$GO)"
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$([[ -n $(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)
log "building ./bench/hub$([[ -z $BIN_TW ]] && echo ' and ./cmd/tapwire-go') at $GIT_REV$([[ $GIT_DIRTY == true ]] && echo ' (working tree modified)')"
( cd "$REPO" && "$GOCMD" build -o "$SCRATCH/hub" ./bench/hub ) >"$SCRATCH/build.log" 2>&1 ||
    { cat "$SCRATCH/build.log" >&2; die "go build ./bench/hub failed"; }
HUBTOOL=$SCRATCH/hub
TW_SRC=given
if [[ -z $BIN_TW ]]; then
    ( cd "$REPO" && "$GOCMD" build -o "$SCRATCH/tapwire-go" ./cmd/tapwire-go ) >>"$SCRATCH/build.log" 2>&1 ||
        { cat "$SCRATCH/build.log" >&2; die "go build ./cmd/tapwire-go failed (give -a BIN)"; }
    BIN_TW=$SCRATCH/tapwire-go
    TW_SRC="built from $REPO at $GIT_REV (working tree modified: $GIT_DIRTY)"
fi
TWGO=$BIN_TW
WGGO=""
if [[ " ${IMPL_LIST[*]} " == *" wireguard-go "* ]]; then
    # the tunnel tests' cache (tunnel/harness_test.go wireguardGo), shared with them and flood.sh
    WGGO_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/tapwire-test/wireguard-go-$WGGO_VERSION
    WGGO=$WGGO_DIR/wireguard
    if [[ ! -x $WGGO ]]; then
        [[ $NO_INSTALL == 1 ]] && die "wireguard-go not built at $WGGO and -N given"
        log "building wireguard-go $WGGO_VERSION from the Go module proxy into $WGGO_DIR"
        ( cd "$REPO" && GOBIN=$WGGO_DIR GOFLAGS=-mod=mod timeout 900 "$GOCMD" install "golang.zx2c4.com/wireguard@$WGGO_VERSION" ) \
            >>"$SCRATCH/build.log" 2>&1 || { cat "$SCRATCH/build.log" >&2; die "building wireguard-go failed"; }
    fi
fi

m0=$(machine_ticks); sleep 2; BG_BEFORE=$(busy_pct "$m0" "$(machine_ticks)")
(( BG_BEFORE >= BG_WARN )) && log "WARNING: the machine is already ${BG_BEFORE}% busy before the run; figures will be noisy"
jq -n --arg started "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" --argjson ncpu "$NCPU" \
    --arg cpu "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" --arg cmd "$CMDLINE" \
    --arg rev "$GIT_REV" --argjson dirty "$GIT_DIRTY" --arg tw "$BIN_TW" --arg twsrc "$TW_SRC" \
    --arg wggo "$WGGO_VERSION" --arg seed "$SEED" --argjson rate "$RATE" --argjson idle "$IDLE" \
    --argjson herd "$HERD" --argjson bg "$BG_BEFORE" --arg wg "$(wg --version 2>/dev/null | head -1)" '
    {started: $started, command: $cmd, kernel: $kernel, ncpu: $ncpu, cpu_model: $cpu, wg: $wg,
     git_revision: $rev, git_dirty: $dirty, tapwire_go: {path: $tw, source: $twsrc}, wireguard_go: $wggo,
     seed: $seed, rate: $rate, idle_s: $idle, herd: ($herd == 1), background_busy_pct_before: $bg,
     layout: "one namespace, lo only; hub TUN 10.96.0.1/11 fd00:7a9::1/64 on 127.0.0.1:51820; client i from 127.16.x.y, inner 10.96.0.(i+2)"}' \
    >"$SCRATCH/meta.json" || die "could not write meta"

# ---- run ---------------------------------------------------------------------------------------
log "implementations: ${IMPL_LIST[*]}; peers: ${COUNT_LIST[*]}; wave at $RATE/s; idle ${IDLE}s; herd: $([[ $HERD == 1 ]] && echo yes || echo no)"
for n in "${COUNT_LIST[@]}"; do
    for impl in "${IMPL_LIST[@]}"; do
        run_one "$impl" "$n"
        cp "$RESULTS" "$OUT"
    done
done
FINISHED=1
cp "$RESULTS" "$OUT" || die "could not write $OUT"
print_table
echo
echo "JSON lines: $OUT"
(( ANY_FAIL == 0 ))
