#!/usr/bin/env bash
# flood.sh -- goodput through a WireGuard tunnel while a third host floods the
# server's UDP port, tapwire and wireguard-go in the same run, in interleaved
# rounds.  See README.md.
#
#   cli ns: und0 192.0.2.2/24, tunnel 198.51.100.2/24 -- iperf3 client
#      | veth (underlay, MTU 1500)
#   srv ns: und0 192.0.2.1/24, att0 203.0.113.1/24, tunnel 198.51.100.1/24, port 51820 -- iperf3 server
#      | veth
#   att ns: att0 203.0.113.2/24 -- flood -to 192.0.2.1:51820
#
# Network rule: everything lives in three namespaces this script creates
# (flood-{cli,srv,att}-PID); nothing is configured in the root namespace; every
# load is bounded in time and count; on exit, error, Ctrl-C or SIGTERM the
# processes started here are killed by pid and the namespaces deleted.
set -uo pipefail

FLOOD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$FLOOD_DIR/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../peers/lib.sh
source "$FLOOD_DIR/../peers/lib.sh"

# ---- defaults -------------------------------------------------------------------
OUT=/tmp/flood.json
DUR=10                # seconds per iperf3 run
ROUNDS=1
RATE=50000            # flood messages per second
KINDS=initiation      # flood kinds (bench/flood -kind), each one flooded run
SOURCES=1             # source ports the attacker sends from
IMPLS=tapwire,wireguard-go
BIN_TW=""             # empty: build ./cmd/tapwire
KEEP=0
NO_INSTALL=${NO_INSTALL:-0}
PORT=5201             # iperf3
WG_PORT=51820
LEAD=1                # the flood starts this many seconds before iperf3, and ends as long after
BG_WARN=10            # % of all CPUs busy between tests counted as "disturbed"
# the wireguard-go the tunnel tests run against (tunnel/harness_test.go), built the same way
WGGO_VERSION=$(sed -n 's/^const wireguardGoVersion = "\(.*\)"$/\1/p' "$REPO/tunnel/harness_test.go" 2>/dev/null)
WGGO_VERSION=${WGGO_VERSION:-v0.0.0-20260522210424-ecfc5a8d5446}

NS_CLI=flood-cli-$$; NS_SRV=flood-srv-$$; NS_ATT=flood-att-$$
UND_SRV=192.0.2.1; UND_CLI=192.0.2.2; UND_PLEN=24
ATT_SRV=203.0.113.1; ATT_ADDR=203.0.113.2
IN_SRV=198.51.100.1; IN_CLI=198.51.100.2; IN_PLEN=24
MTU=1420

usage() {
    cat <<EOF
usage: $0 [options]
  -t SECS    iperf3 duration per run (default $DUR, max 60)
  -r N       rounds; each round runs every implementation, order alternating (default $ROUNDS)
  -R RATE    flood messages per second (default $RATE, max 2000000)
  -K KINDS   comma-separated flood kinds, one flooded run each after the baseline:
             initiation, garbage, truncated, transport, replay (default $KINDS)
  -S N       source ports the attacker sends from (default $SOURCES)
  -i IMPLS   comma-separated implementations: tapwire, wireguard-go (default $IMPLS)
  -a BIN     tapwire binary (default: go build ./cmd/tapwire from $REPO)
  -o FILE    JSON output (default $OUT)
  -k         keep the scratch dir (configs, keys, logs, iperf3 and flood JSON) even on success
  -n         install nothing (no apt-get; wireguard-go must be built already)
Must run as root. Progress goes to stderr, tables to stdout.
The Go toolchain is \$GO, else go on PATH, else /usr/local/go/bin/go.
EOF
}

