// Package l2switch is the MAC learning table of an Ethernet hub: the switch
// at the centre of a TAP-mode tunnel (like tinc's Mode = switch or an
// OpenVPN server bridge), where every peer, and the hub's own tap device, is
// a port.
//
// What a port is belongs to the engine, so [Table] is generic over a
// comparable port type P (a peer key, an index, a pointer).
//
// # Hub semantics
//
// For every frame that arrives on a port, [Table.Decide] first learns its
// source MAC address: the address is now reachable through that port. A
// source that is multicast/broadcast (the I/G bit of the first octet set)
// or all-zero is never learned and the frame is dropped. If an address is
// seen on a different port than the one it was learned on, the entry moves
// at once (a VM migrated, a laptop changed uplinks); there is no hold-down.
//
// It then decides where the frame goes:
//
//   - broadcast, multicast and unknown unicast destinations are flooded:
//     the caller sends the frame to every port except the one it arrived on;
//   - a destination learned on another port is unicast to that port;
//   - a destination learned on the port the frame arrived on is dropped
//     (split horizon): that port's side already has it, and sending it
//     back would loop or duplicate it.
//
// # Ageing
//
// An address not seen as a source for [Options.Ageing] (default 300 s, the
// default of Linux bridges and of tinc's MACExpire) is forgotten: from that
// moment Decide treats it as unknown (frames to it are flooded, so it is
// found again when it answers). [Table.Expire] removes such entries from
// memory; the engine calls it periodically, e.g. every few seconds. An entry
// is expired when now - lastSeen >= Ageing.
//
// # Limits and policy
//
// [Options.MaxPerPort] (default 1024) bounds the live addresses learned per
// port, so one peer cannot fill the hub's memory by sending frames from
// random source addresses: a frame from a new source on a port at its limit
// is dropped and counted (CapHit); ports below their limit are unaffected.
// [Table.SetAllowed] restricts a port to a list of source addresses (a
// peer's configured MACs); frames from other sources are dropped.
// [Table.Pin] binds an address to a port as a static entry: it never ages
// or moves, and a frame from another port with it as the source is dropped
// (counted Pinned). The hub pins its own tap's address, so that no peer can
// take it over, whatever its allowed list.
//
// # Concurrency
//
// A Table is safe for concurrent use. Decide for a source already known on
// its port takes only a read lock and allocates nothing; learning, moves,
// policy changes and expiry take the write lock briefly.
package l2switch
