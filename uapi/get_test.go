package uapi

import (
	"bufio"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
)

func TestWriteGetGolden(t *testing.T) {
	s := devconf.DeviceStatus{
		PrivateKey: mustHexKey(t, hexPriv),
		ListenPort: 12912,
		FwMark:     0x1234,
		Peers: []devconf.PeerStatus{
			{
				PublicKey:           mustHexKey(t, hexPub1),
				PresharedKey:        mustHexKey(t, hexPSK1),
				Endpoint:            netip.MustParseAddrPort("[abcd:23::33%2]:51820"),
				PersistentKeepalive: 0,
				LastHandshake:       time.Unix(1700000000, 123456789),
				RxBytes:             2224,
				TxBytes:             38333,
				AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("192.168.4.4/32"), netip.MustParsePrefix("2001:db8::/64")},
				ProtocolVersion:     1,
			},
			{
				PublicKey:           mustHexKey(t, hexPub2),
				Endpoint:            netip.MustParseAddrPort("182.122.22.19:3233"),
				PersistentKeepalive: 111,
				RxBytes:             18446744073709551615,
				AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("192.168.4.6/32")},
			},
			{PublicKey: mustHexKey(t, hexPub3)}, // nothing known yet
		},
	}
	const want = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=12912
fwmark=4660
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
protocol_version=1
endpoint=[abcd:23::33%2]:51820
last_handshake_time_sec=1700000000
last_handshake_time_nsec=123456789
tx_bytes=38333
rx_bytes=2224
persistent_keepalive_interval=0
allowed_ip=192.168.4.4/32
allowed_ip=2001:db8::/64
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
preshared_key=0000000000000000000000000000000000000000000000000000000000000000
protocol_version=1
endpoint=182.122.22.19:3233
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=18446744073709551615
persistent_keepalive_interval=111
allowed_ip=192.168.4.6/32
public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
preshared_key=0000000000000000000000000000000000000000000000000000000000000000
protocol_version=1
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=0
persistent_keepalive_interval=0
`
	var b strings.Builder
	if err := WriteGet(&b, s); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != want {
		t.Errorf("WriteGet:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteGetEmptyDevice(t *testing.T) {
	var b strings.Builder
	if err := WriteGet(&b, devconf.DeviceStatus{}); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("empty device: %q, want nothing (no key, port or fwmark)", b.String())
	}
	// A handshake time before 1970 cannot be sent (wg reads unsigned).
	b.Reset()
	WriteGet(&b, devconf.DeviceStatus{Peers: []devconf.PeerStatus{{LastHandshake: time.Unix(-5, 0)}}})
	if !strings.Contains(b.String(), "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n") {
		t.Errorf("got %q", b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteGetWriteError(t *testing.T) {
	err := WriteGet(failWriter{}, devconf.DeviceStatus{ListenPort: 1})
	var ue *devconf.Error
	if !errors.As(err, &ue) || ue.Errno != int(syscall.EIO) {
		t.Fatalf("got %v, want EIO", err)
	}
}

// What WriteGet writes must read back as the same status: every line is
// key=value, and the peers' keys come in the order wg expects.
func TestWriteGetLines(t *testing.T) {
	var b strings.Builder
	WriteGet(&b, devconf.DeviceStatus{ListenPort: 1, Peers: []devconf.PeerStatus{{AllowedIPs: []netip.Prefix{{}}}}})
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); !ok || k == "" || v == "" {
			t.Errorf("bad line %q", sc.Text())
		}
	}
}
