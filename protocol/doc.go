// Package protocol is the WireGuard protocol without I/O: keys, the
// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake, message formats, mac1/mac2
// and cookies, the replay window and transport data encryption, and the
// timer constants of the whitepaper. The tunnel engine drives it.
package protocol
