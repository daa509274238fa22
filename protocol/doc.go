// Package protocol is the WireGuard protocol without I/O: keys, the
// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake, message formats, mac1/mac2
// and cookies, the replay window and transport data encryption, and the
// timer constants of the whitepaper. The tunnel engine drives it.
//
// It follows the WireGuard whitepaper (section 5) and interoperates byte for
// byte with wireguard-go; the separate module in protocol/interop proves it
// against wireguard-go's device package (`cd protocol/interop && go test
// ./...`). The package has no global mutable state, does no I/O of its own
// except reading crypto/rand, and reads the clock only for cookie lifetimes.
//
// # Pieces
//
//   - Local: this side's static key pair (immutable).
//   - Handshake: the handshake state with one peer, both roles, with the
//     precomputed DH(static, static) and the replay/flood state of the
//     peer's initiations.
//   - Keypair: transport keys of one session: SealTransport, OpenTransport,
//     send counter and replay window (ReplayWindow).
//   - CookieChecker (one per Local) and CookieGenerator (one per peer):
//     mac1, mac2 and cookie replies.
//
// # Flows
//
// Initiator, to peer P:
//
//	n, _ := hs.CreateInitiation(now, idx, buf)  // idx: a fresh local index
//	gen.AddMACs(buf[:n])                        // then send it
//	// on a response whose receiver index (ParseResponseIndices) is idx:
//	// checker.CheckMAC1(msg) (and CheckMAC2 under load), then
//	hs.ConsumeResponse(msg)
//	kp, _ := hs.DeriveKeypair(now)              // send with kp at once
//
// Responder:
//
//	// checker.CheckMAC1(msg); under load, CheckMAC2 or CreateReply
//	in, _ := local.ConsumeInitiation(msg)       // in.RemoteStatic names the peer
//	hs.AcceptInitiation(in, now)                // replay and flood checks
//	n, _ := hs.CreateResponse(idx, buf)
//	gen.AddMACs(buf[:n])                        // then send it
//	kp, _ := hs.DeriveKeypair(now)              // receive with kp; send with it
//	                                            // once the initiator has used it
//
// Transport: SealTransport (or SealTransportMTU, with wireguard-go's padding)
// encrypts a packet placed at buf[TransportHeaderSize:] in place;
// ParseTransportHeader gives the receiver index that names the Keypair, and
// OpenTransport decrypts in place. Neither allocates. MessageType dispatches
// any received datagram.
//
// # Concurrency
//
// Local is immutable. Handshake, CookieChecker and CookieGenerator lock
// internally. A Keypair takes concurrent SealTransport and OpenTransport
// calls; each call owns the buffer it is given.
//
// # Choices that differ from wireguard-go (none visible on the wire)
//
//   - The receive replay window is 16,320 messages (ReplayWindowSize), twice
//     wireguard-go's 8,128.
//   - Local.ConsumeInitiation decrypts the initiator's static key only; the
//     timestamp, authenticated with the peer's precomputed DH(static,
//     static), is decrypted by Handshake.AcceptInitiation (wireguard-go
//     does both in one call, after looking the peer up in between).
//   - The time of arrival is a parameter (AcceptInitiation, DeriveKeypair)
//     instead of time.Now, so that the engine and tests control it.
package protocol
