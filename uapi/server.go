package uapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tapwire/tapwire/devconf"
)

// writeTimeout bounds writing one answer to a client that does not read.
const writeTimeout = 30 * time.Second

// An Option configures a Server.
type Option func(*Server)

// WithLogger makes the Server log to l (by default it logs nothing). It never
// logs keys other than public keys.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithMaxSetSize bounds one set=1 transaction to n bytes (see
// DefaultMaxSetSize, the default): a bigger one is answered with
// errno=-90 (EMSGSIZE), which wg(8) prints as "Message too long", nothing
// of it is applied, and the connection carries the next request. n < 1
// leaves the default.
func WithMaxSetSize(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxSet = n
		}
	}
}

// WithStop makes the Server answer tapwire's extension request
// "stop=tapwire\n\n" by calling stop (once per request; stop must return
// promptly) and answering errno=0: how tapwire down asks a tapwire up to
// take its interface down where there are no signals to send (Windows).
// Only who may configure the device (the socket's or pipe's owner) can
// ask. Without it the request is answered with EINVAL.
func WithStop(stop func()) Option {
	return func(s *Server) { s.stop = stop }
}

// Server answers UAPI requests on a unix socket (on Windows, a named pipe).
type Server struct {
	stop   func() // WithStop's, or nil
	log    *slog.Logger
	maxSet int // bytes of one set=1 transaction
	path   string
	ln     net.Listener
	dev    uint64 // identity of the socket file, so Close removes only ours (not on Windows)
	ino    uint64

	mu      sync.Mutex
	closed  bool
	serving bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup // connection goroutines

	cfg sync.RWMutex // Apply excludes Apply and Status, as wireguard-go's ipcMutex
}

// checkName accepts what wg(8) accepts as an interface name.
func checkName(iface string) error {
	switch {
	case iface == "", iface == ".", iface == "..":
		return fmt.Errorf("uapi: bad interface name %q", iface)
	case len(iface) > 15:
		return fmt.Errorf("uapi: interface name %q is longer than 15 bytes", iface)
	case strings.ContainsAny(iface, "/\x00"):
		return fmt.Errorf("uapi: interface name %q contains '/' or NUL", iface)
	}
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve accepts connections and answers their requests with b until Close.
// Each connection has its own goroutine and may carry several requests. It
// returns nil after Close, once every connection's goroutine has finished.
func (s *Server) Serve(b Backend) error {
	if b == nil {
		return errors.New("uapi: Serve with a nil Backend")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("uapi: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()
	defer s.wg.Wait()

	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of descriptors or memory for now: back off, retry.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("uapi: accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("uapi: accept: %w", err)
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c, b)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the Server: it stops accepting, closes the open connections
// and removes the socket file if it is still the one Listen created.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()

	err := s.ln.Close()
	if rerr := s.removeOwn(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("uapi: close: %w", err)
	}
	return nil
}

// handle answers the requests of one connection until it ends or sends
// something the server cannot understand.
func (s *Server) handle(c net.Conn, b Backend) {
	br := bufio.NewReader(c)
	log := s.log.With("conn", connID(c))
	for {
		op, err := readLine(br, MaxLineLen)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				log.Warn("uapi: request line too long")
				s.answer(c, log, devconf.Errorf(syscall.EINVAL, "request line too long"))
			} else if !errors.Is(err, io.EOF) && !s.isClosed() {
				log.Debug("uapi: connection ended", "err", err)
			}
			return
		}
		switch op {
		case "get=1":
			// The request ends with a blank line.
			blank, err := readLine(br, MaxLineLen)
			if err != nil && !errors.Is(err, errLineTooLong) {
				return
			}
			if err != nil || blank != "" {
				s.answer(c, log, devconf.Errorf(syscall.EINVAL, "trailing data after get=1"))
				return
			}
			s.cfg.RLock()
			st := b.Status()
			s.cfg.RUnlock()
			var out bytes.Buffer
			appendGet(&out, st)
			out.WriteString("errno=0\n\n")
			if !s.write(c, log, out.Bytes()) {
				return
			}
		case "get=tapwire":
			// tapwire's extension: the backend's Info as one JSON line.
			blank, err := readLine(br, MaxLineLen)
			if err != nil || blank != "" {
				s.answer(c, log, devconf.Errorf(syscall.EINVAL, "trailing data after get=tapwire"))
				return
			}
			ib, ok := b.(InfoBackend)
			if !ok {
				s.answer(c, log, devconf.Errorf(syscall.EINVAL, "this device has no tapwire information"))
				return
			}
			s.cfg.RLock()
			info, err := json.Marshal(ib.Info())
			s.cfg.RUnlock()
			if err != nil {
				s.answer(c, log, err)
				return
			}
			var out bytes.Buffer
			out.WriteString("tapwire=")
			out.Write(info)
			out.WriteString("\nerrno=0\n\n")
			if !s.write(c, log, out.Bytes()) {
				return
			}
		case "stop=tapwire":
			// tapwire's extension: take the interface down (WithStop).
			blank, err := readLine(br, MaxLineLen)
			if err != nil || blank != "" {
				s.answer(c, log, devconf.Errorf(syscall.EINVAL, "trailing data after stop=tapwire"))
				return
			}
			if s.stop == nil {
				s.answer(c, log, devconf.Errorf(syscall.EINVAL, "this device cannot be stopped over its UAPI socket"))
				return
			}
			log.Info("uapi: asked to take the interface down")
			s.stop()
			s.answer(c, log, nil)
			return
		case "set=1":
			cfg, terminated, err := parseSet(br, s.maxSet)
			if err != nil {
				log.Warn("uapi: bad set request", "err", err)
				if !s.answer(c, log, err) {
					return
				}
				// A transaction too big was read to its end and
				// dropped: the connection carries the next request.
				if errnoOf(err) == devconf.WireErrno(syscall.EMSGSIZE) && terminated {
					continue
				}
				return
			}
			if !terminated {
				log.Debug("uapi: set request cut short by the client; nothing applied")
				return
			}
			s.cfg.Lock()
			err = b.Apply(cfg)
			s.cfg.Unlock()
			if err != nil {
				log.Warn("uapi: set failed", "err", err, "errno", errnoOf(err))
			} else {
				log.Debug("uapi: set applied", "peers", len(cfg.Peers))
			}
			if !s.answer(c, log, err) {
				return
			}
		default:
			log.Warn("uapi: unknown operation", "op", quote(op))
			s.answer(c, log, devconf.Errorf(syscall.EINVAL, "unknown operation %s", quote(op)))
			return
		}
	}
}

// answer writes the errno line for err (nil: errno=0), negated as
// wireguard-go writes it. It reports whether the write succeeded.
func (s *Server) answer(c net.Conn, log *slog.Logger, err error) bool {
	return s.write(c, log, []byte("errno="+strconv.Itoa(-errnoOf(err))+"\n\n"))
}

func (s *Server) write(c net.Conn, log *slog.Logger, p []byte) bool {
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(p); err != nil {
		if !s.isClosed() {
			log.Debug("uapi: write answer", "err", err)
		}
		return false
	}
	return true
}
