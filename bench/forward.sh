#!/usr/bin/env bash
# forward.sh -- benchmark user-space TUN/TAP forwarders (tapwire's
# examples/forward and a wireguard-go twin, bench/wgforward) with iperf3
# between two private network namespaces.  See README.md.
#
# Network rule: the forwarder runs in the root namespace but creates its two
# devices directly inside the two namespaces this script makes; every address
# and every packet stays inside those namespaces.  Nothing is configured in the
# root namespace, every load is bounded in time, and the namespaces and all
# processes started here (killed by pid) are removed on exit, error or signal.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BIN=$BENCH_DIR/bin

# ---- defaults -------------------------------------------------------------------
OUT=/tmp/forward-bench.json
DUR=5                 # seconds per iperf3 run
ROUNDS=3              # interleaved rounds over all variants
VARIANT_LIST=""       # empty: all
NO_INSTALL=0
KEEP=0
NS_L=twbL$$           # client side (iperf3 -c), first device (-a)
NS_R=twbR$$           # server side (iperf3 -s), second device (-b)
DEV_L=twbl
DEV_R=twbr
ADDR_L=198.18.0.1; ADDR_R=198.18.0.2; PLEN=24
ADDR6_L=fd00:198:18::1; ADDR6_R=fd00:198:18::2; PLEN6=64
PORT=5201
PAR=4                 # streams of the multi-stream TCP test
UDP_LEN=1400          # UDP payload per datagram (fits a 1500 MTU unfragmented)
BG_WARN=10            # % of all CPUs busy between tests above which a run counts as disturbed
WG_VERSION=v0.0.0-20260522210424-ecfc5a8d5446   # pinned in wgforward/go.mod

VARIANTS=(tw-tun-off tw-tun-on wg-tun tw-tap-off tw-tap-on)
declare -A DESC=(
    [tw-tun-off]="tapwire examples/forward -mode tun -offload=false"
    [tw-tun-on]="tapwire examples/forward -mode tun -offload=true"
    [wg-tun]="bench/wgforward: the same forwarder on wireguard-go's tun package (IFF_VNET_HDR, TSO/USO + GRO)"
    [tw-tap-off]="tapwire examples/forward -mode tap -offload=false"
    [tw-tap-on]="tapwire examples/forward -mode tap -offload=true"
)
TESTS=(tcp1 tcp4 udp)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

usage() {
    cat <<EOF
usage: $0 [options]
  -c LIST    comma-separated variants (default: all: ${VARIANTS[*]})
  -t SECS    iperf3 duration per test (default $DUR, max 120)
  -r N       rounds, interleaved: round 1 of every variant, then round 2, ... (default $ROUNDS)
  -o FILE    JSON output (default $OUT)
  -n         install nothing: no apt-get, no Go module downloads (GOPROXY=off)
  -k         keep the scratch dir (forwarder logs, iperf3 JSON) even on success
  -l         list the variants and exit
Must run as root. Progress goes to stderr; the markdown summary to stdout.
The Go toolchain is \$GO, else go on PATH, else /usr/local/go/bin/go.
EOF
}

ORIG_ARGS=("$@")
LIST_ONLY=0
while getopts "c:t:r:o:nklh" opt; do
    case $opt in
        c) VARIANT_LIST=$OPTARG ;; t) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;;
        o) OUT=$OPTARG ;;          n) NO_INSTALL=1 ;; k) KEEP=1 ;;
        l) LIST_ONLY=1 ;;          h) usage; exit 0 ;; *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# == 0 ]] || { usage >&2; exit 2; }
if ! [[ $DUR =~ ^[1-9][0-9]*$ ]] || ((DUR > 120)); then die "-t must be an integer in 1..120"; fi
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || ((ROUNDS > 50)); then die "-r must be an integer in 1..50"; fi

if [[ $LIST_ONLY == 1 ]]; then
    for v in "${VARIANTS[@]}"; do printf '%-11s %s\n' "$v" "${DESC[$v]}"; done
    exit 0
fi

SELECTED=()
if [[ -z $VARIANT_LIST ]]; then
    SELECTED=("${VARIANTS[@]}")
