#!/usr/bin/env bash
# bridge.sh -- full-size Ethernet through tapwire's TAP mode in OpenVPN's
# "server-bridge" layout, two tapwire binaries (before/after a change)
# compared in the same run, in interleaved rounds.  See README.md.
#
#   lan ns: lan0 198.51.100.100/24 (MTU 1500)
#      | veth
#   hub ns: br0 = { lanp, tapwire tap (Bridge = br0) }     und0 192.0.2.1/24
#                                                             | veth (underlay, MTU 1500)
#   cli ns: tapwire tap 198.51.100.11/24, peer 192.0.2.1:51820  und0 192.0.2.2/24
#
# Network rule: everything lives in three namespaces this script creates
# (bbr-{lan,hub,cli}-PID); nothing is configured in the root namespace; every
# load is bounded in time; on exit, error, Ctrl-C or SIGTERM the processes
# started here are killed by pid and the namespaces deleted.
set -uo pipefail

BRIDGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BRIDGE_DIR/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../peers/lib.sh
source "$BRIDGE_DIR/../peers/lib.sh"

# ---- defaults -------------------------------------------------------------------
OUT=/tmp/bridge.json
DUR=5                 # seconds per iperf3 run
ROUNDS=3
RATES=100M,1G         # UDP target rates (iperf3 -b)
BIN_AFTER=""          # empty: build ./cmd/tapwire
BIN_BEFORE=""         # empty: only "after" runs
FORCE_MTU=""          # -m: MTU = line in both configs
KEEP=0
NO_INSTALL=${NO_INSTALL:-0}
UDP_LEN=1472          # 1500-byte IPv4 packets, 1514-byte Ethernet frames
PING_COUNT=20; PING_INT=0.05; PING_SIZE=1472
PORT=5201
BG_WARN=10            # % of all CPUs busy between tests counted as "disturbed"

NS_LAN=bbr-lan-$$; NS_HUB=bbr-hub-$$; NS_CLI=bbr-cli-$$
IF_HUB=bbrh$$         # tapwire interface names = config file names; global
IF_CLI=bbrc$$         # because of /var/run/wireguard/NAME.sock, hence the pid
LAN_ADDR=198.51.100.100; CLI_ADDR=198.51.100.11; LAN_PLEN=24
UND_HUB=192.0.2.1; UND_CLI=192.0.2.2; UND_PLEN=24

