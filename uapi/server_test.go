//go:build linux

package uapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapwire/tapwire/devconf"
)

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serve runs s.Serve(b) until the test ends, then closes s and checks that
// Serve returned nil promptly.
func serve(t *testing.T, s *Server, b Backend) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve(b) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after Close, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
}

func startTemp(t *testing.T, b Backend) *Server {
	t.Helper()
	s, err := ListenPath(filepath.Join(t.TempDir(), "tw0.sock"), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, b)
	return s
}

func dial(t *testing.T, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readAnswer reads lines up to the blank line and returns them, the errno
// line last.
func readAnswer(t *testing.T, br *bufio.Reader) []string {
	t.Helper()
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading answer after %q: %v", lines, err)
		}
		if l == "\n" {
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
}

func lastLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		t.Errorf("connection still open: read %q", b)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read: %v, want EOF", err)
	}
}

func TestServerSetAndGet(t *testing.T) {
	b := newMemBackend()
	s := startTemp(t, b)
	c, br := dial(t, s.Path())

	fmt.Fprintf(c, "set=1\nprivate_key=%s\nlisten_port=51820\npublic_key=%s\nendpoint=[::1]:7\nallowed_ip=10.0.0.0/8\n\n", hexPriv, hexPub1)
	if got := readAnswer(t, br); len(got) != 1 || got[0] != "errno=0" {
		t.Fatalf("set answered %q", got)
	}
	// The same connection carries the next request.
	fmt.Fprintf(c, "get=1\n\n")
	got := readAnswer(t, br)
	want := []string{
		"private_key=" + hexPriv,
		"listen_port=51820",
		"public_key=" + hexPub1,
		"preshared_key=" + strings.Repeat("0", 64),
		"protocol_version=1",
		"endpoint=[::1]:7",
		"last_handshake_time_sec=0",
		"last_handshake_time_nsec=0",
		"tx_bytes=0",
		"rx_bytes=0",
		"persistent_keepalive_interval=0",
		"allowed_ip=10.0.0.0/8",
		"errno=0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("get answered\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Requests sent back to back in one write are answered in order.
func TestServerPipelined(t *testing.T) {
	b := newMemBackend()
	s := startTemp(t, b)
	c, br := dial(t, s.Path())
	io.WriteString(c, "get=1\n\nset=1\nfwmark=7\n\nget=1\n\nset=1\nlisten_port=1\n\n")
	if got := readAnswer(t, br); len(got) != 1 || got[0] != "errno=0" {
		t.Errorf("first get: %q", got)
	}
	if got := readAnswer(t, br); len(got) != 1 || got[0] != "errno=0" {
		t.Errorf("set: %q", got)
	}
	if got := readAnswer(t, br); strings.Join(got, ",") != "fwmark=7,errno=0" {
		t.Errorf("second get: %q", got)
	}
	if got := readAnswer(t, br); lastLine(got) != "errno=0" {
		t.Errorf("second set: %q", got)
	}
}

func TestServerErrnos(t *testing.T) {
	b := newMemBackend()
	b.busyPort = 51998
	s := startTemp(t, b)

	t.Run("bad set closes", func(t *testing.T) {
		c, br := dial(t, s.Path())
		io.WriteString(c, "set=1\nlisten_port=1\nfwmark=x\n\n")
		if got := readAnswer(t, br); lastLine(got) != "errno=-22" {
			t.Errorf("answer %q, want errno=-22", got)
		}
		expectEOF(t, br)
	})
	t.Run("line without equals is EPROTO", func(t *testing.T) {
		c, br := dial(t, s.Path())
		io.WriteString(c, "set=1\nfwmark\n\n")
		if got := readAnswer(t, br); lastLine(got) != "errno=-71" {
			t.Errorf("answer %q, want errno=-71", got)
		}
	})
	t.Run("Apply error keeps the connection", func(t *testing.T) {
		c, br := dial(t, s.Path())
		io.WriteString(c, "set=1\nfwmark=5\nlisten_port=51998\n\n")
		if got := readAnswer(t, br); lastLine(got) != "errno=-98" {
			t.Errorf("answer %q, want errno=-98 (EADDRINUSE)", got)
		}
		// All or nothing: the fwmark was not applied either.
		io.WriteString(c, "get=1\n\n")
		if got := readAnswer(t, br); strings.Join(got, ",") != "errno=0" {
			t.Errorf("get after failed set: %q", got)
		}
	})
	t.Run("unknown operation", func(t *testing.T) {
		c, br := dial(t, s.Path())
		io.WriteString(c, "hello\n")
		if got := readAnswer(t, br); lastLine(got) != "errno=-22" {
			t.Errorf("answer %q", got)
		}
		expectEOF(t, br)
	})
	t.Run("get with trailing data", func(t *testing.T) {
		c, br := dial(t, s.Path())
		io.WriteString(c, "get=1\nx\n")
		if got := readAnswer(t, br); lastLine(got) != "errno=-22" {
			t.Errorf("answer %q", got)
		}
		expectEOF(t, br)
	})
	if n := len(b.applies()); n != 0 {
		t.Errorf("%d transactions applied, want none", n)
	}
}

type funcBackend struct {
	status func() devconf.DeviceStatus
	apply  func(devconf.DeviceConfig) error
}

func (f funcBackend) Status() devconf.DeviceStatus       { return f.status() }
func (f funcBackend) Apply(c devconf.DeviceConfig) error { return f.apply(c) }

func TestServerApplyErrorValues(t *testing.T) {
	var next error
	s := startTemp(t, funcBackend{
		status: func() devconf.DeviceStatus { return devconf.DeviceStatus{} },
		apply:  func(devconf.DeviceConfig) error { return next },
	})
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("no errno"), "errno=-55"},
		{fmt.Errorf("bind: %w", syscall.EADDRINUSE), "errno=-98"},
		{&devconf.Error{Errno: -22}, "errno=-22"},
		{nil, "errno=0"},
	} {
		next = tc.err
		c, br := dial(t, s.Path())
		io.WriteString(c, "set=1\n\n")
		if got := readAnswer(t, br); lastLine(got) != tc.want {
			t.Errorf("Apply returning %v: answer %q, want %s", tc.err, got, tc.want)
		}
		c.Close()
	}
}