else
    IFS=, read -r -a SELECTED <<<"$VARIANT_LIST"
    for v in "${SELECTED[@]}"; do
        [[ -n ${DESC[$v]+x} ]] || die "unknown variant '$v' (try -l)"
    done
fi
[[ $EUID == 0 ]] || die "must run as root (network namespaces, TUN devices)"

# The exact command, for the report.
CMDLINE="bench/forward.sh"
[[ -n ${SUDO_USER:-} ]] && CMDLINE="sudo $CMDLINE"
for a in "${ORIG_ARGS[@]}"; do
    if [[ $a =~ ^[A-Za-z0-9_./,:=@%+-]+$ ]]; then CMDLINE+=" $a"; else CMDLINE+=" $(printf '%q' "$a")"; fi
done

# ---- processes, namespaces, cleanup ------------------------------------------------
STARTED_PIDS=()       # every background process started here; killed by pid on exit
CREATED_NS=()
SCRATCH=""
ANY_FAIL=0
KILL_RC=0

running() {           # running PID: 0 if PID exists and is not a zombie (an exited, unreaped child)
    local s
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [[ ${s:0:1} != Z ]]
}

kill_pid() {          # kill_pid PID: TERM, wait up to 5 s, then KILL; reap; KILL_RC = its status
    local p=$1 i
    KILL_RC=0
    [[ -n $p ]] || return 0
    if running "$p"; then
        kill -TERM "$p" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do running "$p" || break; sleep 0.1; done
        if running "$p"; then
            log "  pid $p ignored SIGTERM for 5 s: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        fi
    fi
    wait "$p" 2>/dev/null || KILL_RC=$?
    return 0
}

forget_pid() {        # forget_pid PID: drop it from STARTED_PIDS (after it was reaped)
    local p keep=()
    for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED_PIDS=("${keep[@]}")
}