CMDLINE="$0 $*"
while getopts "t:r:R:K:S:i:a:o:knh" opt; do
    case $opt in
        t) DUR=$OPTARG ;;     r) ROUNDS=$OPTARG ;;  R) RATE=$OPTARG ;;   K) KINDS=$OPTARG ;;
        S) SOURCES=$OPTARG ;; i) IMPLS=$OPTARG ;;   a) BIN_TW=$OPTARG ;; o) OUT=$OPTARG ;;
        k) KEEP=1 ;;          n) NO_INSTALL=1 ;;    h) usage; exit 0 ;;  *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(( $# == 0 )) || { usage >&2; exit 2; }
export NO_INSTALL
for v in DUR ROUNDS RATE SOURCES; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { log "$v must be a positive integer"; exit 2; }
done
(( DUR <= 60 )) || { log "-t is capped at 60 s"; exit 2; }
(( RATE <= 2000000 )) || { log "-R is capped at 2000000"; exit 2; }
(( SOURCES <= 1024 )) || { log "-S is capped at 1024"; exit 2; }
IFS=, read -r -a KIND_LIST <<<"$KINDS"
for k in "${KIND_LIST[@]}"; do
    [[ $k =~ ^(initiation|garbage|truncated|transport|replay)$ ]] || { log "unknown flood kind '$k'"; exit 2; }
done
(( ${#KIND_LIST[@]} > 0 )) || { log "-K needs at least one kind"; exit 2; }
IFS=, read -r -a IMPL_LIST <<<"$IMPLS"
for i in "${IMPL_LIST[@]}"; do
    [[ $i =~ ^(tapwire|wireguard-go)$ ]] || { log "unknown implementation '$i'"; exit 2; }
done
(( ${#IMPL_LIST[@]} > 0 )) || { log "-i needs at least one implementation"; exit 2; }
if [[ $EUID != 0 ]]; then
    echo "$0: needs root (network namespaces, TUN devices); run it with sudo" >&2
    exit 2
fi
[[ -z $BIN_TW || -x $BIN_TW ]] || { log "$BIN_TW is not an executable file"; exit 2; }

# ---- scratch dir, cleanup -----------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/flood-bench.XXXXXX) || die "mktemp failed"
SHARED=$SCRATCH
WORK=$SCRATCH
RESULTS=$SCRATCH/results.jsonl; : >"$RESULTS"
CREATED_NS=()
ANY_FAIL=0
FINISHED=0
IF_SRV=""; IF_CLI=""  # tunnel interfaces of the current run (their UAPI sockets are global)

teardown() {          # kill what this run started (by pid), delete its namespaces
    local p ns
    for p in "${AUX_PIDS[@]}"; do kill_pid "$p"; done
    for p in "${TUN_PIDS[@]}"; do kill_pid "$p"; done
    AUX_PIDS=(); TUN_PIDS=()
    for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    CREATED_NS=()
    local i
    for i in $IF_SRV $IF_CLI; do
        rm -f "/var/run/wireguard/$i.sock" "/var/run/tapwire/$i.pid"
    done
    IF_SRV=""; IF_CLI=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    teardown
    if (( FINISHED == 0 )) && [[ -s $RESULTS ]]; then
        write_json 2>/dev/null && log "partial results written to $OUT"
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
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
jn() { [[ -n ${1:-} ]] && echo "$1" || echo null; }      # number or null for JSON

busy_pct() {          # busy_pct "b0 t0" "b1 t1" -> % of all CPUs busy in between
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$1"; read -r b1 t1 <<<"$2"
    awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN{ if (t > 0) printf "%.0f", 100*b/t; else print 0 }'
}

BG=()                 # background busy % sampled in the pauses of the current run
pause() {             # 1 s between tests; samples what the machine does meanwhile
    local m0; m0=$(machine_ticks)
    sleep 1
    BG+=("$(busy_pct "$m0" "$(machine_ticks)")")
}

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status" 2>/dev/null; }

ns_create() {
    local ns
    for ns in "$NS_CLI" "$NS_SRV" "$NS_ATT"; do
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
            log "namespace $ns already exists"; return 1
        fi
        ip netns add "$ns" || return 1
        CREATED_NS+=("$ns")
        ip -n "$ns" link set lo up || return 1
    done
    ip link add und0 netns "$NS_SRV" mtu 1500 type veth peer name und0 netns "$NS_CLI" mtu 1500 || return 1
    ip -n "$NS_SRV" addr add "$UND_SRV/$UND_PLEN" dev und0 || return 1
    ip -n "$NS_CLI" addr add "$UND_CLI/$UND_PLEN" dev und0 || return 1
    ip link add att0 netns "$NS_SRV" mtu 1500 type veth peer name att0 netns "$NS_ATT" mtu 1500 || return 1
    ip -n "$NS_SRV" addr add "$ATT_SRV/$UND_PLEN" dev att0 || return 1
    ip -n "$NS_ATT" addr add "$ATT_ADDR/$UND_PLEN" dev att0 || return 1
    local d
    for d in "$NS_SRV und0" "$NS_CLI und0" "$NS_SRV att0" "$NS_ATT att0"; do
        # shellcheck disable=SC2086
        ip -n ${d% *} link set ${d#* } up || return 1
    done
    ip -n "$NS_ATT" route add "$UND_SRV/32" via "$ATT_SRV" || return 1
    wait_until 5 nsx "$NS_CLI" ping -c1 -W1 "$UND_SRV" || { log "underlay veth not reachable"; return 1; }
    wait_until 5 nsx "$NS_ATT" ping -c1 -W1 "$UND_SRV" || { log "attacker veth not reachable"; return 1; }
}

keys() {              # keys -> $WORK/{srv,cli}.{key,pub}
    ( umask 077
      "$TW" genkey >"$WORK/srv.key" && "$TW" pubkey <"$WORK/srv.key" >"$WORK/srv.pub" &&
      "$TW" genkey >"$WORK/cli.key" && "$TW" pubkey <"$WORK/cli.key" >"$WORK/cli.pub" )
}

tunnel_ready() { nsx "$NS_CLI" ping -n -c1 -W1 "$IN_SRV"; }

up_tapwire() {        # tapwire up -f at both ends
    IF_SRV=fts$$; IF_CLI=ftc$$
    ( umask 077
      cat >"$WORK/$IF_SRV.conf" <<CONF
[Interface]
PrivateKey = $(<"$WORK/srv.key")
Address = $IN_SRV/$IN_PLEN
ListenPort = $WG_PORT
MTU = $MTU

[Peer]
PublicKey = $(<"$WORK/cli.pub")
AllowedIPs = $IN_CLI/32
CONF
      cat >"$WORK/$IF_CLI.conf" <<CONF
[Interface]
PrivateKey = $(<"$WORK/cli.key")
Address = $IN_CLI/$IN_PLEN
MTU = $MTU

[Peer]
PublicKey = $(<"$WORK/srv.pub")
AllowedIPs = $IN_SRV/32
Endpoint = $UND_SRV:$WG_PORT
CONF
    ) || return 1
    bench_spawn "$NS_SRV" srv "$TW" up -f "$WORK/$IF_SRV.conf"; SRV_PID=$SPAWNED_PID
    wait_until 15 nsx "$NS_SRV" ss -Hlun "sport = :$WG_PORT" || { log "tapwire server did not listen"; return 1; }
    bench_spawn "$NS_CLI" cli "$TW" up -f "$WORK/$IF_CLI.conf"; CLI_PID=$SPAWNED_PID
    wait_until 15 ns_has_addr "$NS_CLI" "$IF_CLI" "$IN_CLI" || { log "tapwire client did not come up"; return 1; }
}

up_wggo() {           # wireguard-go -f at both ends, configured with wg
    IF_SRV=fws$$; IF_CLI=fwc$$
    local i
    for i in $IF_SRV $IF_CLI; do
        [[ -e /var/run/wireguard/$i.sock ]] && { log "/var/run/wireguard/$i.sock exists"; return 1; }
    done
    bench_spawn "$NS_SRV" srv env LOG_LEVEL=error "$WGGO" -f "$IF_SRV"; SRV_PID=$SPAWNED_PID
    bench_spawn "$NS_CLI" cli env LOG_LEVEL=error "$WGGO" -f "$IF_CLI"; CLI_PID=$SPAWNED_PID
    wait_until 10 test -S "/var/run/wireguard/$IF_SRV.sock" || { log "wireguard-go server did not come up"; return 1; }
    wait_until 10 test -S "/var/run/wireguard/$IF_CLI.sock" || { log "wireguard-go client did not come up"; return 1; }
    nsx "$NS_SRV" wg set "$IF_SRV" private-key "$WORK/srv.key" listen-port "$WG_PORT" \
        peer "$(<"$WORK/cli.pub")" allowed-ips "$IN_CLI/32" || return 1
    nsx "$NS_CLI" wg set "$IF_CLI" private-key "$WORK/cli.key" \
        peer "$(<"$WORK/srv.pub")" allowed-ips "$IN_SRV/32" endpoint "$UND_SRV:$WG_PORT" || return 1
    ip -n "$NS_SRV" addr add "$IN_SRV/$IN_PLEN" dev "$IF_SRV" || return 1
    ip -n "$NS_CLI" addr add "$IN_CLI/$IN_PLEN" dev "$IF_CLI" || return 1
    ip -n "$NS_SRV" link set "$IF_SRV" mtu "$MTU" up || return 1
    ip -n "$NS_CLI" link set "$IF_CLI" mtu "$MTU" up || return 1
}

counters() {          # counters IMPL -> JSON object of the server's counters (tapwire), {} otherwise
    local c=""
    if [[ $1 == tapwire ]]; then
        c=$(nsx "$NS_SRV" timeout 5 "$TW" status --json "$IF_SRV" 2>/dev/null |
            jq -c 'if type == "array" then .[0] else . end | .counters // {}' 2>/dev/null)
    fi
    echo "${c:-"{}"}"
}

srv_listening() { nsx "$NS_SRV" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

# run_iperf ID -> one TCP stream client -> server for $DUR s, iperf3 JSON in $WORK/ID.json;
# MBPS = Mbit/s received, empty when iperf3 failed. Not in a subshell: the trap
# must know the pids.
MBPS=""
run_iperf() {
    local id=$1 srv cli
    MBPS=""
    aux_spawn "$NS_SRV" "$id-iperf-server" timeout $((DUR + 40)) iperf3 -s -1 -p "$PORT" -B "$IN_SRV"
    srv=$SPAWNED_PID
    if ! wait_until 5 srv_listening; then
        kill_pid "$srv"; echo "iperf3 server did not start" >"$WORK/$id.err"; return 1
    fi
    nsx "$NS_CLI" timeout $((DUR + 20)) iperf3 -c "$IN_SRV" -p "$PORT" -t "$DUR" -J --connect-timeout 3000 \
        >"$WORK/$id.json" 2>"$WORK/$id.err" </dev/null &
    cli=$!; AUX_PIDS+=("$cli")
    wait "$cli"
    kill_pid "$srv"
    MBPS=$(jq -r '.end.sum_received.bits_per_second // empty | . / 1e6 | . * 10 | round / 10' "$WORK/$id.json" 2>/dev/null)
    [[ -n $MBPS ]]
}

# ---- one implementation, one round ---------------------------------------------------------
# measure ID -> runs iperf3 and sets RUN to a JSON object: mbps, the server's RSS
# before and after, its CPU time, the machine's busy share and the server's
# counters (tapwire: their increase, without zeros) during the run.
RUN=""
measure() {
    local id=$1 r0 r1 c0 c1 p0 p1 m0 m1
    r0=$(rss_kb "$SRV_PID"); c0=$(counters "$IMPL")
    p0=$(pid_ticks "$SRV_PID"); m0=$(machine_ticks)
    run_iperf "$id"
    p1=$(pid_ticks "$SRV_PID"); m1=$(machine_ticks)
    r1=$(rss_kb "$SRV_PID"); c1=$(counters "$IMPL")
    RUN=$(jq -nc --argjson mbps "$(jn "$MBPS")" --argjson r0 "$(jn "$r0")" --argjson r1 "$(jn "$r1")" \
        --argjson c0 "$c0" --argjson c1 "$c1" --argjson cpu "$(( p1 - p0 ))" --argjson hz "$CLK_TCK" \
        --argjson busy "$(busy_pct "$m0" "$m1")" --arg err "$(tail -c 300 "$WORK/$id.err" 2>/dev/null)" \
        '{mbps: $mbps, rss_kb_before: $r0, rss_kb_after: $r1, server_cpu_s: ($cpu / $hz), machine_busy_pct: $busy,
          counters: ($c1 | with_entries(.value -= ($c0[.key] // 0)) | with_entries(select(.value != 0))),
          error: (if $mbps == null then "iperf3 failed: \($err)" else null end)}')
}

run_one() {           # run_one IMPL ROUND SLOT
    local round=$2 slot=$3 err="" k id base fpid fl args t0
    IMPL=$1
    WORK=$SCRATCH/$IMPL.r$round; mkdir -p "$WORK"; : >"$WORK/runs.jsonl"
    TUN_PIDS=(); AUX_PIDS=(); BG=(); SRV_PID=""; CLI_PID=""
    log "=== $IMPL (round $round)"
    if ! ns_create; then
        err="namespace setup failed"
    elif ! keys; then
        err="key generation failed"
    elif [[ $IMPL == tapwire ]] && ! up_tapwire; then
        err="tapwire did not come up (logs in $WORK)"
    elif [[ $IMPL == wireguard-go ]] && ! up_wggo; then
        err="wireguard-go did not come up (logs in $WORK)"
    else
        t0=$(date +%s%N)
        wait_until 20 tunnel_ready || err="no connectivity client -> server through the tunnel"
        log "  up: pids server $SRV_PID, client $CLI_PID; tunnel answered after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    fi
    # Each flood has a baseline of its own just before it, so that a drift of
    # the machine over the run does not show as goodput kept or lost.
    for k in "${KIND_LIST[@]}"; do
        [[ -z $err ]] || break
        pause
        measure "baseline-$k"; base=$RUN
        id=flood-$k
        pause
        args=(-q -to "$UND_SRV:$WG_PORT" -kind "$k" -rate "$RATE" -duration "$((DUR + 2 * LEAD))s" -sources "$SOURCES")
        case $k in
            initiation|truncated) args+=(-pub "$(<"$WORK/srv.pub")") ;;
            replay) args+=(-capture "$NS_SRV:und0" -pool 1024 -capture-timeout "$((LEAD + 5))s") ;;
        esac
        # the flood ends by itself (-duration); timeout bounds it all the same
        aux_spawn "$NS_ATT" "$id" timeout $((DUR + 2 * LEAD + 30)) "$FLOOD" "${args[@]}"; fpid=$SPAWNED_PID
        sleep "$LEAD"
        measure "$id"
        wait "$fpid"
        fl=$(tail -1 "$WORK/$id.log" 2>/dev/null | jq -c 'select(type == "object")' 2>/dev/null)
        [[ -n $fl ]] || fl=$(jq -nc --arg log "$(tail -c 300 "$WORK/$id.log" 2>/dev/null)" '{error: "no summary from the flood tool: \($log)"}')
        jq -nc --arg kind "$k" --argjson base "$base" --argjson run "$RUN" --argjson flood "$fl" '
            $run + {kind: $kind, baseline: $base, flood: $flood,
                    kept_pct: (if $run.mbps != null and ($base.mbps // 0) > 0
                               then ($run.mbps / $base.mbps * 1000 | round / 10) else null end)}' >>"$WORK/runs.jsonl"
        log "  $k at $RATE/s: $(tail -1 "$WORK/runs.jsonl" | jq -r '"\(.baseline.mbps // "FAILED") Mbit/s before, \(.mbps // "FAILED") under the flood (\(.kept_pct // "-")% kept); server RSS \(.rss_kb_before // "?") -> \(.rss_kb_after // "?") kB; flood sent \(.flood.sent // "?") at \(.flood.achieved_rate // 0 | round)/s; counters \(.counters | to_entries | map(select(.key | test("^gso_|^gro_") | not) | "\(.key) \(.value)") | join(", "))"')"
        [[ $(tail -1 "$WORK/runs.jsonl" | jq -r '.kept_pct // empty') ]] || ANY_FAIL=1
    done
    if [[ -z $err ]] && ! pids_alive "$SRV_PID" "$CLI_PID"; then
        err="a tunnel process died during the run (logs in $WORK)"
    fi
    [[ -n $err ]] && { ANY_FAIL=1; log "  FAILED: $err"; }
    jq -sc --arg impl "$IMPL" --argjson round "$round" --argjson slot "$slot" --arg error "$err" \
        --argjson bg "$(printf '%s\n' "${BG[@]}" | jq -sc 'map(tonumber? // empty)')" \
        '{impl: $impl, round: $round, order_in_round: $slot, ok: ($error == ""),
          error: (if $error == "" then null else $error end), background_busy_pct: $bg, runs: .}' \
        "$WORK/runs.jsonl" >>"$RESULTS"
    teardown
}

# ---- report --------------------------------------------------------------------------------
write_json() {
    jq -s --argjson meta "$(<"$SCRATCH/meta.json")" --arg ended "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --argjson finished "$FINISHED" '
    def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor]
                       else (.[length/2 - 1] + .[length/2]) / 2 end;
    def stat($v): if ($v | length) == 0 then null
                  else {median: ($v | median), min: ($v | min), max: ($v | max), n: ($v | length)} end;
    . as $res
    | {meta: ($meta + {ended: $ended, complete: ($finished == 1)}),
       results: $res,
       summary: [ ($res | map(.impl) | unique)[] as $i | $meta.kinds[] as $k
                  | [ $res[] | select(.impl == $i and .ok) | .runs[] | select(.kind == $k and .kept_pct != null) ] as $x
                  | select($x | length > 0)
                  | {impl: $i, kind: $k, runs: ($x | length), kept_pct: stat([$x[].kept_pct]),
                     mbps: stat([$x[].mbps]), baseline_mbps: stat([$x[].baseline.mbps]),
                     rss_growth_kb: stat([$x[] | select(.rss_kb_after != null and .rss_kb_before != null)
                                          | .rss_kb_after - .rss_kb_before]),
                     rss_kb_after: stat([$x[].rss_kb_after | select(. != null)]),
                     server_cpu_s: stat([$x[].server_cpu_s]),
                     flood_rate: stat([$x[].flood.achieved_rate | select(. != null) | round]),
                     cookie_replies: stat([$x[].flood.cookie_replies | select(. != null)])} ]}' \
        "$RESULTS" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
}

print_table() {
    local fmt='%-13s %-3s %-11s %9s %9s %6s %8s %8s %13s %6s  %s\n'
    echo
    echo "one TCP stream client -> server through the tunnel, ${DUR}s per run; a baseline run, then one under a flood from a third namespace at the server's UDP port (${RATE}/s asked, $SOURCES source port(s))"
    # shellcheck disable=SC2059
    printf "$fmt" impl rd flood "base Mb/s" "Mbit/s" "kept%" "flood/s" "replies" "srv RSS MiB" "cpu s" "server counters (tapwire) / note"
    jq -r '.results[] | . as $r
        | if (.runs | length) == 0 then [.impl, .round, "-", "-", "-", "-", "-", "-", "-", "-", "FAILED: \(.error)"]
          else .runs[] | [$r.impl, $r.round, .kind, (.baseline.mbps // "-"), (.mbps // "-"), (.kept_pct // "-"),
                 (.flood.achieved_rate // "-" | if type == "number" then round else . end),
                 (.flood.replies // "-"),
                 "\(.rss_kb_before // 0 | ./1024*10 | round/10)->\(.rss_kb_after // 0 | ./1024*10 | round/10)",
                 (.server_cpu_s | .*100 | round/100),
                 ([.counters | to_entries[] | select(.key | test("^gso_|^gro_") | not) | "\(.key) \(.value)"] | join(", "))
                 + (if .error then " ERROR: \(.error)" else "" end) + (if .flood.error then " FLOOD: \(.flood.error)" else "" end)
                 + (if $r.error then " FAILED: \($r.error)" else "" end)]
          end | @tsv' "$OUT" |
    while IFS=$'\t' read -r i rd k b m kp fr rp rss cpu n; do
        # shellcheck disable=SC2059
        printf "$fmt" "$i" "$rd" "$k" "$b" "$m" "$kp" "$fr" "$rp" "$rss" "$cpu" "$n"
    done
    echo
    echo "summary: goodput kept under each flood (% of the baseline just before it), median [min-max] over rounds"
    jq -r '.summary[]
        | "  \(.impl) \(.kind): \(.kept_pct.median)% [\(.kept_pct.min)-\(.kept_pct.max)] kept, \(.mbps.median) of \(.baseline_mbps.median) Mbit/s; server RSS +\(.rss_growth_kb.median) kB to \(.rss_kb_after.median / 1024 | round) MiB; flood \(.flood_rate.median)/s, \(.cookie_replies.median) cookie replies back"' "$OUT"
    jq -r --argjson w "$BG_WARN" '.meta as $m | [.results[].background_busy_pct[]?] as $bg
        | if ($m.background_busy_pct_before >= $w) or (($bg | max // 0) >= $w) then
            "WARNING: other work was using the machine (\($m.background_busy_pct_before)% busy before the run, up to \($bg | max)% between tests): noisy figures"
          else empty end' "$OUT"
}

# ---- dependencies, binaries -------------------------------------------------------------------
log "scratch dir $SCRATCH"
need_cmd ip iproute2       || die "ip (iproute2) missing"
need_cmd ss iproute2       || die "ss (iproute2) missing"
need_cmd iperf3 iperf3     || die "iperf3 missing"
need_cmd jq jq             || die "jq missing"
need_cmd ping iputils-ping || die "ping missing"
need_cmd timeout coreutils || die "timeout missing"
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing"

GOCMD=${GO:-$(command -v go 2>/dev/null || true)}
[[ -z $GOCMD && -x /usr/local/go/bin/go ]] && GOCMD=/usr/local/go/bin/go
[[ -n $GOCMD ]] || die "no go toolchain (set \$GO)"
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$([[ -n $(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)
log "building ./bench/flood$([[ -z $BIN_TW ]] && echo ' and ./cmd/tapwire') at $GIT_REV$([[ $GIT_DIRTY == true ]] && echo ' (working tree modified)')"
( cd "$REPO" && "$GOCMD" build -o "$SCRATCH/flood" ./bench/flood ) >"$SCRATCH/build.log" 2>&1 ||
    { cat "$SCRATCH/build.log" >&2; die "go build ./bench/flood failed"; }
FLOOD=$SCRATCH/flood
TW_SRC=given
if [[ -z $BIN_TW ]]; then
    ( cd "$REPO" && "$GOCMD" build -o "$SCRATCH/tapwire" ./cmd/tapwire ) >>"$SCRATCH/build.log" 2>&1 ||
        { cat "$SCRATCH/build.log" >&2; die "go build ./cmd/tapwire failed (give -a BIN)"; }
    BIN_TW=$SCRATCH/tapwire
    TW_SRC="built from $REPO at $GIT_REV (working tree modified: $GIT_DIRTY)"
fi
TW=$BIN_TW            # also makes the keys for wireguard-go
WGGO=""
if [[ " ${IMPL_LIST[*]} " == *" wireguard-go "* ]]; then
    need_cmd wg wireguard-tools || die "wg (wireguard-tools) missing"
    # the tunnel tests' cache (tunnel/harness_test.go wireguardGo), shared with them
    WGGO_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/tapwire-test/wireguard-go-$WGGO_VERSION
    WGGO=$WGGO_DIR/wireguard
    if [[ ! -x $WGGO ]]; then
        [[ $NO_INSTALL == 1 ]] && die "wireguard-go not built at $WGGO and -n given"
        log "building wireguard-go $WGGO_VERSION from the Go module proxy into $WGGO_DIR"
        ( cd "$REPO" && GOBIN=$WGGO_DIR GOFLAGS=-mod=mod timeout 900 "$GOCMD" install "golang.zx2c4.com/wireguard@$WGGO_VERSION" ) \
            >>"$SCRATCH/build.log" 2>&1 || { cat "$SCRATCH/build.log" >&2; die "building wireguard-go failed"; }
    fi
fi

m0=$(machine_ticks); sleep 2; BG_BEFORE=$(busy_pct "$m0" "$(machine_ticks)")
(( BG_BEFORE >= BG_WARN )) && log "WARNING: the machine is already ${BG_BEFORE}% busy before the run; figures will be noisy"
jq -n --arg started "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" --argjson ncpu "$NCPU" \
    --arg cpu "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" \
    --arg iperf "$(iperf3 --version 2>/dev/null | head -1)" --arg cmd "$CMDLINE" \
    --arg rev "$GIT_REV" --argjson dirty "$GIT_DIRTY" --arg tw "$BIN_TW" --arg twsrc "$TW_SRC" \
    --arg twver "$("$BIN_TW" version 2>&1 | head -3)" --arg wggo "$WGGO_VERSION" \
    --argjson impls "$(printf '%s\n' "${IMPL_LIST[@]}" | jq -R . | jq -sc .)" \
    --argjson kinds "$(printf '%s\n' "${KIND_LIST[@]}" | jq -R . | jq -sc .)" \
    --argjson dur "$DUR" --argjson rounds "$ROUNDS" --argjson rate "$RATE" --argjson sources "$SOURCES" \
    --argjson lead "$LEAD" --argjson mtu "$MTU" --argjson bg "$BG_BEFORE" --argjson bgw "$BG_WARN" '
    {started: $started, command: $cmd, kernel: $kernel, ncpu: $ncpu, cpu_model: $cpu, iperf3: $iperf,
     git_revision: $rev, git_dirty: $dirty, tapwire: {path: $tw, source: $twsrc, version: $twver},
     wireguard_go: $wggo, impls: $impls, kinds: $kinds, duration_s: $dur, rounds: $rounds,
     flood: {rate: $rate, sources: $sources, lead_s: $lead}, mtu: $mtu,
     background_busy_pct_before: $bg, background_warn_pct: $bgw,
     layout: {client: "und0 192.0.2.2/24, tunnel 198.51.100.2/24 (ns flood-cli-*)",
              server: "und0 192.0.2.1/24, att0 203.0.113.1/24, tunnel 198.51.100.1/24, UDP 51820 (ns flood-srv-*)",
              attacker: "att0 203.0.113.2/24, flood -to 192.0.2.1:51820 (ns flood-att-*)"},
     units: {mbps: "Mbit/s received by the iperf3 server (one TCP stream client -> server)",
             kept_pct: "100 * mbps under the flood / the same run'"'"'s baseline mbps",
             rss_kb: "VmRSS of the server tunnel process before and after the run",
             server_cpu_s: "utime+stime of the server tunnel process during the iperf3 run",
             counters: "tapwire status --json counters of the server: increase during the run (zeros left out)",
             replies: "datagrams the server sent back to the flood (cookie replies)",
             flood: "the flood tool'"'"'s summary (sent, achieved_rate, cookie_replies ...)"}}' \
    >"$SCRATCH/meta.json" || die "could not write meta"

# ---- run ---------------------------------------------------------------------------------------
log "implementations: ${IMPL_LIST[*]}; ${ROUNDS} round(s), ${DUR}s per iperf3 run, floods: ${KIND_LIST[*]} at $RATE/s"
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${IMPL_LIST[@]}")
    # alternate the order so drifts hit both alike
    (( ${#IMPL_LIST[@]} == 2 && round % 2 == 0 )) && order=("${IMPL_LIST[1]}" "${IMPL_LIST[0]}")
    slot=0
    for impl in "${order[@]}"; do
        slot=$((slot + 1))
        run_one "$impl" "$round" "$slot"
    done
    write_json || die "could not write $OUT"
done
FINISHED=1
write_json || die "could not write $OUT"
print_table
echo
echo "JSON: $OUT   (kernel $(uname -r), $NCPU CPUs, tapwire $GIT_REV, wireguard-go $WGGO_VERSION)"
(( ANY_FAIL == 0 ))
