# shellcheck shell=bash
# tapwire-1w: the tapwire config with TAPWIRE_WORKERS=1, the engine without
# its crypto workers (one goroutine per direction does everything), to show
# in the same run what the parallel pipelines give or cost.
register_tunnel tapwire-1w "tapwire-go, TAPWIRE_WORKERS=1 (no crypto workers), UDP, mtu $TAPWIRE_MTU"

tunnel_tapwire_1w_prepare() { tunnel_tapwire_prepare; }
tunnel_tapwire_1w_up() { TAPWIRE_ENV="TAPWIRE_WORKERS=1" tunnel_tapwire_up; }
tunnel_tapwire_1w_down() { tunnel_tapwire_down; }