ns_delete_all() {
    local ns
    for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"; done
    CREATED_NS=()
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    set +e
    for p in "${STARTED_PIDS[@]}"; do kill_pid "$p"; done
    STARTED_PIDS=()
    ns_delete_all
    if [[ -n $SCRATCH ]]; then
        if [[ $KEEP == 1 || $ANY_FAIL == 1 || $rc != 0 ]]; then
            log "scratch dir kept: $SCRATCH"
        else
            rm -rf "$SCRATCH"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

wait_until() {        # wait_until SECONDS cmd args...: poll every 0.1 s
    local deadline=$(($(date +%s%N) + $1 * 1000000000))
    shift
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        (($(date +%s%N) < deadline)) || return 1
        sleep 0.1
    done
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

ns_create() {
    local ns
    for ns in "$NS_L" "$NS_R"; do
        if ns_exists "$ns"; then
            log "namespace $ns already exists; not touching it"
            return 1
        fi
    done
    for ns in "$NS_L" "$NS_R"; do
        ip netns add "$ns" || return 1
        CREATED_NS+=("$ns")
        ip -n "$ns" link set lo up || return 1
    done
}

# ---- CPU accounting --------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
NCPU=$(nproc 2>/dev/null || echo 1)

pid_ticks() {         # pid_ticks PID: utime+stime of the whole process (all threads), clock ticks
    local s a
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return; }
    read -r -a a <<<"${s##*) }"   # a[0] is field 3 (state)
    echo $((a[11] + a[12]))       # fields 14 utime, 15 stime
}

machine_ticks() {     # machine_ticks: "busy total" clock ticks over all CPUs
    local _cpu u n s i w irq sirq st _rest
    read -r _cpu u n s i w irq sirq st _rest </proc/stat
    echo "$((u + n + s + irq + sirq + st)) $((u + n + s + i + w + irq + sirq + st))"
}

busy_pct_over() {     # busy_pct_over SECONDS: sleep, and print the machine's busy % of all CPUs meanwhile
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$(machine_ticks)"
    sleep "$1"
    read -r b1 t1 <<<"$(machine_ticks)"
    if ((t1 > t0)); then echo $((100 * (b1 - b0) / (t1 - t0))); else echo 0; fi
}

link_counter() {      # link_counter NS DEV rx|tx FIELD
    ip -n "$1" -j -s link show dev "$2" 2>/dev/null | jq -r ".[0].stats64.$3.$4 // 0" 2>/dev/null || echo 0
}

udp_rcvbuf_errors() { # udp_rcvbuf_errors NS: UDP RcvbufErrors of the namespace
    ip netns exec "$1" cat /proc/net/snmp 2>/dev/null | awk '
        $1 == "Udp:" && !h { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1; next }
        $1 == "Udp:" && h { print $c + 0; exit }' || echo 0
}

# ---- dependencies ----------------------------------------------------------------------
need_tools() {
    local missing=() c
    declare -A pkg=([ip]=iproute2 [ss]=iproute2 [iperf3]=iperf3 [jq]=jq [ping]=iputils-ping [timeout]=coreutils)
    for c in ip ss iperf3 jq ping timeout; do
        command -v "$c" >/dev/null 2>&1 || missing+=("${pkg[$c]}")
    done
    ((${#missing[@]} == 0)) && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    [[ $NO_INSTALL == 1 ]] && die "missing packages (-n given, not installing): ${missing[*]}"
    log "installing: ${missing[*]} (apt-get update, then apt-get install --no-install-recommends)"
    timeout 600 apt-get update >>"$SCRATCH/apt.log" 2>&1 || log "apt-get update failed (see $SCRATCH/apt.log)"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" \
        >>"$SCRATCH/apt.log" 2>&1 || die "apt-get install failed (see $SCRATCH/apt.log)"
    for c in ip ss iperf3 jq ping timeout; do
        command -v "$c" >/dev/null 2>&1 || die "$c still missing after apt-get install"
    done
}

# build_all: build the forwarders the selected variants need into bench/bin.
# BUILD[forward|wgforward] = fresh, stale (build failed, an older binary is used:
# flagged in the JSON and the markdown) or missing (its variants are reported as failed).
declare -A UNAVAILABLE=() BUILD=()
build_one() {         # build_one NAME DIR PKG [env...]: go build DIR/PKG -> $BIN/NAME
    local name=$1 dir=$2 target=$3
    shift 3
    log "building $BIN/$name"
    if (cd "$dir" && env "$@" "$GOBIN_CMD" build -buildvcs=false -o "$BIN/.$name.new" "$target") \
            >"$SCRATCH/build-$name.log" 2>&1; then
        mv -f "$BIN/.$name.new" "$BIN/$name"
        BUILD[$name]=fresh
        return 0
    fi
    rm -f "$BIN/.$name.new"
    sed 's/^/    /' "$SCRATCH/build-$name.log" >&2
    if [[ -x $BIN/$name ]]; then
        BUILD[$name]=stale
        log "WARNING: building $name failed; using the OLDER $BIN/$name from $(date -r "$BIN/$name" '+%F %T')"
    else
        BUILD[$name]=missing
        log "building $name failed and there is no older binary"
    fi
}

build_all() {
    local need_tw=0 need_wg=0 v b
    for v in "${SELECTED[@]}"; do
        case $v in wg-*) need_wg=1 ;; *) need_tw=1 ;; esac
    done
    GOBIN_CMD=${GO:-$(command -v go 2>/dev/null || true)}
    [[ -z $GOBIN_CMD && -x /usr/local/go/bin/go ]] && GOBIN_CMD=/usr/local/go/bin/go
    mkdir -p "$BIN"
    if [[ -z $GOBIN_CMD ]]; then
        log "WARNING: no go toolchain; using the binaries already in $BIN, if any"
        for b in forward wgforward; do
            if [[ -x $BIN/$b ]]; then BUILD[$b]=stale; else BUILD[$b]=missing; fi
        done
    else
        GO_VERSION=$("$GOBIN_CMD" version)
        [[ $NO_INSTALL == 1 ]] && export GOPROXY=off
        if ((need_tw)); then build_one forward "$REPO" ./examples/forward; fi
        if ((need_wg)); then build_one wgforward "$BENCH_DIR/wgforward" . GOFLAGS=-mod=mod; fi
    fi
    for v in "${SELECTED[@]}"; do
        case $v in wg-*) b=wgforward ;; *) b=forward ;; esac
        [[ ${BUILD[$b]:-missing} != missing ]] || UNAVAILABLE[$v]="bench/bin/$b could not be built"
    done
}

