package devconf_test

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"testing"

	"github.com/tapwire/tapwire/devconf"
)

func TestError(t *testing.T) {
	t.Parallel()
	inner := errors.New("port 1")
	for _, tc := range []struct {
		err  *devconf.Error
		code syscall.Errno
		msg  string
	}{
		{devconf.Errorf(syscall.EADDRINUSE, "port %d", 1), syscall.EADDRINUSE, "port 1 (errno 98, address already in use)"},
		{&devconf.Error{Errno: -22, Err: inner}, syscall.EINVAL, "port 1 (errno 22, invalid argument)"}, // wireguard-go's negative constants
		{&devconf.Error{}, devconf.ErrnoUnknown, "errno 55 (no anode)"},
	} {
		if got := tc.err.Code(); devconf.WireErrno(got) != devconf.WireErrno(tc.code) {
			t.Errorf("%#v.Code() = %d, want %d", tc.err, got, tc.code)
		}
		if got := tc.err.Error(); got != tc.msg && runtime.GOOS == "linux" { // the numbers and texts are Linux's
			t.Errorf("%#v.Error() = %q, want %q", tc.err, got, tc.msg)
		}
	}
}

func TestErrorWraps(t *testing.T) {
	t.Parallel()
	e := devconf.Errorf(syscall.EADDRINUSE, "listen: %w", syscall.EACCES)
	if !errors.Is(e, syscall.EACCES) {
		t.Errorf("%v does not wrap EACCES", e)
	}
	var de *devconf.Error
	if err := fmt.Errorf("apply: %w", e); !errors.As(err, &de) || de.Code() != syscall.EADDRINUSE {
		t.Errorf("errors.As through a wrap: %v, %v", de, err)
	}
}

func TestTransport(t *testing.T) {
	t.Parallel()
	for _, want := range []devconf.Transport{devconf.TransportUDP, devconf.TransportTCP, devconf.TransportAuto} {
		got, err := devconf.ParseTransport(want.String())
		if err != nil || got != want {
			t.Errorf("ParseTransport(%q) = %v, %v; want %v", want.String(), got, err, want)
		}
	}
	if s := devconf.Transport(0).String(); s != "udp" {
		t.Errorf("the zero Transport is %q, want udp", s)
	}
	if s := devconf.Transport(9).String(); s != "transport(9)" {
		t.Errorf("Transport(9).String() = %q", s)
	}
	for _, bad := range []string{"", "UDP", "tcp ", "quic"} {
		if got, err := devconf.ParseTransport(bad); err == nil {
			t.Errorf("ParseTransport(%q) = %v, want an error", bad, got)
		}
	}
}