// A client that misbehaves (garbage, an endless line, a request cut short,
// a request left half-sent) never holds up another client.
func TestServerRobustness(t *testing.T) {
	b := newMemBackend()
	s := startTemp(t, b)

	check := func(t *testing.T) {
		t.Helper()
		c, br := dial(t, s.Path())
		fmt.Fprintf(c, "set=1\nfwmark=%d\n\nget=1\n\n", 42)
		if got := readAnswer(t, br); lastLine(got) != "errno=0" {
			t.Fatalf("good client's set: %q", got)
		}
		if got := readAnswer(t, br); strings.Join(got, ",") != "fwmark=42,errno=0" {
			t.Fatalf("good client's get: %q", got)
		}
	}

	t.Run("garbage", func(t *testing.T) {
		bad, bbr := dial(t, s.Path())
		bad.Write([]byte("\x00\xff\x01garbage\n"))
		check(t)
		if got := readAnswer(t, bbr); lastLine(got) != "errno=-22" {
			t.Errorf("garbage answered %q", got)
		}
		expectEOF(t, bbr)
	})
	t.Run("over-long line", func(t *testing.T) {
		bad, bbr := dial(t, s.Path())
		go bad.Write(bytes.Repeat([]byte("x"), 1<<20)) // no newline; fails once the server closes
		check(t)
		if got := readAnswer(t, bbr); lastLine(got) != "errno=-22" {
			t.Errorf("long line answered %q", got)
		}
		expectEOF(t, bbr)
	})
	t.Run("over-long set line", func(t *testing.T) {
		bad, bbr := dial(t, s.Path())
		go bad.Write(append([]byte("set=1\nfwmark="), bytes.Repeat([]byte("1"), 1<<20)...))
		check(t)
		if got := readAnswer(t, bbr); lastLine(got) != "errno=-22" {
			t.Errorf("long line answered %q", got)
		}
	})
	t.Run("half-sent request stays open", func(t *testing.T) {
		bad, _ := dial(t, s.Path())
		io.WriteString(bad, "set=1\nlisten_port=1\npublic_key=")
		time.Sleep(20 * time.Millisecond) // let the server start reading it
		check(t)
		bad2, _ := dial(t, s.Path())
		io.WriteString(bad2, "ge")
		check(t)
	})
	t.Run("disconnect mid-request", func(t *testing.T) {
		before := len(b.applies())
		bad, _ := dial(t, s.Path())
		io.WriteString(bad, "set=1\nlisten_port=1\nfwmark=9\n")
		bad.Close()
		check(t)
		time.Sleep(20 * time.Millisecond)
		applied := b.applies()[before:]
		if len(applied) != 1 || applied[0].ListenPort != nil {
			t.Errorf("applied %+v: the cut-short request must not be applied", applied)
		}
	})
	t.Run("client that does not read", func(t *testing.T) {
		bad, _ := dial(t, s.Path())
		go io.WriteString(bad, strings.Repeat("get=1\n\n", 100000))
		check(t)
	})
}