variant_cmd() {       # variant_cmd NAME: sets FWD_CMD
    case $1 in
        tw-tun-off) FWD_CMD=("$BIN/forward" -mode tun -offload=false) ;;
        tw-tun-on) FWD_CMD=("$BIN/forward" -mode tun -offload=true) ;;
        wg-tun) FWD_CMD=("$BIN/wgforward" -mode tun -offload=true) ;;
        tw-tap-off) FWD_CMD=("$BIN/forward" -mode tap -offload=false) ;;
        tw-tap-on) FWD_CMD=("$BIN/forward" -mode tap -offload=true) ;;
        *) die "no command for variant $1" ;;
    esac
    FWD_CMD+=(-a "$DEV_L" -b "$DEV_R" -netns-a "$NS_L" -netns-b "$NS_R")
}

# ---- one iperf3 test -------------------------------------------------------------------------
srv_listening() { ip netns exec "$NS_R" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

# run_test TEST: runs iperf3 TEST (tcp1|tcp4|udp) from NS_L to NS_R while FWD_PID forwards.
# Appends one JSON object to $WORK/tests.jsonl; returns 1 (TEST_ERR set) on failure.
run_test() {
    local t=$1 json="$WORK/iperf-$1.json" srv cli rc=0 i args=()
    local c0 c1 m0 m1 mb0 mt0 mb1 mt1 w0 w1 d0=0 d1=0 r0=0 r1=0 u0=0 u1=0
    TEST_ERR=""
    case $t in
        tcp1) args=() ;;
        tcp4) args=(-P "$PAR") ;;
        udp) args=(-u -b 0 -l "$UDP_LEN") ;;
    esac
    ip netns exec "$NS_R" timeout $((DUR + 40)) iperf3 -s -1 -p "$PORT" -B "$ADDR_R" \
        >"$WORK/iperf-$t-server.log" 2>&1 </dev/null &
    srv=$!
    STARTED_PIDS+=("$srv")
    if ! wait_until 5 srv_listening; then
        TEST_ERR="$t: iperf3 server did not start"
        kill_pid "$srv"; forget_pid "$srv"
        return 1
    fi
    if [[ $t == udp ]]; then
        d0=$(link_counter "$NS_L" "$DEV_L" tx dropped)
        r0=$(link_counter "$NS_R" "$DEV_R" rx dropped)
        u0=$(udp_rcvbuf_errors "$NS_R")
    fi
    c0=$(pid_ticks "$FWD_PID"); m0=$(machine_ticks); w0=$(date +%s%N)
    # Client in the background + wait, so that INT/TERM are handled at once.
    ip netns exec "$NS_L" timeout $((DUR + 30)) \
        iperf3 -c "$ADDR_R" -p "$PORT" -t "$DUR" -J --connect-timeout 3000 "${args[@]}" \
        >"$json" 2>"$WORK/iperf-$t.err" </dev/null &
    cli=$!
    STARTED_PIDS+=("$cli")
    wait "$cli" || rc=$?
    forget_pid "$cli"
    c1=$(pid_ticks "$FWD_PID"); m1=$(machine_ticks); w1=$(date +%s%N)
    if [[ $t == udp ]]; then
        d1=$(link_counter "$NS_L" "$DEV_L" tx dropped)
        r1=$(link_counter "$NS_R" "$DEV_R" rx dropped)
        u1=$(udp_rcvbuf_errors "$NS_R")
    fi
    # iperf3 -s -1 exits after one test; give it a moment, then make sure.
    for ((i = 0; i < 30; i++)); do running "$srv" || break; sleep 0.1; done
    kill_pid "$srv"; forget_pid "$srv"
    if [[ $rc != 0 ]] || ! jq -e '.end.sum_received.bits_per_second // .end.sum.bits_per_second' "$json" >/dev/null 2>&1; then
        TEST_ERR="$t: iperf3 failed (rc $rc): $( { jq -r '.error // empty' "$json" 2>/dev/null || true; } | head -c 200)$(head -c 200 "$WORK/iperf-$t.err" 2>/dev/null || true)"
        return 1
    fi
    read -r mb0 mt0 <<<"$m0"
    read -r mb1 mt1 <<<"$m1"
    jq -c --arg test "$t" --argjson ticks $((c1 - c0)) --argjson hz "$CLK_TCK" \
        --argjson mbusy $((mb1 - mb0)) --argjson mtotal $((mt1 - mt0)) \
        --argjson wall_ns $((w1 - w0)) \
        --argjson txdrop $((d1 - d0)) --argjson rxdrop $((r1 - r0)) --argjson rcvbuf $((u1 - u0)) '
        def r($n): (. * pow(10; $n) | round) / pow(10; $n);
        (.end.sum_received // .end.sum) as $rx
        | ($ticks / $hz) as $cpu
        | {test: $test,
           mbps: ($rx.bits_per_second / 1e6 | r(1)),
           bytes: $rx.bytes,
           sender_mbps: ((.end.sum_sent // .end.sum).bits_per_second / 1e6 | r(1)),
           fwd_cpu_s: ($cpu | r(2)),
           mbit_per_cpu_s: (if $cpu > 0 then ($rx.bytes * 8 / 1e6 / $cpu | r(0)) else null end),
           machine_busy_pct: (if $mtotal > 0 then (100 * $mbusy / $mtotal | r(0)) else null end),
           wall_s: ($wall_ns / 1e9 | r(2))}
        + (if $test == "udp" then
             {loss_pct: ($rx.lost_percent | r(2)), lost_packets: $rx.lost_packets,
              packets: $rx.packets, jitter_ms: ($rx.jitter_ms | r(3)),
              left_dev_tx_dropped: $txdrop, right_dev_rx_dropped: $rxdrop,
              right_udp_rcvbuf_errors: $rcvbuf}
           else {retransmits: (.end.sum_sent.retransmits // null)} end)' \
        "$json" >>"$WORK/tests.jsonl"
    return 0
}

# ---- one variant, one round ---------------------------------------------------------------------
fwd_alive() { running "$FWD_PID"; }
links_exist() {
    fwd_alive || return 2
    ip -n "$NS_L" link show dev "$DEV_L" >/dev/null 2>&1 && ip -n "$NS_R" link show dev "$DEV_R" >/dev/null 2>&1
}
ping4() { ip netns exec "$NS_L" ping -n -c 1 -W 1 "$ADDR_R"; }
ping6() { ip netns exec "$NS_L" ping -6 -n -c 1 -W 1 "$ADDR6_R"; }

run_variant() {       # run_variant NAME ROUND
    local v=$1 round=$2 errs=() t ping6_ok=false stop="" mtu="" s bg=()
    WORK="$SCRATCH/$v.r$round"
    mkdir -p "$WORK"
    : >"$WORK/tests.jsonl"
    FWD_PID=""
    log "=== $v (round $round/$ROUNDS): ${DESC[$v]}"
    variant_cmd "$v"
    if [[ -n ${UNAVAILABLE[$v]+x} ]]; then
        errs+=("${UNAVAILABLE[$v]}")
    elif ! ns_create; then
        errs+=("namespace setup failed")
    else
        # Start the forwarder in the root namespace; it makes its devices in NS_L/NS_R.
        env -u TAPWIRE_OFFLOAD "${FWD_CMD[@]}" >"$WORK/forwarder.log" 2>&1 </dev/null &
        FWD_PID=$!
        STARTED_PIDS+=("$FWD_PID")
        log "  forwarder pid $FWD_PID: ${FWD_CMD[*]#"$BIN/"}"
        if ! wait_until 10 links_exist; then
            errs+=("devices did not appear in the namespaces: $(tail -c 300 "$WORK/forwarder.log")")
        elif ip link show dev "$DEV_L" >/dev/null 2>&1 || ip link show dev "$DEV_R" >/dev/null 2>&1; then
            errs+=("a device called $DEV_L or $DEV_R exists in the root namespace; refusing to go on")
        else
            s=ok
            ip -n "$NS_L" addr add "$ADDR_L/$PLEN" dev "$DEV_L" || s=fail
            ip -n "$NS_L" addr add "$ADDR6_L/$PLEN6" dev "$DEV_L" nodad || s=fail
            ip -n "$NS_R" addr add "$ADDR_R/$PLEN" dev "$DEV_R" || s=fail
            ip -n "$NS_R" addr add "$ADDR6_R/$PLEN6" dev "$DEV_R" nodad || s=fail
            ip -n "$NS_L" link set "$DEV_L" up || s=fail
            ip -n "$NS_R" link set "$DEV_R" up || s=fail
            mtu=$(ip -n "$NS_L" -j link show dev "$DEV_L" 2>/dev/null | jq -r '.[0].mtu' 2>/dev/null || true)
            if [[ $s != ok ]]; then
                errs+=("address/link configuration failed")
            elif ! wait_until 10 ping4; then
                errs+=("no IPv4 connectivity $ADDR_L -> $ADDR_R through the forwarder")
            else
                if wait_until 5 ping6; then ping6_ok=true; else log "  WARNING: no IPv6 connectivity to $ADDR6_R"; fi
                for t in "${TESTS[@]}"; do
                    if ! fwd_alive; then errs+=("forwarder died"); break; fi
                    if run_test "$t"; then
                        log "  $(jq -r 'select(.test == "'"$t"'") | "\(.test): \(.mbps) Mbit/s" +
                            (if .loss_pct then " (loss \(.loss_pct)%)" else "" end) +
                            ", forwarder \(.fwd_cpu_s) CPU-s, \(.mbit_per_cpu_s) Mbit/CPU-s, machine \(.machine_busy_pct)% busy"' \
                            "$WORK/tests.jsonl")"
                    else
                        log "  $TEST_ERR"
                        errs+=("$TEST_ERR")
                    fi
                    # The pause between tests doubles as a probe of other load on the machine.
                    bg+=("$(busy_pct_over 1)")
                done
            fi
        fi
    fi
    # Teardown: stop the forwarder (it should exit 0 on SIGTERM), then the namespaces.
    if [[ -n $FWD_PID ]]; then
        if fwd_alive; then
            kill_pid "$FWD_PID"
            case $KILL_RC in 0) stop="clean" ;; 137) stop="SIGKILL needed" ;; *) stop="exit status $KILL_RC" ;; esac
        else
            kill_pid "$FWD_PID"
            stop="died before teardown (exit status $KILL_RC)"
        fi
        forget_pid "$FWD_PID"
        [[ $stop == clean ]] || { log "  forwarder stop: $stop"; errs+=("forwarder stop: $stop"); }
    fi
    ns_delete_all
    ((${#errs[@]} == 0)) || { ANY_FAIL=1; log "  FAILED: ${errs[*]}"; }
    jq -sc --arg variant "$v" --argjson round "$round" --arg desc "${DESC[$v]}" \
        --arg cmd "${FWD_CMD[*]#"$BIN/"}" --arg stop "$stop" --arg mtu "$mtu" \
        --argjson ping6 "$ping6_ok" --argjson bg "$(printf '%s\n' "${bg[@]}" | jq -R 'select(. != "") | tonumber' | jq -sc .)" \
        --argjson errors "$(printf '%s\n' "${errs[@]}" | jq -R 'select(. != "")' | jq -sc .)" '
        {variant: $variant, round: $round, ok: ($errors | length == 0), errors: $errors,
         command: $cmd, desc: $desc, mtu: ($mtu | tonumber? // null), ipv6_ok: $ping6,
         forwarder_stop: $stop, background_busy_pct: $bg, tests: (map({key: .test, value: del(.test)}) | from_entries)}' \
        "$WORK/tests.jsonl" >>"$RESULTS"
}

# ---- run ----------------------------------------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/forward-bench.XXXXXX)
RESULTS=$SCRATCH/results.jsonl
: >"$RESULTS"
GO_VERSION=""
log "scratch dir $SCRATCH; namespaces $NS_L/$NS_R; variants: ${SELECTED[*]}; -t $DUR -r $ROUNDS"
need_tools
build_all

BG_BEFORE=$(busy_pct_over 2)
((BG_BEFORE < BG_WARN)) || log "WARNING: the machine is already ${BG_BEFORE}% busy with other work; numbers will be noisy"
T_START=$(date +%s)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for ((r = 1; r <= ROUNDS; r++)); do
    for v in "${SELECTED[@]}"; do run_variant "$v" "$r"; done
done
ELAPSED=$(($(date +%s) - T_START))

# ---- report --------------------------------------------------------------------------------------
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no -- examples tun packet 2>/dev/null) ]]; then
    GIT_REV+=" + uncommitted changes"
fi
BUILDS_JSON=$(for b in "${!BUILD[@]}"; do printf '%s\t%s\n' "$b" "${BUILD[$b]}"; done |
    jq -Rsc 'split("\n") | map(select(. != "") | split("\t") | {key: .[0], value: .[1]}) | from_entries')
CPU_MODEL=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
jq -s --arg started "$STARTED" --argjson elapsed "$ELAPSED" --arg kernel "$(uname -r)" \
    --arg cpu "$CPU_MODEL" --argjson ncpu "$NCPU" --arg iperf "$(iperf3 --version 2>/dev/null | head -1)" \
    --arg go "$GO_VERSION" --arg wg "$WG_VERSION" --arg rev "$GIT_REV" --arg cmdline "$CMDLINE" --argjson builds "$BUILDS_JSON" \
    --argjson bg_before "$BG_BEFORE" --argjson bg_warn "$BG_WARN" \
    --argjson dur "$DUR" --argjson rounds "$ROUNDS" --argjson par "$PAR" --argjson udplen "$UDP_LEN" \
    --argjson order "$(printf '%s\n' "${SELECTED[@]}" | jq -R . | jq -sc .)" \
    --arg net "$NS_L:$DEV_L $ADDR_L/$PLEN $ADDR6_L/$PLEN6 <-> $NS_R:$DEV_R $ADDR_R/$PLEN $ADDR6_R/$PLEN6" '
    def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                       else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def rnd($n): if . == null then null else (. * pow(10; $n) | round) / pow(10; $n) end;
    def stat(f; $n): [.[] | f | select(. != null)] as $v
        | if ($v | length) == 0 then null
          else {median: ($v | median | rnd($n)), min: ($v | min), max: ($v | max), n: ($v | length)} end;
    {meta: {command: $cmdline, started: $started, elapsed_s: $elapsed, kernel: $kernel,
            cpu_model: $cpu, ncpu: $ncpu, iperf3: $iperf, go: $go, wireguard_go: $wg, tapwire: $rev,
            builds: $builds, background_busy_pct_before: $bg_before, background_warn_pct: $bg_warn,
            disturbed_runs: ([.[] | select((.background_busy_pct | max // 0) >= $bg_warn)] | length),
            background_busy_pct_max: ([.[].background_busy_pct[]] | max),
            duration_s: $dur, rounds: $rounds, order: $order, network: $net,
            tests: {tcp1: "iperf3 -t \($dur)", tcp4: "iperf3 -t \($dur) -P \($par)",
                    udp: "iperf3 -t \($dur) -u -b 0 -l \($udplen)"},
            units: {mbps: "Mbit/s received (iperf3 end.sum_received)",
                    fwd_cpu_s: "utime+stime of the forwarder process (all threads) during the iperf3 run, seconds",
                    mbit_per_cpu_s: "Mbit received per forwarder CPU-second",
                    loss_pct: "UDP datagrams lost, as counted by the iperf3 server",
                    machine_busy_pct: "busy share of all CPUs of the machine during the run"}},
     results: .,
     summary: (group_by(.variant) | map(
        {variant: .[0].variant, desc: .[0].desc, runs: length, ok_runs: ([.[] | select(.ok)] | length)}
        + ([.[].tests] as $t | {
            tcp1: {mbps: ($t | stat(.tcp1.mbps; 1)), fwd_cpu_s: ($t | stat(.tcp1.fwd_cpu_s; 2)),
                   mbit_per_cpu_s: ($t | stat(.tcp1.mbit_per_cpu_s; 0)), retransmits: ($t | stat(.tcp1.retransmits; 0))},
            tcp4: {mbps: ($t | stat(.tcp4.mbps; 1)), fwd_cpu_s: ($t | stat(.tcp4.fwd_cpu_s; 2)),
                   mbit_per_cpu_s: ($t | stat(.tcp4.mbit_per_cpu_s; 0)), retransmits: ($t | stat(.tcp4.retransmits; 0))},
            udp: {mbps: ($t | stat(.udp.mbps; 1)), sender_mbps: ($t | stat(.udp.sender_mbps; 1)),
                  loss_pct: ($t | stat(.udp.loss_pct; 2)), fwd_cpu_s: ($t | stat(.udp.fwd_cpu_s; 2)),
                  mbit_per_cpu_s: ($t | stat(.udp.mbit_per_cpu_s; 0))}}))
        | sort_by(.variant as $v | $order | index($v)))}
    ' "$RESULTS" >"$OUT.tmp" || die "could not build the JSON report from $RESULTS"
mv "$OUT.tmp" "$OUT"

# Markdown for BENCHMARKS.md on stdout.
jq -r --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" '
    def n0: if . == null then "–" else (. | round | tostring) end;
    def n2: if . == null then "–" else ((. * 100 | round) / 100 | tostring) end;
    def n1: if . == null then "–" else ((. * 10 | round) / 10 | tostring) end;
    def cell($s; f): if $s == null then "–"
        elif $s.n > 1 then "\($s.median | f) [\($s.min | f)–\($s.max | f)]" else ($s.median | f) end;
    .meta as $m
    | "**Forwarders, \($m.duration_s) s per iperf3 test, \($m.rounds) interleaved round\(if $m.rounds > 1 then "s, median [min–max]" else "" end)** — "
      + "kernel \($m.kernel), \($m.cpu_model) (\($m.ncpu) CPUs), \($date), \($m.iperf3), tapwire \($m.tapwire), wireguard-go \($m.wireguard_go)",
      ($m.builds | to_entries[] | select(.value == "stale")
       | "", "**WARNING: bench/bin/\(.key) is an older binary: building the current tree failed. These numbers are not of the current code.**"),
      (if $m.disturbed_runs > 0 or $m.background_busy_pct_before >= $m.background_warn_pct then
         "", "**WARNING: other work was using the machine: \($m.background_busy_pct_before)% busy before the run, "
           + "up to \($m.background_busy_pct_max)% between tests, in \($m.disturbed_runs) of \(.results | length) variant runs. These numbers are noisy.**"
       else empty end),
      "",
      "Command: `\($m.command)`",
      "",
      "| variant | TCP 1 stream Mbit/s | TCP 4 streams | UDP Mbit/s (loss) | forwarder CPU-s per test | Mbit per CPU-s |",
      "|---|---:|---:|---:|---:|---:|",
      (.summary[] |
        "| \(.variant)\(if .ok_runs < .runs then " (\(.runs - .ok_runs)/\(.runs) runs failed)" else "" end)"
        + " | \(cell(.tcp1.mbps; n0)) | \(cell(.tcp4.mbps; n0))"
        + " | \(cell(.udp.mbps; n0)) (\(.udp.loss_pct.median | n1)%)"
        + " | \(.tcp1.fwd_cpu_s.median | n2) / \(.tcp4.fwd_cpu_s.median | n2) / \(.udp.fwd_cpu_s.median | n2)"
        + " | \(.tcp1.mbit_per_cpu_s.median | n0) / \(.tcp4.mbit_per_cpu_s.median | n0) / \(.udp.mbit_per_cpu_s.median | n0) |"),
      "",
      "TCP retransmits (median, TCP 1 / TCP 4): "
      + ([.summary[] | "\(.variant) \(.tcp1.retransmits.median | n0)/\(.tcp4.retransmits.median | n0)"] | join(", ")) + ".",
      "CPU-s and Mbit per CPU-s are medians for TCP 1 / TCP 4 / UDP. UDP: `\($m.tests.udp)` (unlimited rate), Mbit/s received and loss as counted by the iperf3 server. MTU 1500; forwarder and iperf3 share \($m.ncpu) CPUs."
    ' "$OUT"

log "done in $((ELAPSED / 60))m$((ELAPSED % 60))s; JSON: $OUT"
((ANY_FAIL == 0)) || { log "some variants failed (see the JSON errors and the scratch dir)"; exit 1; }
