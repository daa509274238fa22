# shellcheck shell=bash
# tapwire-2w: the tapwire config with TAPWIRE_WORKERS=2, the crypto workers
# on (by default tapwire-go has them from 4 CPUs only), to show in the same
# run what they give or cost on this machine.
register_tunnel tapwire-2w "tapwire-go, TAPWIRE_WORKERS=2 (crypto workers on), UDP, mtu $TAPWIRE_MTU"

tunnel_tapwire_2w_prepare() { tunnel_tapwire_prepare; }
tunnel_tapwire_2w_up() { TAPWIRE_ENV="TAPWIRE_WORKERS=2" tunnel_tapwire_up; }
tunnel_tapwire_2w_down() { tunnel_tapwire_down; }