// Close ends Serve while connections are open and idle.
func TestServerCloseWithOpenConnections(t *testing.T) {
	s, err := ListenPath(filepath.Join(t.TempDir(), "tw0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(newMemBackend()) }()
	c1, _ := dial(t, s.Path())
	c2, br2 := dial(t, s.Path())
	io.WriteString(c1, "set=1\nfwmark=1\n")
	io.WriteString(c2, "get=1\n\n")
	readAnswer(t, br2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	expectEOF(t, br2)
	if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
	if err := s.Serve(newMemBackend()); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestServerConcurrentClients(t *testing.T) {
	b := newMemBackend()
	s := startTemp(t, b)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c, err := net.Dial("unix", s.Path())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for j := range 50 {
				fmt.Fprintf(c, "set=1\npublic_key=%064x\nallowed_ip=10.%d.%d.0/24\n\nget=1\n\n", i+1, i, j)
				for range 2 {
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							t.Error(err)
							return
						}
						if l == "\n" {
							break
						}
						if strings.HasPrefix(l, "errno=") && l != "errno=0\n" {
							t.Errorf("answer %q", l)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	st := b.Status()
	if len(st.Peers) != 8 {
		t.Fatalf("%d peers, want 8", len(st.Peers))
	}
	for _, p := range st.Peers {
		if len(p.AllowedIPs) != 50 {
			t.Errorf("peer %x: %d allowed IPs, want 50", p.PublicKey[:2], len(p.AllowedIPs))
		}
	}
}

func TestListenPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tw0.sock")

	t.Run("mode 0600, no leftovers", func(t *testing.T) {
		s, err := ListenPath(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Errorf("directory holds %d entries, want only the socket", len(ents))
		}
	})

	t.Run("live socket refused", func(t *testing.T) {
		s1, err := ListenPath(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s1.Close()
		s2, err := ListenPath(path)
		if err == nil {
			s2.Close()
			t.Fatal("second ListenPath on a live socket succeeded")
		}
		if !strings.Contains(err.Error(), "in use") {
			t.Errorf("error %q does not say the socket is in use", err)
		}
		// The first server still works.
		serve(t, s1, newMemBackend())
		c, br := dial(t, path)
		io.WriteString(c, "get=1\n\n")
		if got := readAnswer(t, br); lastLine(got) != "errno=0" {
			t.Errorf("first server answered %q", got)
		}
	})

	t.Run("stale socket replaced", func(t *testing.T) {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close() // the file stays, nobody listens: as after a crash
		if _, err := os.Lstat(path); err != nil {
			t.Fatal(err)
		}
		s, err := ListenPath(path, WithLogger(testLogger(t)))
		if err != nil {
			t.Fatalf("ListenPath over a stale socket: %v", err)
		}
		serve(t, s, newMemBackend())
		c, br := dial(t, path)
		io.WriteString(c, "get=1\n\n")
		readAnswer(t, br)
	})

	t.Run("not a socket", func(t *testing.T) {
		p := filepath.Join(dir, "file.sock")
		os.WriteFile(p, []byte("keep me"), 0o644)
		if s, err := ListenPath(p); err == nil {
			s.Close()
			t.Fatal("ListenPath replaced a regular file")
		}
		if data, _ := os.ReadFile(p); string(data) != "keep me" {
			t.Error("the file was changed")
		}
	})

	t.Run("Close leaves a socket that replaced ours", func(t *testing.T) {
		p := filepath.Join(dir, "tw1.sock")
		s, err := ListenPath(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		other, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		s.Close()
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("Close removed another process's socket: %v", err)
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		if s, err := ListenPath(filepath.Join(dir, "nope", "x.sock")); err == nil {
			s.Close()
			t.Fatal("ListenPath in a missing directory succeeded")
		}
	})
}

func TestListenBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "0123456789abcdef", "a\x00b"} {
		if s, err := Listen(name); err == nil {
			s.Close()
			t.Errorf("Listen(%q) succeeded", name)
		}
	}
}

// SocketGone notices the socket file deleted or replaced, whenever the
// caller first asks.
func TestSocketGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tw0.sock")
	s, err := ListenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.SocketGone() {
		t.Fatal("SocketGone right after Listen")
	}
	os.Remove(path)
	if !s.SocketGone() {
		t.Fatal("SocketGone false after the socket was deleted")
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !s.SocketGone() {
		t.Fatal("SocketGone false after the socket was replaced by another file")
	}
}

// setBody returns a set=1 body of exactly n bytes (n >= 20), the blank line
// included: fwmark lines, the last one padded with zeros, all fwmark=1.
func setBody(n int) string {
	var b strings.Builder
	for b.Len()+9+10 <= n {
		b.WriteString("fwmark=1\n")
	}
	pad := n - b.Len() - len("fwmark=1\n\n")
	b.WriteString("fwmark=" + strings.Repeat("0", pad) + "1\n\n")
	return b.String()
}

// TestServerSetTooLarge: a set=1 transaction over the server's bound is
// answered with EMSGSIZE, nothing of it is applied, and the connection
// carries the next request; one at the bound is applied.
func TestServerSetTooLarge(t *testing.T) {
	const max = 1000
	b := newMemBackend()
	s, err := ListenPath(filepath.Join(t.TempDir(), "tw0.sock"), WithLogger(testLogger(t)), WithMaxSetSize(max))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, b)
	c, br := dial(t, s.Path())
	if len(setBody(max)) != max {
		t.Fatalf("setBody(%d) is %d bytes", max, len(setBody(max)))
	}
	io.WriteString(c, "set=1\n"+setBody(max))
	if got := readAnswer(t, br); lastLine(got) != "errno=0" {
		t.Fatalf("a transaction of %d bytes: %q", max, got)
	}
	applied := len(b.applies())
	huge := "set=1\npublic_key=" + strings.Repeat("ab", 32) + "\n" + strings.Repeat("allowed_ip=10.1.2.3/32\n", 1<<16) + "\n"
	for _, req := range []struct{ name, text string }{
		{"one byte over", "set=1\n" + strings.Replace(setBody(max+1), "fwmark=1", "fwmark=2", 1)},
		{"a long peer", huge},
		{"CRLF", "set=1\n" + strings.ReplaceAll(strings.Repeat("fwmark=2\n", 200), "\n", "\r\n") + "\r\n"},
		{"an endless line in the excess", "set=1\n" + strings.Repeat("fwmark=2\n", 200) + "x=" + strings.Repeat("y", 100000) + "\n\n"},
		{"junk in the excess", "set=1\n" + strings.Repeat("fwmark=2\n", 200) + "\x00\xff junk\n=\n\n"},
	} {
		t.Run(req.name, func(t *testing.T) {
			go io.WriteString(c, req.text)
			if got := readAnswer(t, br); lastLine(got) != "errno=-90" {
				t.Fatalf("answer %q, want errno=-90 (EMSGSIZE)", got)
			}
			// The same connection goes on.
			io.WriteString(c, "get=1\n\n")
			if got := readAnswer(t, br); strings.Join(got, ",") != "fwmark=1,errno=0" {
				t.Fatalf("get after the refused set: %q", got)
			}
		})
	}
	if n := len(b.applies()); n != applied {
		t.Errorf("%d transactions applied after the one that fit, want none", n-applied)
	}

	// One that the client cuts short: dropped, and the server serves on.
	c2, _ := dial(t, s.Path())
	io.WriteString(c2, "set=1\n"+strings.Repeat("fwmark=3\n", 200))
	c2.Close()
	c3, br3 := dial(t, s.Path())
	io.WriteString(c3, "get=1\n\n")
	if got := readAnswer(t, br3); strings.Join(got, ",") != "fwmark=1,errno=0" {
		t.Errorf("get after a cut-short oversized set: %q", got)
	}
}

// TestServerSetDefaultBound: without WithMaxSetSize a transaction is
// bounded by DefaultMaxSetSize (it was not bounded at all).
func TestServerSetDefaultBound(t *testing.T) {
	b := newMemBackend()
	s := startTemp(t, b)
	c, br := dial(t, s.Path())
	line := "allowed_ip=10.1.2.3/32\n"
	req := "set=1\npublic_key=" + strings.Repeat("ab", 32) + "\n" + strings.Repeat(line, DefaultMaxSetSize/len(line)+1) + "\n"
	go io.WriteString(c, req)
	if got := readAnswer(t, br); lastLine(got) != "errno=-90" {
		t.Fatalf("a transaction of %d bytes: %q, want errno=-90", len(req), got)
	}
	if n := len(b.applies()); n != 0 {
		t.Errorf("%d transactions applied", n)
	}
}

// TestServerSlowClients: connections that send nothing, or stop in the
// middle of a request, hold up no one (each has its goroutine, and a set
// is read in full before it takes the device's lock); a set finished
// late is applied, on the same connection.
func TestServerSlowClients(t *testing.T) {
	b := newMemBackend()
	s := startTemp(t, b)
	for range 50 {
		dial(t, s.Path()) // says nothing
	}
	half, hbr := dial(t, s.Path())
	io.WriteString(half, "set=1\nfwmark=7\n") // no blank line yet
	partial, _ := dial(t, s.Path())
	io.WriteString(partial, "set=1\nfwm") // stops in a line
	get, _ := dial(t, s.Path())
	io.WriteString(get, "get=1\n") // no blank line

	c, br := dial(t, s.Path())
	io.WriteString(c, "set=1\nfwmark=3\n\nget=1\n\n")
	if got := readAnswer(t, br); lastLine(got) != "errno=0" {
		t.Fatalf("set beside slow clients: %q", got)
	}
	if got := readAnswer(t, br); strings.Join(got, ",") != "fwmark=3,errno=0" {
		t.Fatalf("get beside slow clients: %q", got)
	}
	io.WriteString(half, "\nget=1\n\n")
	if got := readAnswer(t, hbr); lastLine(got) != "errno=0" {
		t.Fatalf("the late set: %q", got)
	}
	if got := readAnswer(t, hbr); strings.Join(got, ",") != "fwmark=7,errno=0" {
		t.Fatalf("get after the late set: %q", got)
	}
}
