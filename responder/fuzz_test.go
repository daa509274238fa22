package responder

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

var genSeeds = flag.Bool("gen-seeds", false, "rewrite the checked-in fuzz seed corpus under testdata/fuzz")

type seed struct {
	name string
	data []byte
}

func ipSeeds(tb testing.TB) []seed {
	p := payloadOf(24)
	v4 := echo4(tb, own4, peer4, p)
	return []seed{
		{"echo4", v4},
		{"echo6", echo6(tb, own6, peer6, p)},
		{"echo4-options", echo4(tb, own4, peer4, p, layers.IPv4Option{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}})},
		{"echo4-own", echo4(tb, peer4, own4, p)},
		{"ns6", ns(tb, peer6, nsOpts{})[14:]},
		{"truncated4", v4[:30]},
	}
}

func ethernetSeeds(tb testing.TB) []seed {
	p := payloadOf(24)
	nsReq := ns(tb, peer6, nsOpts{})
	return []seed{
		{"arp", arpRequest(tb, bcast, own4, peer4)},
		{"ns", nsReq},
		{"ns-no-sllao", ns(tb, peer6, nsOpts{noSLLAO: true})},
		{"ns-dad", ns(tb, peer6, nsOpts{src: net.IPv6unspecified, noSLLAO: true})},
		{"echo4", serialize(tb, withEther(respMAC, layers.EthernetTypeIPv4, echo4Layers(own4, peer4, p))...)},
		{"echo6", serialize(tb, withEther(respMAC, layers.EthernetTypeIPv6, echo6Layers(own6, peer6, p))...)},
		{"truncated-ns", nsReq[:70]},
	}
}

// TestGenerateSeeds rewrites testdata/fuzz/*/ when run with -gen-seeds:
//
//	go test ./responder -run TestGenerateSeeds -gen-seeds
func TestGenerateSeeds(t *testing.T) {
	if !*genSeeds {
		t.Skip("run with -gen-seeds to rewrite the seed corpus")
	}
	for dir, seeds := range map[string][]seed{
		"FuzzReplyIP":       ipSeeds(t),
		"FuzzReplyEthernet": ethernetSeeds(t),
	} {
		dir = filepath.Join("testdata", "fuzz", dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.data)))
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fixChecksums makes a best effort to correct the IPv4 header checksum and
// the ICMP or ICMPv6 checksum of the packet at b[off:], so that fuzzing
// reaches the code behind checksum verification.
func fixChecksums(b []byte, off int) {
	if off > len(b) {
		return
	}
	p := b[off:]
	if len(p) == 0 {
		return
	}
	be := binary.BigEndian
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return
		}
		ihl := int(p[0]&15) * 4
		if ihl < 20 || ihl > len(p) {
			return
		}
		p[10], p[11] = 0, 0
		be.PutUint16(p[10:], ^uint16(refSum(p[:ihl])))
		total := min(int(be.Uint16(p[2:])), len(p))
		if p[9] == 1 && total >= ihl+4 {
			icmp := p[ihl:total]
			icmp[2], icmp[3] = 0, 0
			be.PutUint16(icmp[2:], ^uint16(refSum(icmp)))
		}
	case 6:
		if len(p) < 40 {
			return
		}
		total := 40 + int(be.Uint16(p[4:]))
		if total > len(p) || p[6] != 58 || total < 44 {
			return
		}
		icmp := p[40:total]
		icmp[2], icmp[3] = 0, 0
		var ph []byte
		ph = append(ph, p[8:40]...)
		ph = be.AppendUint32(ph, uint32(len(icmp)))
		ph = append(ph, 0, 0, 0, 58)
		ph = append(ph, icmp...)
		be.PutUint16(icmp[2:], ^uint16(refSum(ph)))
	}
}