usage() {
    cat <<EOF
usage: $0 [options]
  -a BIN     tapwire binary "after" (default: go build ./cmd/tapwire from $REPO)
  -b BIN     tapwire binary "before" (optional; without it only "after" runs)
  -t SECS    iperf3 duration per test (default $DUR, max 60)
  -r N       rounds; each round runs both binaries, order alternating (default $ROUNDS)
  -u RATES   comma-separated UDP rates for iperf3 -b (default $RATES)
  -m MTU     put "MTU = MTU" in both configs (default: none, each binary's default)
  -o FILE    JSON output (default $OUT)
  -k         keep the scratch dir (configs, keys, logs, iperf3 JSON) even on success
  -n         install nothing (no apt-get)
Must run as root. Progress goes to stderr, tables to stdout.
The Go toolchain for the default build is \$GO, else go on PATH, else /usr/local/go/bin/go.
EOF
}

CMDLINE="$0 $*"
while getopts "a:b:t:r:u:m:o:knh" opt; do
    case $opt in
        a) BIN_AFTER=$OPTARG ;;  b) BIN_BEFORE=$OPTARG ;;  t) DUR=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;     u) RATES=$OPTARG ;;       m) FORCE_MTU=$OPTARG ;;
        o) OUT=$OPTARG ;;        k) KEEP=1 ;;              n) NO_INSTALL=1 ;;
        h) usage; exit 0 ;;      *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(( $# == 0 )) || { usage >&2; exit 2; }
export NO_INSTALL
for v in DUR ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { log "-${v:0:1} must be a positive integer"; exit 2; }
done
(( DUR <= 60 )) || { log "-t is capped at 60 s"; exit 2; }
[[ -z $FORCE_MTU || $FORCE_MTU =~ ^[1-9][0-9]{2,4}$ ]] || { log "-m must be an MTU in bytes"; exit 2; }
IFS=, read -r -a RATE_LIST <<<"$RATES"
for r in "${RATE_LIST[@]}"; do
    [[ $r =~ ^[1-9][0-9]*[KMG]?$ ]] || { log "bad UDP rate '$r' (e.g. 100M, 1G)"; exit 2; }
done
(( ${#RATE_LIST[@]} > 0 )) || { log "-u needs at least one rate"; exit 2; }
if [[ $EUID != 0 ]]; then
    echo "$0: needs root (network namespaces, TAP devices); run it with sudo" >&2
    exit 2
fi
for b in "$BIN_AFTER" "$BIN_BEFORE"; do
    [[ -z $b || -x $b ]] || { log "$b is not an executable file"; exit 2; }
done

# ---- scratch dir, cleanup -----------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/bridge-bench.XXXXXX) || die "mktemp failed"
SHARED=$SCRATCH       # lib.sh's apt_install logs to $SHARED/apt.log
WORK=$SCRATCH
RESULTS=$SCRATCH/results.jsonl; : >"$RESULTS"
CREATED_NS=()
ANY_FAIL=0
FINISHED=0

teardown() {          # kill what this run started (by pid), delete its namespaces
    local p ns
    for p in "${AUX_PIDS[@]}"; do kill_pid "$p"; done
    for p in "${TUN_PIDS[@]}"; do kill_pid "$p"; done
    AUX_PIDS=(); TUN_PIDS=()
    for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    CREATED_NS=()
    rm -f "/var/run/wireguard/$IF_HUB.sock" "/var/run/wireguard/$IF_CLI.sock" \
          "/var/run/tapwire/$IF_HUB.pid" "/var/run/tapwire/$IF_CLI.pid"
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

ns_create() {
    local ns
    for ns in "$NS_LAN" "$NS_HUB" "$NS_CLI"; do
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
            log "namespace $ns already exists"; return 1
        fi
        ip netns add "$ns" || return 1
        CREATED_NS+=("$ns")
        ip -n "$ns" link set lo up || return 1
    done
    # LAN host and the hub's bridge
    ip link add lan0 netns "$NS_LAN" mtu 1500 type veth peer name lanp netns "$NS_HUB" mtu 1500 || return 1
    ip -n "$NS_LAN" addr add "$LAN_ADDR/$LAN_PLEN" dev lan0 || return 1
    ip -n "$NS_HUB" link add br0 type bridge stp_state 0 forward_delay 0 || return 1
    ip -n "$NS_HUB" link set lanp master br0 || return 1
    ip -n "$NS_HUB" link set lanp up || return 1
    ip -n "$NS_HUB" link set br0 up || return 1
    ip -n "$NS_LAN" link set lan0 up || return 1
    # underlay hub <-> client
    ip link add und0 netns "$NS_HUB" mtu 1500 type veth peer name und0 netns "$NS_CLI" mtu 1500 || return 1
    ip -n "$NS_HUB" addr add "$UND_HUB/$UND_PLEN" dev und0 || return 1
    ip -n "$NS_CLI" addr add "$UND_CLI/$UND_PLEN" dev und0 || return 1
    ip -n "$NS_HUB" link set und0 up || return 1
    ip -n "$NS_CLI" link set und0 up || return 1
    wait_until 5 nsx "$NS_CLI" ping -c1 -W1 "$UND_HUB" || { log "underlay veth not reachable"; return 1; }
}

write_configs() {     # write_configs BIN -> $WORK/$IF_HUB.conf, $WORK/$IF_CLI.conf
    local bin=$1 mtu=""
    [[ -n $FORCE_MTU ]] && mtu="MTU = $FORCE_MTU"
    ( umask 077
      "$bin" genkey >"$WORK/hub.key" && "$bin" pubkey <"$WORK/hub.key" >"$WORK/hub.pub" &&
      "$bin" genkey >"$WORK/cli.key" && "$bin" pubkey <"$WORK/cli.key" >"$WORK/cli.pub" || exit 1
      cat >"$WORK/$IF_HUB.conf" <<CONF
[Interface]
PrivateKey = $(<"$WORK/hub.key")
ListenPort = 51820
Mode = tap
Bridge = br0
$mtu

[Peer]
PublicKey = $(<"$WORK/cli.pub")
CONF
      cat >"$WORK/$IF_CLI.conf" <<CONF
[Interface]
PrivateKey = $(<"$WORK/cli.key")
Address = $CLI_ADDR/$LAN_PLEN
Mode = tap
$mtu

[Peer]
PublicKey = $(<"$WORK/hub.pub")
Endpoint = $UND_HUB:51820
PersistentKeepalive = 25
CONF
    )
}

hub_ready() {         # the tap is a port of br0 and the UDP port is open
    ip -n "$NS_HUB" -o link show master br0 2>/dev/null | grep -q ": $IF_HUB:" &&
        nsx "$NS_HUB" ss -Hlun "sport = :51820" 2>/dev/null | grep -q .
}
cli_ready() { ns_has_addr "$NS_CLI" "$IF_CLI" "$CLI_ADDR"; }
up_or_dead() {        # up_or_dead CHECK PID -> 0 up, 2 process gone, 1 not yet
    "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 2
    return 1
}
wait_up() {           # wait_up SECONDS CHECK PID
    local deadline=$(( $(date +%s) + $1 )) rc
    while :; do
        up_or_dead "$2" "$3"; rc=$?
        (( rc == 0 )) && return 0
        (( rc == 2 )) && return 1
        (( $(date +%s) >= deadline )) && return 1
        sleep 0.1
    done
}

link_mtu() { ip -n "$1" -o link show dev "$2" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p'; }

# ---- measurements ---------------------------------------------------------------------
# Each test appends one JSON object to $WORK/tests.jsonl.
HUB_PID=""; CLI_PID=""

run_ping() {          # run_ping ID FROM_NS TO_ADDR
    local id=$1 ns=$2 dst=$3 out pid tx rx errs note
    nsx "$ns" timeout 30 ping -n -M 'do' -s "$PING_SIZE" -c "$PING_COUNT" -i "$PING_INT" -W 1 "$dst" \
        >"$WORK/$id.out" 2>&1 </dev/null &
    pid=$!; AUX_PIDS+=("$pid")
    wait "$pid"
    out=$(<"$WORK/$id.out")
    tx=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")
    rx=$(sed -n 's/.* \([0-9]*\) \(packets \)\{0,1\}received.*/\1/p' <<<"$out")
    errs=$(sed -n 's/.* +\([0-9]*\) errors.*/\1/p' <<<"$out")
    # what came back instead of replies (local "message too long", ICMP "frag needed"), counted
    note=$(grep -v -e '^PING' -e '^---' -e 'packets transmitted' -e '^rtt' -e ' bytes from ' -e '^$' <<<"$out" |
           sed 's/icmp_seq=[0-9]* //' | sort | uniq -c | sed 's/^ *//' | head -3 | paste -sd ';' -)
    jq -nc --arg test "$id" --arg from "$ns" --arg to "$dst" --argjson size "$PING_SIZE" \
        --argjson count "$PING_COUNT" --argjson tx "$(jn "$tx")" --argjson rx "$(jn "$rx")" \
        --argjson errs "$(jn "$errs")" --arg note "$note" --arg raw "$out" \
        '{test: $test, kind: "ping", size: $size, count: $count, sent: $tx, received: $rx,
          lost: (if $tx != null and $rx != null then $tx - $rx else null end),
          loss_pct: (if $tx != null and $rx != null and $tx > 0 then (100 * ($tx - $rx) / $tx * 10 | round / 10) else null end),
          errors: $errs, note: (if $note == "" then null else $note end),
          error: (if $tx == null then "ping failed: \($raw | .[0:200])" else null end)}' >>"$WORK/tests.jsonl"
    log "  $id: ${rx:-?}/${tx:-?} answered${errs:+, $errs errors}${note:+ ($note)}"
}

srv_listening() { nsx "$NS_CLI" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

run_iperf() {         # run_iperf ID udp|tcp lan2cli|cli2lan [RATE]
    local id=$1 kind=$2 dir=$3 rate=${4:-} json="$WORK/$1.json" srv cli rc args h0 h1 c0 c1 m0 m1
    args=(-c "$CLI_ADDR" -p "$PORT" -t "$DUR" -J --connect-timeout 3000)
    [[ $kind == udp ]] && args+=(-u -l "$UDP_LEN" -b "$rate")
    [[ $dir == cli2lan ]] && args+=(-R)
    aux_spawn "$NS_CLI" "$id-server" iperf3 -s -1 -p "$PORT" -B "$CLI_ADDR"
    srv=$SPAWNED_PID
    if ! wait_until 5 srv_listening; then
        kill_pid "$srv"
        jq -nc --arg test "$id" --arg kind "$kind" '{test: $test, kind: $kind, error: "iperf3 server did not start"}' >>"$WORK/tests.jsonl"
        log "  $id: iperf3 server did not start"
        return 1
    fi
    h0=$(pid_ticks "$HUB_PID"); c0=$(pid_ticks "$CLI_PID"); m0=$(machine_ticks)
    # the client in the background + wait, so that INT/TERM traps fire at once
    nsx "$NS_LAN" timeout $((DUR + 20)) iperf3 "${args[@]}" >"$json" 2>"$WORK/$id.err" </dev/null &
    cli=$!; AUX_PIDS+=("$cli")
    wait "$cli"; rc=$?
    h1=$(pid_ticks "$HUB_PID"); c1=$(pid_ticks "$CLI_PID"); m1=$(machine_ticks)
    kill_pid "$srv"
    jq -c --arg test "$id" --arg kind "$kind" --arg dir "$dir" --arg rate "$rate" --argjson rc "$rc" \
        --argjson hz "$CLK_TCK" --argjson h "$((h1 - h0))" --argjson c "$((c1 - c0))" \
        --argjson busy "$(busy_pct "$m0" "$m1")" --arg cmd "iperf3 ${args[*]}" --argjson len "$UDP_LEN" '
        def r($n): if . == null then null else (. * pow(10; $n) | round) / pow(10; $n) end;
        .end as $e | ($e.sum_received // {}) as $rx | ($e.sum_sent // {}) as $tx
        | {test: $test, kind: $kind, dir: $dir, command: $cmd, iperf_rc: $rc,
           error: (if .error then .error elif $rc != 0 then "iperf3 exit status \($rc)"
                   elif $rx.bits_per_second == null then "no receiver summary" else null end),
           mbps: ($rx.bits_per_second | if . then ./1e6 else null end | r(1)),
           seconds: ($rx.seconds | r(3)), bytes: $rx.bytes,
           hub_cpu_s: ($h / $hz), cli_cpu_s: ($c / $hz), cpu_s: (($h + $c) / $hz | r(2)),
           machine_busy_pct: $busy}
        + if $kind == "udp" then
            (($rx.packets // null) as $p | ($rx.lost_packets // 0) as $l | ($tx.packets // null) as $s
             | (if $p != null then $p - $l else null end) as $got
             | {rate: $rate, len: $len, sent: $s, received: $got,
                lost: (if $s != null and $got != null then ([$s - $got, 0] | max) else null end),
                loss_pct: (if $s != null and $got != null and $s > 0 then ([100 * ($s - $got) / $s, 0] | max | r(2)) else null end),
                pps: (if $got != null and ($rx.seconds // 0) > 0 then ($got / $rx.seconds | round) else null end),
                iperf_lost_packets: $rx.lost_packets, iperf_lost_pct: ($rx.lost_percent | r(2)),
                jitter_ms: ($rx.jitter_ms | r(3)), out_of_order: ([.end.streams[]?.udp.out_of_order // 0] | add)})
          else {retransmits: ($tx.retransmits // null)} end
        ' "$json" >"$WORK/$id.row" 2>/dev/null
    [[ -s $WORK/$id.row ]] ||
        jq -nc --arg test "$id" --arg kind "$kind" --arg dir "$dir" --arg rate "$rate" --argjson rc "$rc" \
            --arg err "$(head -c 300 "$WORK/$id.err" "$json" 2>/dev/null)" \
            '{test: $test, kind: $kind, dir: $dir, rate: (if $rate == "" then null else $rate end),
              iperf_rc: $rc, error: "iperf3 failed (rc \($rc)): \($err)"}' >"$WORK/$id.row"
    cat "$WORK/$id.row" >>"$WORK/tests.jsonl"
    log "  $id: $(jq -r '"\(.mbps // "-") Mbit/s" + (if .kind == "udp" then ", \(.pps // "-") datagrams/s, lost \(.lost // "-") (\(.loss_pct // "-")%)" else ", \(.retransmits // "-") retransmits" end) + ", tapwire cpu \(.cpu_s // "-") s" + (if .error then "; ERROR: \(.error)" else "" end)' "$WORK/$id.row")"
}

# ---- one binary, one round ---------------------------------------------------------------
run_one() {           # run_one LABEL BIN ROUND SLOT
    local label=$1 bin=$2 round=$3 slot=$4 err="" t r st_hub="" st_cli="" dead=""
    local mtu_hub="" mtu_cli="" mtu_br="" connect_s="" t0
    WORK=$SCRATCH/$label.r$round; mkdir -p "$WORK"; : >"$WORK/tests.jsonl"
    TUN_PIDS=(); AUX_PIDS=(); BG=(); HUB_PID=""; CLI_PID=""
    log "=== $label (round $round): $bin"
    if ! ns_create; then
        err="namespace setup failed"
    elif ! write_configs "$bin"; then
        err="key or config generation failed"
    else
        # the hub first: a client's first handshake to a port not yet open would
        # only be retried after 5 s (REKEY_TIMEOUT)
        bench_spawn "$NS_HUB" hub "$bin" up -f "$WORK/$IF_HUB.conf"; HUB_PID=$SPAWNED_PID
        if ! wait_up 15 hub_ready "$HUB_PID"; then
            err="hub did not come up (log $WORK/hub.log: $(tail -1 "$WORK/hub.log" 2>/dev/null))"
        else
            t0=$(date +%s%N)
            bench_spawn "$NS_CLI" cli "$bin" up -f "$WORK/$IF_CLI.conf"; CLI_PID=$SPAWNED_PID
            if ! wait_up 15 cli_ready "$CLI_PID"; then
                err="client did not come up (log $WORK/cli.log: $(tail -1 "$WORK/cli.log" 2>/dev/null))"
            elif ! wait_until 20 nsx "$NS_CLI" ping -n -c1 -W1 "$LAN_ADDR"; then
                err="no connectivity client -> LAN host through the tunnel"
            elif ! wait_until 10 nsx "$NS_LAN" ping -n -c1 -W1 "$CLI_ADDR"; then
                err="no connectivity LAN host -> client through the tunnel"
            fi
            connect_s=$(awk -v d=$(( $(date +%s%N) - t0 )) 'BEGIN{printf "%.2f", d/1e9}')
        fi
    fi
    if [[ -z $err ]]; then
        mtu_hub=$(link_mtu "$NS_HUB" "$IF_HUB"); mtu_cli=$(link_mtu "$NS_CLI" "$IF_CLI")
        mtu_br=$(link_mtu "$NS_HUB" br0)
        log "  up: tap mtu hub $mtu_hub, client $mtu_cli, br0 $mtu_br; pids hub $HUB_PID, client $CLI_PID; both ways reachable ${connect_s}s after the client started"
        run_ping ping-lan2cli "$NS_LAN" "$CLI_ADDR"
        run_ping ping-cli2lan "$NS_CLI" "$LAN_ADDR"
        for r in "${RATE_LIST[@]}"; do
            for t in lan2cli cli2lan; do pause; run_iperf "udp-$r-$t" udp "$t" "$r"; done
        done
        for t in lan2cli cli2lan; do pause; run_iperf "tcp-$t" tcp "$t"; done
        pids_alive "$HUB_PID" || dead+="hub "
        pids_alive "$CLI_PID" || dead+="client "
        [[ -n $dead ]] && err="tapwire process died during the run: $dead(logs in $WORK)"
        st_hub=$(nsx "$NS_HUB" timeout 5 "$bin" status "$IF_HUB" 2>&1)
        st_cli=$(nsx "$NS_CLI" timeout 5 "$bin" status "$IF_CLI" 2>&1)
        printf '%s\n' "$st_hub" >"$WORK/hub.status"; printf '%s\n' "$st_cli" >"$WORK/cli.status"
    fi
    [[ -n $err ]] && { ANY_FAIL=1; log "  FAILED: $err"; }
    jq -sc --arg binary "$label" --arg path "$bin" --argjson round "$round" --argjson slot "$slot" \
        --arg error "$err" --argjson mh "$(jn "$mtu_hub")" --argjson mc "$(jn "$mtu_cli")" \
        --argjson mb "$(jn "$mtu_br")" --argjson bg "$(printf '%s\n' "${BG[@]}" | jq -sc 'map(tonumber? // empty)')" \
        --arg sh "$st_hub" --arg sc "$st_cli" --arg mtu "$FORCE_MTU" --argjson cs "$(jn "$connect_s")" \
        '# "counters: fragmented 5, fragments sent 10" in tapwire status (after the tests) -> {fragmented: 5, ...}
        def counters: [splits("\n") | select(startswith("counters: ")) | .[10:] | splits(", ")
                       | capture("^(?<k>.*[^ ]) (?<v>[0-9]+)$") | {key: (.k | gsub(" "; "_")), value: (.v | tonumber)}]
                      | from_entries;
        {binary: $binary, path: $path, round: $round, order_in_round: $slot,
          ok: ($error == ""), error: (if $error == "" then null else $error end),
          mtu_forced: (if $mtu == "" then null else ($mtu | tonumber) end),
          tap_mtu: {hub: $mh, client: $mc, br0: $mb}, connect_s: $cs, background_busy_pct: $bg,
          tests: (map({key: .test, value: del(.test)}) | from_entries),
          status: {hub: $sh, client: $sc},
          counters: ({hub: $sh, client: $sc} | map_values(counters))}' "$WORK/tests.jsonl" >>"$RESULTS"
    teardown
}

# ---- report --------------------------------------------------------------------------------
TEST_ORDER=(ping-lan2cli ping-cli2lan)
for r in "${RATE_LIST[@]}"; do TEST_ORDER+=("udp-$r-lan2cli" "udp-$r-cli2lan"); done
TEST_ORDER+=(tcp-lan2cli tcp-cli2lan)

write_json() {
    jq -s --argjson meta "$(<"$SCRATCH/meta.json")" --argjson order "$(printf '%s\n' "${TEST_ORDER[@]}" | jq -R . | jq -sc .)" \
        --arg ended "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson finished "$FINISHED" '
    def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor]
                       else (.[length/2 - 1] + .[length/2]) / 2 end;
    def rnd($n): if . == null then null else (. * pow(10; $n) | round) / pow(10; $n) end;
    def stat($v; $n): if ($v | length) == 0 then null
                      else {median: ($v | median | rnd($n)), min: ($v | min), max: ($v | max), n: ($v | length)} end;
    . as $runs
    | {meta: ($meta + {ended: $ended, complete: ($finished == 1)}),
       results: $runs,
       summary: [ ($runs | map(.binary) | unique | sort_by(if . == "before" then 0 else 1 end))[] as $b
                  | $order[] as $t
                  | [ $runs[] | select(.binary == $b and .ok) | .tests[$t] | select(. != null and .error == null) ] as $x
                  | {binary: $b, test: $t, runs: ($x | length),
                     errors: ([ $runs[] | select(.binary == $b) | .tests[$t].error // empty ] | length)}
                    + ( ["mbps", "pps", "lost", "loss_pct", "retransmits", "cpu_s", "received"]
                        | map(. as $k | {key: $k, value: stat([ $x[][$k] | select(. != null) ]; 2)})
                        | map(select(.value != null)) | from_entries ) ]}' "$RESULTS" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
}

ROW_FMT='%-3s %-7s %-19s %9s %10s %8s %8s %7s %6s %12s  %s\n'
print_round() {       # print_round ROUND  (from $RESULTS)
    echo
    echo "round $1 of $ROUNDS  (${DUR}s per iperf3 run; UDP ${UDP_LEN}-byte datagrams = 1500-byte IP packets; ping -M do -s $PING_SIZE x$PING_COUNT)"
    # shellcheck disable=SC2059
    printf "$ROW_FMT" rd binary test "Mbit/s" "frames/s" sent lost "loss%" retr "cpu s h+c" note
    jq -r --argjson round "$1" --argjson order "$(printf '%s\n' "${TEST_ORDER[@]}" | jq -R . | jq -sc .)" '
        select(.round == $round) | . as $run
        | if .ok | not then [.round, .binary, "-", "-", "-", "-", "-", "-", "-", "-", "FAILED: \(.error)"]
          else $order[] as $t | .tests[$t] as $x | select($x != null)
          | [$run.round, $run.binary, $t, ($x.mbps // "-"), ($x.pps // "-"), ($x.sent // "-"),
             ($x.lost // "-"), ($x.loss_pct // "-"), ($x.retransmits // "-"),
             (if $x.cpu_s != null then "\($x.hub_cpu_s)+\($x.cli_cpu_s)" else "-" end),
             ((if $x.error then "ERROR: \($x.error | tostring | .[0:80])" else "" end)
              + (if $x.kind == "ping" then "answered \($x.received // "-")/\($x.sent // "-")" + (if $x.note then " (\($x.note))" else "" end) else "" end)
              + (if $t == $order[0] then "  [tap mtu hub \($run.tap_mtu.hub) client \($run.tap_mtu.client)]" else "" end))]
          end | @tsv' "$RESULTS" |
    while IFS=$'\t' read -r rd b t m p s l lp re c n; do
        # shellcheck disable=SC2059
        printf "$ROW_FMT" "$rd" "$b" "$t" "$m" "$p" "$s" "$l" "$lp" "$re" "$c" "$n"
    done
}

print_summary() {
    local fmt='%-19s %-7s %4s %-24s %-22s %-22s %-17s %-14s\n'
    echo
    echo "summary: median [min-max] over the rounds that ran (runs = rounds without errors)"
    # shellcheck disable=SC2059
    printf "$fmt" test binary runs "Mbit/s" "frames/s" "loss %" "retr" "cpu s (h+c)"
    jq -r '
        def s($k): .[$k] | if . == null then "-" elif .n == 1 or .min == .max then "\(.median)"
                          else "\(.median) [\(.min)-\(.max)]" end;
        .summary as $s | .meta.tests[] as $t | $s[] | select(.test == $t)
        | [.test, .binary, "\(.runs)", s("mbps"), s("pps"), s("loss_pct"), s("retransmits"), s("cpu_s")] | @tsv' "$OUT" |
    while IFS=$'\t' read -r t b n m p l r c; do
        # shellcheck disable=SC2059
        printf "$fmt" "$t" "$b" "$n" "$m" "$p" "$l" "$r" "$c"
    done
    jq -r '.summary[] | select(.errors > 0) | "  \(.binary) \(.test): \(.errors) run(s) with an iperf3/ping error (see the JSON)"' "$OUT"
    jq -r --argjson w "$BG_WARN" '.meta as $m
        | [.results[].background_busy_pct[]?] as $bg
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

GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$([[ -n $(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)
AFTER_SRC=given
if [[ -z $BIN_AFTER ]]; then
    GOCMD=${GO:-$(command -v go 2>/dev/null || true)}
    [[ -z $GOCMD && -x /usr/local/go/bin/go ]] && GOCMD=/usr/local/go/bin/go
    [[ -n $GOCMD ]] || die "no go toolchain to build ./cmd/tapwire (set \$GO, or give -a BIN)"
    log "building ./cmd/tapwire at $GIT_REV$([[ $GIT_DIRTY == true ]] && echo ' (working tree modified)')"
    ( cd "$REPO" && "$GOCMD" build -o "$SCRATCH/tapwire-after" ./cmd/tapwire ) >"$SCRATCH/build.log" 2>&1 ||
        { cat "$SCRATCH/build.log" >&2; die "go build ./cmd/tapwire failed (give -a BIN to use a built binary)"; }
    BIN_AFTER=$SCRATCH/tapwire-after
    AFTER_SRC="built from $REPO at $GIT_REV (working tree modified: $GIT_DIRTY)"
fi
LABELS=(after); declare -A BINS=([after]=$BIN_AFTER)
[[ -n $BIN_BEFORE ]] && { LABELS=(before after); BINS[before]=$BIN_BEFORE; }

bin_meta() {          # bin_meta LABEL -> JSON
    local b=${BINS[$1]}
    jq -n --arg path "$b" --arg version "$("$b" version 2>&1 | head -20)" \
        --arg sha "$(sha256sum "$b" | cut -d' ' -f1)" --arg src "$([[ $1 == after ]] && echo "$AFTER_SRC" || echo given)" \
        '{path: $path, sha256: $sha, source: $src, version: $version}'
}

m0=$(machine_ticks); sleep 2; BG_BEFORE=$(busy_pct "$m0" "$(machine_ticks)")
(( BG_BEFORE >= BG_WARN )) && log "WARNING: the machine is already ${BG_BEFORE}% busy before the run; figures will be noisy"
jq -n --arg started "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" --argjson ncpu "$NCPU" \
    --arg cpu "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" \
    --arg iperf "$(iperf3 --version 2>/dev/null | head -1)" \
    --arg cc "$(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null)" \
    --arg rev "$GIT_REV" --argjson dirty "$GIT_DIRTY" --arg cmd "$CMDLINE" \
    --argjson bins "$(for l in "${LABELS[@]}"; do bin_meta "$l" | jq -c --arg l "$l" '{($l): .}'; done | jq -sc add)" \
    --argjson dur "$DUR" --argjson rounds "$ROUNDS" --argjson rates "$(printf '%s\n' "${RATE_LIST[@]}" | jq -R . | jq -sc .)" \
    --argjson tests "$(printf '%s\n' "${TEST_ORDER[@]}" | jq -R . | jq -sc .)" \
    --arg mtu "$FORCE_MTU" --argjson bg "$BG_BEFORE" --argjson bgw "$BG_WARN" \
    --argjson udplen "$UDP_LEN" --argjson pc "$PING_COUNT" --arg pi "$PING_INT" --argjson ps "$PING_SIZE" '
    {started: $started, kernel: $kernel, ncpu: $ncpu, cpu_model: $cpu, iperf3: $iperf, tcp_congestion: $cc,
     git_revision: $rev, git_dirty: $dirty, binaries: $bins,
     duration_s: $dur, rounds: $rounds, udp_rates: $rates, udp_len: $udplen, tests: $tests,
     mtu_forced: (if $mtu == "" then null else ($mtu | tonumber) end),
     ping: {count: $pc, interval_s: ($pi | tonumber), size: $ps, df: true},
     background_busy_pct_before: $bg, background_warn_pct: $bgw,
     layout: {lan: "lan0 198.51.100.100/24 mtu 1500 (ns bbr-lan-*)",
              hub: "br0 = {lanp (veth to lan0), tapwire tap (Bridge = br0)}, und0 192.0.2.1/24 (ns bbr-hub-*)",
              client: "tapwire tap 198.51.100.11/24, peer 192.0.2.1:51820, und0 192.0.2.2/24 (ns bbr-cli-*)",
              underlay_mtu: 1500},
     units: {mbps: "Mbit/s received (iperf3 sum_received)",
             pps: "UDP datagrams received per second (receiver packets - receiver lost) / receiver seconds",
             lost: "UDP: datagrams sent - datagrams received (iperf3 counts nothing lost when nothing arrives)",
             loss_pct: "100 * lost / sent", retransmits: "TCP retransmits of the sender",
             cpu_s: "utime+stime of both tapwire up -f processes (all threads) during the iperf3 run; hub_cpu_s, cli_cpu_s apart",
             machine_busy_pct: "all-CPU busy share during the iperf3 run",
             background_busy_pct: "all-CPU busy share in the 1 s pauses between tests, when only the idle tunnel runs"}}' \
    >"$SCRATCH/meta.json" || die "could not write meta"

# ---- run ---------------------------------------------------------------------------------------
log "binaries: ${LABELS[*]}; ${ROUNDS} round(s), ${DUR}s per iperf3 run, UDP rates ${RATE_LIST[*]}"
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${LABELS[@]}")
    # alternate the order (before, after / after, before, ...) so drifts hit both alike
    (( ${#LABELS[@]} == 2 && round % 2 == 0 )) && order=("${LABELS[1]}" "${LABELS[0]}")
    slot=0
    for l in "${order[@]}"; do
        slot=$((slot + 1))
        run_one "$l" "${BINS[$l]}" "$round" "$slot"
    done
    write_json || die "could not write $OUT"
    print_round "$round"
done
FINISHED=1
write_json || die "could not write $OUT"
print_summary
echo
echo "JSON: $OUT   (kernel $(uname -r), $NCPU CPUs, tapwire $GIT_REV, $(iperf3 --version 2>/dev/null | head -1))"
(( ANY_FAIL == 0 ))
