# shellcheck shell=bash
# tapwire-tcp: tapwire's WireGuard tunnel (TUN mode) over its TCP transport,
# for networks that block UDP: A accepts streams (ListenTCP), B reaches A
# with Transport = tcp; run by `tapwire up -f`. Messages travel after a
# 2-byte length, as mullvad's udp-over-tcp frames them.
TAPWIRE_TCP_MTU=${TAPWIRE_TCP_MTU:-1420}
register_tunnel tapwire-tcp "tapwire over TCP (its TCP transport, TUN mode), mtu $TAPWIRE_TCP_MTU"

tunnel_tapwire_tcp_prepare() {
    command -v go >/dev/null 2>&1 || { log "go toolchain missing, cannot build tapwire"; return 1; }
    local root; root=$(cd "$BENCH_DIR/../.." && pwd)
    mkdir -p "$BENCH_BIN"
    ( cd "$root" && go build -o "$BENCH_BIN/tapwire" ./cmd/tapwire ) \
        >>"$SHARED/tapwire-build.log" 2>&1 || { log "tapwire build failed, see $SHARED/tapwire-build.log"; return 1; }
}

TAPWIRE_TCP_IF_A=btwcA
TAPWIRE_TCP_IF_B=btwcB

tunnel_tapwire_tcp_up() {
    local bin="$BENCH_BIN/tapwire" n ifn peer under inner other
    TUN_VERSION="tapwire $(cd "$BENCH_DIR/../.." && git rev-parse --short HEAD 2>/dev/null)"
    TUN_NOTE="TCP transport, mtu $TAPWIRE_TCP_MTU, ChaCha20-Poly1305"
    for ifn in "$TAPWIRE_TCP_IF_A" "$TAPWIRE_TCP_IF_B"; do
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
        ifn=TAPWIRE_TCP_IF_$n; under=UNDER_$([[ $n == A ]] && echo B || echo A); inner=INNER_$n
        other=INNER_$([[ $n == A ]] && echo B || echo A)
        ( umask 077
          {
            printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = %s/%s\nMTU = %s\n' \
                "$(<"$WORK/$(tr AB ab <<<"$n").key")" "${!inner}" "$INNER_CIDR" "$TAPWIRE_TCP_MTU"
            if [[ $n == A ]]; then printf 'ListenTCP = 51820\n'; fi
            printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n' "$(<"$WORK/$peer.pub")" "${!other}"
            if [[ $n == B ]]; then printf 'Endpoint = %s:51820\nTransport = tcp\n' "${!under}"; fi
          } >"$WORK/${!ifn}.conf"
        ) || return 1
    done
    bench_spawn "$NS_A" tapwire-tcp-A "$bin" up -f "$WORK/$TAPWIRE_TCP_IF_A.conf"
    bench_spawn "$NS_B" tapwire-tcp-B "$bin" up -f "$WORK/$TAPWIRE_TCP_IF_B.conf"
    wait_until 10 ns_has_addr "$NS_A" "$TAPWIRE_TCP_IF_A" "$INNER_A" || { log "tapwire-tcp A did not come up"; return 1; }
    wait_until 10 ns_has_addr "$NS_B" "$TAPWIRE_TCP_IF_B" "$INNER_B" || { log "tapwire-tcp B did not come up"; return 1; }
    if ip -n "$NS_A" -d link show dev "$TAPWIRE_TCP_IF_A" | grep -q "vnet_hdr on"; then
        TUN_NOTE+=", tun vnet_hdr on (GSO/GRO offload)"
    fi
}

tunnel_tapwire_tcp_down() {
    # The processes are killed by pid; they remove their sockets on the way out.
    sleep 0.2
    rm -f "/var/run/wireguard/$TAPWIRE_TCP_IF_A.sock" "/var/run/wireguard/$TAPWIRE_TCP_IF_B.sock"
}
