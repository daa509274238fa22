// Package logging makes the loggers of tapwire's commands (tapwire up,
// tapwire-go): log/slog records as text (key=value) or as JSON, one record
// a line, from a level up. What goes into the records is the callers'
// concern; the engine and the UAPI server log no private or preshared key
// at any level (see the key-leak tests in tunnel and cmd/tapwire).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// The formats New accepts, as --log-format and LOG_FORMAT name them.
const (
	Text = "text" // slog's TextHandler: time=... level=INFO msg=... key=value
	JSON = "json" // slog's JSONHandler: {"time":...,"level":"INFO","msg":...}
)

// Formats lists the formats, for help and errors.
const Formats = Text + "|" + JSON

// Levels lists the level names ParseLevel accepts, for help and errors.
const Levels = "debug|info|warn|error"

// ParseLevel parses a level name: debug, info, warn (or warning) or error,
// in any case. The error names what is accepted.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// CheckFormat returns an error naming the formats unless format is one
// of them (Text, JSON; exactly, in lower case).
func CheckFormat(format string) error {
	if format != Text && format != JSON {
		return fmt.Errorf("log format %q: want %s", format, strings.ReplaceAll(Formats, "|", " or "))
	}
	return nil
}

// New returns a logger that writes records from level up to w, one a
// line, in format (Text or JSON). It returns an error, and no logger,
// for any other format.
func New(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	if err := CheckFormat(format); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == JSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
