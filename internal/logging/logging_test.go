package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		level  slog.Level
	}{{Text, slog.LevelInfo}, {JSON, slog.LevelInfo}, {Text, slog.LevelDebug}, {JSON, slog.LevelError}} {
		var b bytes.Buffer
		log, err := New(&b, tc.format, tc.level)
		if err != nil {
			t.Fatalf("New(%s, %v): %v", tc.format, tc.level, err)
		}
		log.Debug("d", "k", 1)
		log.Info("i", "k", 2)
		log.Error("e", "k", 3)
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		var want []string
		for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelError} {
			if l >= tc.level {
				want = append(want, l.String())
			}
		}
		if len(lines) != len(want) {
			t.Fatalf("%s at %v: %d records, want %d:\n%s", tc.format, tc.level, len(lines), len(want), b.String())
		}
		for i, l := range lines {
			if tc.format == JSON {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("json record %q: %v", l, err)
				}
				if rec["level"] != want[i] || rec["k"] == nil || rec["time"] == nil {
					t.Errorf("json record %q: want level %s, k and time", l, want[i])
				}
			} else if !strings.Contains(l, "level="+want[i]+" ") || !strings.Contains(l, " k=") {
				t.Errorf("text record %q: want level=%s and k=", l, want[i])
			}
		}
	}
}

func TestNewRefusesUnknownFormat(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"", "JSON", "logfmt", "xml"} {
		if log, err := New(&bytes.Buffer{}, f, slog.LevelInfo); err == nil || log != nil || !strings.Contains(err.Error(), "want text or json") {
			t.Errorf("New(%q) = %v, %v; want no logger and an error naming text and json", f, log, err)
		}
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "DEBUG": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "Warning": slog.LevelWarn, "error": slog.LevelError,
	} {
		if got, err := ParseLevel(s); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "verbose", "trace", "0", "info+1"} {
		if _, err := ParseLevel(s); err == nil || !strings.Contains(err.Error(), "want debug, info, warn or error") {
			t.Errorf("ParseLevel(%q): %v, want an error naming the levels", s, err)
		}
	}
}
