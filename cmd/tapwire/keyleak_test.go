//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/internal/logging"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/pingtest"
	"github.com/tapwire/tapwire/protocol"
	"github.com/tapwire/tapwire/uapi"
)

// TestUpLogHoldsNoKeys: tapwire up -f at --log-level debug, in text and in
// JSON, logs no private or preshared key. Two ends, each with a private
// key and a preshared key in its file, handshake and ping; wg set gives
// one a new private key and both a new preshared key over the UAPI socket
// and they ping again; a raw UAPI client sends mistyped keys; files with
// bad keys are refused. Every log and error output is then searched for
// every key used, in base64, hex and raw bytes (see keyLeaks).
func TestUpLogHoldsNoKeys(t *testing.T) {
	pingtest.Require(t)
	requireWGTool(t)
	nstest.GuardHost(t)
	for i, format := range []string{logging.Text, logging.JSON} {
		t.Run(format, func(t *testing.T) { upLogHoldsNoKeys(t, format, fmt.Sprintf("twkl%d", i)) })
	}
}

func upLogHoldsNoKeys(t *testing.T, format, prefix string) {
	na, nb := nstest.New(t), nstest.New(t)
	na.Link(nb, prefix+"va", prefix+"vb", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	dir := t.TempDir()
	a := wgEnd{key: key(t), addr: []string{"198.51.100.1/24"}, under: "192.0.2.1", port: 51041}
	b := wgEnd{key: key(t), addr: []string{"198.51.100.2/24"}, under: "192.0.2.2", port: 51042}
	psk, psk2, a2 := key(t), key(t), key(t) // a2: a's next private key
	secrets := map[string]protocol.Key{"a's private key": a.key, "b's private key": b.key,
		"the preshared key": psk, "the second preshared key": psk2, "a's second private key": a2}
	nameA, nameB := prefix+"a", prefix+"b"
	confA := writeConf(t, dir, nameA, a, "", b)
	confB := writeConf(t, dir, nameB, b, "", a)
	for _, c := range []string{confA, confB} {
		f, err := os.OpenFile(c, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "PresharedKey = %s\n", psk)
		f.Close()
	}
	logA := upLoggedIn(t, na, nameA, confA, format)
	logB := upLoggedIn(t, nb, nameB, confB, format)
	pingtest.Ping(t, na, "198.51.100.2", 2, 56)

	// New keys through the UAPI socket: a's private key and the preshared
	// key on both ends; b learns a's new public key.
	files := 0
	keyFile := func(k protocol.Key) string {
		files++
		f := filepath.Join(dir, fmt.Sprintf("key%d", files))
		if err := os.WriteFile(f, []byte(k.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	na.Run("wg", "set", nameA, "private-key", keyFile(a2), "peer", b.key.PublicKey().String(), "preshared-key", keyFile(psk2))
	nb.Run("wg", "set", nameB, "peer", a.key.PublicKey().String(), "remove",
		"peer", a2.PublicKey().String(), "preshared-key", keyFile(psk2), "allowed-ips", "198.51.100.1/32", "endpoint", "192.0.2.1:51041")
	na.Run("wg", "showconf", nameA) // a get at debug: the answer holds the key, the log must not
	pingtest.Ping(t, nb, "198.51.100.1", 2, 56)

	// A client that mistypes keys: each set is refused and logged.
	for _, set := range []string{
		"private_key " + a2.Hex(),        // no '='
		"private_key=" + a2.Hex()[:63],   // one digit short
		"private_key:" + a2.Hex() + "=1", // a mangled name
		"public_key=" + b.key.PublicKey().Hex() + "\npreshared_key=" + psk2.Hex() + "0", // one digit too many
	} {
		if answer := uapiSet(t, nameA, set); !strings.Contains(answer, "errno=") || strings.Contains(answer, "errno=0\n") {
			t.Errorf("a set of %q was answered %q, want an error", set[:12], answer)
		}
	}
	outA, outB := logA(), logB()

	// Files with bad keys: refused with file, line and key, the value not shown.
	var refused []string
	for i, bad := range []string{
		"PrivateKey = " + a.key.String()[:40] + "\n",                                             // too short
		"PrivateKey = " + a.key.String()[:42] + "F=\n",                                           // almost valid: stray bits
		"PrivateKey: " + a.key.String() + "\n",                                                   // a colon
		"PrivateKey = " + a.key.Hex() + "\n",                                                     // hex
		"PrivateKey = " + b.key.String() + "\n[Peer]\nPublicKey = " + a.key.String()[:43] + "\n", // the private key pasted as the public
		"PrivateKey = " + b.key.String() + "\n[Peer]\nPublicKey = " + a.key.PublicKey().String() + "\nPresharedKey = " + psk.String()[:43] + "\n",
		"PrivateKey = " + b.key.String() + "\n[Peer]\nPublicKey = " + a.key.PublicKey().String() + "\nPresharedKey " + psk.String() + "\n",
	} {
		conf := filepath.Join(dir, fmt.Sprintf("%sbad%d.conf", prefix, i))
		if err := os.WriteFile(conf, []byte("[Interface]\n"+bad), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := na.Command(filepath.Join(binaries(t), "tapwire"), "up", "-f", "--log-format", format, "--log-level", "debug", conf).CombinedOutput()
		if err == nil || !strings.Contains(string(out), conf+":") {
			t.Errorf("tapwire up %s: %v, want it refused with the file's name and line:\n%s", bad, err, out)
		}
		refused = append(refused, string(out))
	}

	// The logs are the debug logs, in the format asked for.
	for name, out := range map[string]string{nameA: outA, nameB: outB} {
		for _, want := range []string{"handshake complete", "uapi: set applied", "interface up"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s's log lacks %q:\n%s", name, want, out)
			}
		}
		if format == logging.JSON {
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil {
					t.Errorf("%s's log: %q is not a JSON record: %v", name, l, err)
				}
			}
		} else if !strings.Contains(out, "level=DEBUG") {
			t.Errorf("%s's log has no level=DEBUG record:\n%s", name, out)
		}
	}
	if !strings.Contains(outA, "uapi: bad set request") {
		t.Errorf("%s's log does not show the refused sets:\n%s", nameA, outA)
	}
	for what, out := range map[string]string{nameA + "'s log": outA, nameB + "'s log": outB, "the refusals": strings.Join(refused, "")} {
		for name, k := range secrets {
			if found := keyLeaks(out, k); found != nil {
				t.Errorf("%s holds %s (%s):\n%s", what, name, strings.Join(found, ", "), out)
			}
		}
	}
}

// keyLeaks says where key k shows in out: any 16 characters in a row of
// its base64 (as wg writes it) or of its hex (as the UAPI carries it, in
// either case), its raw bytes, its bytes quoted as slog's text handler
// writes a byte slice, or in decimal as fmt prints one. 16 characters of a
// random key are 64 bits or more: no accident.
func keyLeaks(out string, k protocol.Key) []string {
	var found []string
	for form, text := range map[string]string{"base64": k.String(), "hex": k.Hex(), "HEX": strings.ToUpper(k.Hex())} {
		for i := 0; i+16 <= len(text); i++ {
			if strings.Contains(out, text[i:i+16]) {
				found = append(found, fmt.Sprintf("%s characters %d-%d", form, i, i+16))
				break
			}
		}
	}
	for form, text := range map[string]string{
		"raw bytes":     string(k[:]),
		"quoted bytes":  strings.Trim(strconv.Quote(string(k[:])), `"`),
		"decimal bytes": strings.Trim(fmt.Sprint(k[:]), "[]"),
	} {
		if strings.Contains(out, text) {
			found = append(found, form)
		}
	}
	return found
}

// upLoggedIn runs tapwire up -f at --log-level debug in ns, waits for
// the interface's UAPI socket, and returns a function that stops it
// (SIGINT) and returns its output. The cleanup stops it too.
func upLoggedIn(t *testing.T, ns *nstest.NS, name, conf, format string) func() string {
	t.Helper()
	cmd := ns.Command(filepath.Join(binaries(t), "tapwire"), "up", "-f", "--log-format", format, "--log-level", "debug", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("tapwire up -f %s: %v", name, err)
				}
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				<-exited
				t.Errorf("tapwire up -f %s still running a minute after SIGINT: killed", name)
			}
		}
		return out.String()
	}
	t.Cleanup(func() { stop() })
	sock := filepath.Join(uapi.SocketDir, name+".sock")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("tapwire up -f %s exited: %v\n%s", name, err, stop())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tapwire up -f %s: no UAPI socket after a minute:\n%s", name, stop())
		}
	}
	return stop
}

