package protocol

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkSealTransport(b *testing.B) {
	for _, n := range []int{0, 64, 1400} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			kp, _ := testKeypairs(b)
			buf := make([]byte, TransportOverhead+PaddedLen(n, 0))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kp.SealTransport(buf, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenTransport opens genuine messages with fresh counters. Each
// message is decrypted in place, so every iteration first copies one from a
// ring of sealed messages (BenchmarkCopy1400 is that copy alone); the
// replay window is reset when the ring wraps.
func BenchmarkOpenTransport(b *testing.B) {
	for _, n := range []int{0, 64, 1400} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			a, kp := testKeypairs(b)
			const ring = 1024
			msgs := make([][]byte, ring)
			for i := range msgs {
				msgs[i] = seal(b, a, make([]byte, n))
			}
			work := make([]byte, len(msgs[0]))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == ring {
					i = 0
					kp.replay.Reset()
				}
				copy(work, msgs[i])
				if _, err := kp.OpenTransport(work); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkCopy1400(b *testing.B) {
	src, dst := make([]byte, TransportOverhead+1408), make([]byte, TransportOverhead+1408)
	b.SetBytes(1400)
	for b.Loop() {
		copy(dst, src)
	}
}

// BenchmarkHandshake is one whole handshake, both sides' work.
func BenchmarkHandshake(b *testing.B) {
	a, r := newParties(testPSK("bench"), testPSK("bench"), "")
	init, resp := make([]byte, InitiationSize), make([]byte, ResponseSize)
	now := testEpoch
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		a.hs.CreateInitiation(now, 1, init)
		a.gen.AddMACs(init)
		if !r.checker.CheckMAC1(init) {
			b.Fatal("mac1")
		}
		in, err := r.local.ConsumeInitiation(init)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.hs.AcceptInitiation(in, now); err != nil {
			b.Fatal(err)
		}
		r.hs.CreateResponse(2, resp)
		r.gen.AddMACs(resp)
		if err := a.hs.ConsumeResponse(resp); err != nil {
			b.Fatal(err)
		}
		if _, err := a.hs.DeriveKeypair(now); err != nil {
			b.Fatal(err)
		}
		if _, err := r.hs.DeriveKeypair(now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckMAC1(b *testing.B) {
	a, r := newParties(Key{}, Key{}, "")
	msg := make([]byte, InitiationSize)
	a.hs.CreateInitiation(testEpoch, 1, msg)
	a.gen.AddMACs(msg)
	b.ReportAllocs()
	for b.Loop() {
		if !r.checker.CheckMAC1(msg) {
			b.Fatal("mac1")
		}
	}
}
