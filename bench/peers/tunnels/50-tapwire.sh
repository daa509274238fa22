# shellcheck shell=bash
# tapwire: tapwire's WireGuard engine behind wireguard-go's command line
# (tapwire-go), configured with `wg` over its UAPI socket exactly as the
# wggo config configures wireguard-go, so the two differ only in the engine.
TAPWIRE_MTU=${TAPWIRE_MTU:-1420}
register_tunnel tapwire "tapwire-go (tapwire's engine, TUN offload), UDP, mtu $TAPWIRE_MTU"

_tapwire_bin() { echo "$BENCH_BIN/tapwire-go"; }

tunnel_tapwire_prepare() {
    need_cmd wg wireguard-tools || { log "wg (wireguard-tools) missing"; return 1; }
    command -v go >/dev/null 2>&1 || { log "go toolchain missing, cannot build tapwire-go"; return 1; }
    local root; root=$(cd "$BENCH_DIR/../.." && pwd)
    mkdir -p "$BENCH_BIN"
    ( cd "$root" && go build -o "$BENCH_BIN/tapwire-go" ./cmd/tapwire-go ) \
        >>"$SHARED/tapwire-build.log" 2>&1 || { log "tapwire-go build failed, see $SHARED/tapwire-build.log"; return 1; }
}

TAPWIRE_IF_A=btwA
TAPWIRE_IF_B=btwB

tunnel_tapwire_up() {
    local bin; bin=$(_tapwire_bin)
    TUN_VERSION="tapwire $(cd "$BENCH_DIR/../.." && git rev-parse --short HEAD 2>/dev/null)"
    TUN_NOTE="mtu $TAPWIRE_MTU, ChaCha20-Poly1305"
    local ifn
    for ifn in "$TAPWIRE_IF_A" "$TAPWIRE_IF_B"; do
        if [[ -e /var/run/wireguard/$ifn.sock ]]; then
            if timeout 5 wg show "$ifn" >/dev/null 2>&1; then
                log "/var/run/wireguard/$ifn.sock is in use by another process"; return 1
            fi
            rm -f "/var/run/wireguard/$ifn.sock"
        fi
    done
    ( umask 077
      wg genkey >"$WORK/a.key"; wg pubkey <"$WORK/a.key" >"$WORK/a.pub"
      wg genkey >"$WORK/b.key"; wg pubkey <"$WORK/b.key" >"$WORK/b.pub" ) || return 1

    # TAPWIRE_ENV: more environment for both ends (the tapwire-2w config's).
    # shellcheck disable=SC2086
    bench_spawn "$NS_A" tapwire-A env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error ${TAPWIRE_ENV:-} "$bin" -f "$TAPWIRE_IF_A"
    # shellcheck disable=SC2086
    bench_spawn "$NS_B" tapwire-B env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error ${TAPWIRE_ENV:-} "$bin" -f "$TAPWIRE_IF_B"
    wait_until 10 test -S /var/run/wireguard/$TAPWIRE_IF_A.sock || { log "tapwire-go A did not come up"; return 1; }
    wait_until 10 test -S /var/run/wireguard/$TAPWIRE_IF_B.sock || { log "tapwire-go B did not come up"; return 1; }

    ip netns exec "$NS_A" wg set "$TAPWIRE_IF_A" private-key "$WORK/a.key" listen-port 51820 \
        peer "$(<"$WORK/b.pub")" allowed-ips "$INNER_B/32" endpoint "$UNDER_B:51820" || return 1
    ip netns exec "$NS_B" wg set "$TAPWIRE_IF_B" private-key "$WORK/b.key" listen-port 51820 \
        peer "$(<"$WORK/a.pub")" allowed-ips "$INNER_A/32" endpoint "$UNDER_A:51820" || return 1
    ip -n "$NS_A" addr add "$INNER_A/$INNER_CIDR" dev "$TAPWIRE_IF_A"
    ip -n "$NS_B" addr add "$INNER_B/$INNER_CIDR" dev "$TAPWIRE_IF_B"
    ip -n "$NS_A" link set "$TAPWIRE_IF_A" mtu "$TAPWIRE_MTU" up
    ip -n "$NS_B" link set "$TAPWIRE_IF_B" mtu "$TAPWIRE_MTU" up
    if ip -n "$NS_A" -d link show dev "$TAPWIRE_IF_A" | grep -q "vnet_hdr on"; then
        TUN_NOTE+=", tun vnet_hdr on (GSO/GRO offload)"
    fi
}

tunnel_tapwire_down() {
    rm -f "/var/run/wireguard/$TAPWIRE_IF_A.sock" "/var/run/wireguard/$TAPWIRE_IF_B.sock"
}
