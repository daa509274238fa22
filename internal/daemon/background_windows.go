package daemon

import (
	"context"
	"errors"
	"os"
	"time"
)

// readyPipe returns nil: Background never starts a child on Windows.
func readyPipe() *os.File { return nil }

// Background fails on Windows, where a program does not detach from its
// console as a Unix daemon does: run the tunnel in the foreground (tapwire
// up -f, tapwire-go -f) or as a service.
func Background(ctx context.Context, logPath string, stopWait time.Duration) error {
	return errors.New("daemon: running in the background is not supported on Windows: run in the foreground (-f), or as a service")
}

// CanBackground reports false: on Windows the commands stay in the
// foreground.
func CanBackground() bool { return false }
