# shellcheck shell=bash
# tapwire-tap: tapwire's TAP mode (Ethernet frames over WireGuard's
# handshake and encryption), run by `tapwire up -f` from a tapwire config
# with Mode = tap; MTU 1500 by default (full-size frames: those that one
# datagram does not carry go in fragments, and the MSS clamp keeps TCP out
# of them; see the README's MTU section).
TAPWIRE_TAP_MTU=${TAPWIRE_TAP_MTU:-1500}
register_tunnel tapwire-tap "tapwire TAP mode (Ethernet over WireGuard), UDP, mtu $TAPWIRE_TAP_MTU"

tunnel_tapwire_tap_prepare() {
    command -v go >/dev/null 2>&1 || { log "go toolchain missing, cannot build tapwire"; return 1; }
    local root; root=$(cd "$BENCH_DIR/../.." && pwd)
    mkdir -p "$BENCH_BIN"
    ( cd "$root" && go build -o "$BENCH_BIN/tapwire" ./cmd/tapwire ) \
        >>"$SHARED/tapwire-build.log" 2>&1 || { log "tapwire build failed, see $SHARED/tapwire-build.log"; return 1; }
}

TAPWIRE_TAP_IF_A=btwtA
TAPWIRE_TAP_IF_B=btwtB

tunnel_tapwire_tap_up() {
    local bin="$BENCH_BIN/tapwire" n ifn peer under inner
    TUN_VERSION="tapwire $(cd "$BENCH_DIR/../.." && git rev-parse --short HEAD 2>/dev/null)"
    TUN_NOTE="tap mtu $TAPWIRE_TAP_MTU, ChaCha20-Poly1305, MSS clamp on"
    for ifn in "$TAPWIRE_TAP_IF_A" "$TAPWIRE_TAP_IF_B"; do
        if [[ -e /var/run/wireguard/$ifn.sock ]]; then
            if timeout 5 "$bin" status "$ifn" >/dev/null 2>&1; then
                log "/var/run/wireguard/$ifn.sock is in use by another process"; return 1
            fi
            rm -f "/var/run/wireguard/$ifn.sock"
        fi
    done
    ( umask 077
      "$bin" genkey >"$WORK/a.key"; "$bin" pubkey <"$WORK/a.key" >"$WORK/a.pub"
      "$bin" genkey >"$WORK/b.key"; "$bin" pubkey <"$WORK/b.key" >"$WORK/b.pub" ) || return 1
    for n in A B; do
        peer=$([[ $n == A ]] && echo b || echo a)
        ifn=TAPWIRE_TAP_IF_$n; under=UNDER_$([[ $n == A ]] && echo B || echo A); inner=INNER_$n
        ( umask 077; cat >"$WORK/${!ifn}.conf" <<CONF
[Interface]
PrivateKey = $(<"$WORK/$(tr AB ab <<<"$n").key")
ListenPort = 51820
Address = ${!inner}/$INNER_CIDR
MTU = $TAPWIRE_TAP_MTU
Mode = tap

[Peer]
PublicKey = $(<"$WORK/$peer.pub")
Endpoint = ${!under}:51820
CONF
        ) || return 1
    done
    bench_spawn "$NS_A" tapwire-tap-A "$bin" up -f "$WORK/$TAPWIRE_TAP_IF_A.conf"
    bench_spawn "$NS_B" tapwire-tap-B "$bin" up -f "$WORK/$TAPWIRE_TAP_IF_B.conf"
    wait_until 10 ns_has_addr "$NS_A" "$TAPWIRE_TAP_IF_A" "$INNER_A" || { log "tapwire-tap A did not come up"; return 1; }
    wait_until 10 ns_has_addr "$NS_B" "$TAPWIRE_TAP_IF_B" "$INNER_B" || { log "tapwire-tap B did not come up"; return 1; }
    if ip -n "$NS_A" -d link show dev "$TAPWIRE_TAP_IF_A" | grep -q "vnet_hdr on"; then
        TUN_NOTE+=", tap vnet_hdr on (GSO/GRO offload)"
    fi
}

tunnel_tapwire_tap_down() {
    # The processes are killed by pid; they remove their sockets on the way out.
    sleep 0.2
    rm -f "/var/run/wireguard/$TAPWIRE_TAP_IF_A.sock" "/var/run/wireguard/$TAPWIRE_TAP_IF_B.sock"
}
