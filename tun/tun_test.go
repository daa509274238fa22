package tun_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/tapwire/tapwire/tun"
)

// TestOpErrorIsNetError checks OpError's net.Error contract: a timeout
// exactly when the cause is an expired deadline, and temporary only then.
func TestOpErrorIsNetError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cause   error
		timeout bool
	}{
		{os.ErrDeadlineExceeded, true},
		{fmt.Errorf("poll: %w", os.ErrDeadlineExceeded), true},
		{&os.PathError{Op: "read", Path: "/dev/net/tun", Err: os.ErrDeadlineExceeded}, true},
		{tun.ErrClosed, false},
		{tun.ErrDeviceRemoved, false},
		{tun.ErrDetached, false},
		{syscall.ETIMEDOUT, false}, // a kernel error, not a deadline
		{syscall.EPERM, false},
		{syscall.EMFILE, false}, // Errno calls it temporary; a device does not
		{&tun.PacketError{Index: 1, Dropped: 1, Err: syscall.EINVAL}, false},
	}
	for _, tt := range tests {
		var err error = &tun.OpError{Op: "read", Name: "tun0", Err: tt.cause}
		ne, ok := err.(net.Error)
		if !ok {
			t.Fatalf("*OpError is not a net.Error")
		}
		if got := ne.Timeout(); got != tt.timeout {
			t.Errorf("OpError{Err: %v}.Timeout() = %v, want %v", tt.cause, got, tt.timeout)
		}
		if got := ne.Temporary(); got != tt.timeout {
			t.Errorf("OpError{Err: %v}.Temporary() = %v, want %v", tt.cause, got, tt.timeout)
		}
		// Wrapped further, errors.As still finds the OpError first.
		var found net.Error
		if !errors.As(fmt.Errorf("tunnel: %w", err), &found) || found != ne {
			t.Errorf("errors.As(wrapped OpError{Err: %v}, *net.Error) = %v, want the OpError", tt.cause, found)
		}
	}
}