// fuzzOne runs one input with a tight buffer and with spare capacity, and
// checks the invariants: exactly one counter moves; without a reply the
// buffer is untouched; a reply fits, has verifying checksums and, for IP,
// is no longer than the request.
func fuzzOne(t *testing.T, data []byte, eth bool) {
	for _, extra := range []int{0, 100} {
		r := newResponder()
		buf := make([]byte, len(data), len(data)+extra)
		copy(buf, data)
		full := buf[:cap(buf)]
		orig := bytes.Clone(full)
		var m int
		var ok bool
		if eth {
			m, ok = r.ReplyEthernet(buf, len(data))
		} else {
			m, ok = r.ReplyIP(buf, len(data))
		}
		s := r.Stats
		if s.EchoReplies+s.ARPReplies+s.NAReplies+s.Ignored+s.Malformed != 1 {
			t.Fatalf("stats %+v", s)
		}
		if !ok {
			if m != 0 || !bytes.Equal(full, orig) {
				t.Fatalf("no reply, but m = %d or buffer changed", m)
			}
			if s.Ignored+s.Malformed != 1 {
				t.Fatalf("no reply, stats %+v", s)
			}
			continue
		}
		if m <= 0 || m > cap(buf) {
			t.Fatalf("reply length %d, cap %d", m, cap(buf))
		}
		reply := full[:m]
		if eth {
			checkFrameChecksums(t, reply)
			if !bytes.Equal(reply[6:12], respMAC) {
				t.Fatalf("reply from %v", net.HardwareAddr(reply[6:12]))
			}
		} else {
			if m > len(data) || s.EchoReplies != 1 {
				t.Fatalf("reply of %d bytes to %d, stats %+v", m, len(data), s)
			}
			checkIPChecksums(t, reply)
		}
	}
}

func FuzzReplyIP(f *testing.F) {
	for _, s := range ipSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data, false)
		fixed := bytes.Clone(data)
		fixChecksums(fixed, 0)
		if !bytes.Equal(fixed, data) {
			fuzzOne(t, fixed, false)
		}
	})
}

func FuzzReplyEthernet(f *testing.F) {
	for _, s := range ethernetSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data, true)
		fixed := bytes.Clone(data)
		fixChecksums(fixed, 14)
		if !bytes.Equal(fixed, data) {
			fuzzOne(t, fixed, true)
		}
	})
}

// TestSeedCorpus checks that the checked-in seeds still parse and get the
// answers they were made for, so that fuzzing starts from useful inputs.
func TestSeedCorpus(t *testing.T) {
	want := map[string]map[string]bool{
		"FuzzReplyIP": {
			"echo4": true, "echo6": true, "echo4-options": true,
			"echo4-own": false, "ns6": false, "truncated4": false,
		},
		"FuzzReplyEthernet": {
			"arp": true, "ns": true, "ns-no-sllao": true, "echo4": true, "echo6": true,
			"ns-dad": false, "truncated-ns": false,
		},
	}
	for dir, files := range want {
		for name, wantOK := range files {
			content, err := os.ReadFile(filepath.Join("testdata", "fuzz", dir, name))
			if err != nil {
				t.Fatal(err)
			}
			const prefix, suffix = "go test fuzz v1\n[]byte(", ")\n"
			s := string(content)
			if len(s) < len(prefix)+len(suffix) || s[:len(prefix)] != prefix || s[len(s)-len(suffix):] != suffix {
				t.Fatalf("%s/%s: bad corpus file", dir, name)
			}
			data, err := strconv.Unquote(s[len(prefix) : len(s)-len(suffix)])
			if err != nil {
				t.Fatalf("%s/%s: %v", dir, name, err)
			}
			buf := make([]byte, len(data), 128+len(data))
			copy(buf, data)
			r := newResponder()
			var ok bool
			if dir == "FuzzReplyIP" {
				_, ok = r.ReplyIP(buf, len(buf))
			} else {
				_, ok = r.ReplyEthernet(buf, len(buf))
			}
			if ok != wantOK {
				t.Errorf("%s/%s: answered %v, want %v (stats %+v)", dir, name, ok, wantOK, r.Stats)
			}
		}
	}
}
