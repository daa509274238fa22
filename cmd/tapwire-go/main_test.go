package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/internal/service"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	for _, c := range []struct {
		args    []string
		env     map[string]string
		want    options
		wantErr string
	}{
		// wireguard-go's command line, as wg-quick gives it.
		{args: []string{"wg0"}, want: options{name: "wg0", logFormat: "text"}},
		{args: []string{"-f", "wg0"}, want: options{name: "wg0", foreground: true, logFormat: "text"}},
		{args: []string{"wg0", "--foreground"}, want: options{name: "wg0", foreground: true, logFormat: "text"}},
		{args: []string{"wg0"}, env: map[string]string{"WG_PROCESS_FOREGROUND": "1"}, want: options{name: "wg0", foreground: true, logFormat: "text"}},
		{args: []string{"--help"}, want: options{help: true, logFormat: "text"}},
		{args: []string{"-v"}, want: options{version: true, logFormat: "text"}},
		// The metrics address: flag, flag=, environment; the flag wins.
		{args: []string{"--metrics-address", "127.0.0.1:9586", "wg0"}, want: options{name: "wg0", metrics: netip.MustParseAddrPort("127.0.0.1:9586"), logFormat: "text"}},
		{args: []string{"wg0", "--metrics-address=[::1]:9586"}, want: options{name: "wg0", metrics: netip.MustParseAddrPort("[::1]:9586"), logFormat: "text"}},
		{args: []string{"wg0"}, env: map[string]string{metricsEnv: "0.0.0.0:9586"}, want: options{name: "wg0", metrics: netip.MustParseAddrPort("0.0.0.0:9586"), logFormat: "text"}},
		{args: []string{"--metrics-address", "127.0.0.2:1", "wg0"}, env: map[string]string{metricsEnv: "junk"}, want: options{name: "wg0", metrics: netip.MustParseAddrPort("127.0.0.2:1"), logFormat: "text"}},
		// Mistakes.
		{args: []string{"--log-format", "json", "wg0"}, want: options{name: "wg0", logFormat: "json"}},
		{args: []string{"wg0", "--log-format=json"}, env: map[string]string{"LOG_FORMAT": "text"}, want: options{name: "wg0", logFormat: "json"}},
		{args: []string{"wg0"}, env: map[string]string{"LOG_FORMAT": "json"}, want: options{name: "wg0", logFormat: "json"}},
		{args: []string{"wg0", "--log-format"}, wantErr: "needs text or json"},
		{args: []string{"--keep-privileges", "wg0"}, want: options{name: "wg0", logFormat: "text", keepPrivs: true}},
		// The engine's workers.
		{args: []string{"wg0"}, env: map[string]string{service.WorkersEnv: "4"}, want: options{name: "wg0", logFormat: "text", workers: 4}},
		{args: []string{"wg0"}, env: map[string]string{service.WorkersEnv: "many"}, wantErr: "TAPWIRE_WORKERS \"many\": want a number"},
		{args: []string{"wg0"}, env: map[string]string{service.WorkersEnv: "-1"}, wantErr: "want a number of workers"},
		{args: []string{}, wantErr: "no interface name"},
		{args: []string{"wg0", "wg1"}, wantErr: "one interface name"},
		{args: []string{"--bogus", "wg0"}, wantErr: "unknown option --bogus"},
		{args: []string{"wg0", "--metrics-address"}, wantErr: "needs an address"},
		{args: []string{"--metrics-address", "localhost:9586", "wg0"}, wantErr: `--metrics-address "localhost:9586": want an IP address and a TCP port`},
		{args: []string{"--metrics-address=127.0.0.1:0", "wg0"}, wantErr: `--metrics-address "127.0.0.1:0"`},
		{args: []string{"wg0"}, env: map[string]string{metricsEnv: ":9586"}, wantErr: metricsEnv + ` ":9586"`},
	} {
		got, err := parseArgs(c.args, env(c.env))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("parseArgs(%q, %v): %v, want an error with %q", c.args, c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseArgs(%q, %v) = %+v, %v; want %+v", c.args, c.env, got, err, c.want)
		}
	}
}