// uapiSet sends one set transaction to name's UAPI socket and returns the
// answer.
func uapiSet(t *testing.T, name, body string) string {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(uapi.SocketDir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(c, "set=1\n%s\n\n", body); err != nil {
		t.Fatal(err)
	}
	var answer bytes.Buffer
	buf := make([]byte, 512)
	for !bytes.HasSuffix(answer.Bytes(), []byte("\n\n")) {
		n, err := c.Read(buf)
		answer.Write(buf[:n])
		if err != nil {
			if !strings.Contains(err.Error(), syscall.ECONNRESET.Error()) {
				t.Logf("UAPI answer to %q cut short: %v", body[:12], err)
			}
			break
		}
	}
	return answer.String()
}

// TestTapwireGoJSONLogHoldsNoKeys: tapwire-go --log-format json (and
// LOG_FORMAT=json) at LOG_LEVEL=debug writes JSON records only, and a
// private and a preshared key given by wg set are not among them.
func TestTapwireGoJSONLogHoldsNoKeys(t *testing.T) {
	requireWGTool(t)
	nstest.GuardHost(t)
	for i, how := range []string{"flag", "environment"} {
		t.Run(how, func(t *testing.T) {
			ns := nstest.New(t)
			name := fmt.Sprintf("twgojson%d", i)
			args := []string{"-f", name}
			env := append(os.Environ(), "LOG_LEVEL=debug")
			if how == "flag" {
				args = append([]string{"--log-format", "json"}, args...)
				env = append(env, "LOG_FORMAT=text") // the flag wins
			} else {
				env = append(env, "LOG_FORMAT=json")
			}
			cmd := ns.Command(filepath.Join(binaries(t), "tapwire-go"), args...)
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			sock := filepath.Join(uapi.SocketDir, name+".sock")
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(sock); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("tapwire-go made no socket")
				}
			}
			priv, psk := key(t), key(t)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "priv"), []byte(priv.String()+"\n"), 0o600)
			os.WriteFile(filepath.Join(dir, "psk"), []byte(psk.String()+"\n"), 0o600)
			ns.Run("wg", "set", name, "private-key", filepath.Join(dir, "priv"), "listen-port", "51043",
				"peer", key(t).PublicKey().String(), "preshared-key", filepath.Join(dir, "psk"), "allowed-ips", "198.51.100.9/32")
			ns.Run("wg", "showconf", name)
			os.Remove(sock) // tapwire-go exits, as wireguard-go does
			select {
			case err := <-exited:
				exited <- err
				if err != nil {
					t.Errorf("tapwire-go: %v\n%s", err, &out)
				}
			case <-time.After(time.Minute):
				t.Fatalf("tapwire-go still running a minute after its socket was removed:\n%s", &out)
			}
			log := out.String()
			for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil {
					t.Errorf("%q is not a JSON record: %v", l, err)
				}
			}
			if !strings.Contains(log, `"msg":"uapi: set applied"`) || !strings.Contains(log, `"level":"DEBUG"`) {
				t.Errorf("not the debug log of a set:\n%s", log)
			}
			for what, k := range map[string]protocol.Key{"private key": priv, "preshared key": psk} {
				if found := keyLeaks(log, k); found != nil {
					t.Errorf("the log holds the %s (%s):\n%s", what, strings.Join(found, ", "), log)
				}
			}
		})
	}
}
