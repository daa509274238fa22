//go:build darwin || freebsd || windows

package tun_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tapwire/tapwire/tun"
)

// closeUnblocks checks that Close wakes a ReadBatch blocked on dev.
func closeUnblocks(t *testing.T, dev *tun.Device) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		bufs := [][]byte{make([]byte, tun.Headroom+tun.MaxPacket)}
		sizes := make([]int, 1)
		for {
			if _, err := dev.ReadBatch(bufs, sizes, tun.Headroom); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := dev.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, tun.ErrClosed) {
			t.Errorf("blocked ReadBatch returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadBatch")
	}
	if err := dev.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := dev.Write([]byte{0x45}); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}
