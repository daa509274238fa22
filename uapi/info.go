package uapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// InfoBackend is a Backend with more to tell than a get=1 answer carries.
// The Server answers tapwire's extension request "get=tapwire\n\n" with
// "tapwire=" and Info marshalled as JSON on one line, then "errno=0\n\n".
// wg(8) never sends the request, so the extension changes nothing for it.
type InfoBackend interface {
	Backend
	Info() any
}

// GetInfo asks the userspace interface iface (its socket in SocketDir) for
// its tapwire information and decodes it into v.
func GetInfo(iface string, v any) error {
	return GetInfoPath(SocketPath(iface), v)
}

// GetInfoPath is GetInfo for the socket at path.
func GetInfoPath(path string, v any) error {
	c, err := dialUAPI(path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("get=tapwire\n\n")); err != nil {
		return fmt.Errorf("ask %s: %w", path, err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	var info []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read the answer of %s: %w", path, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "tapwire="):
			info = []byte(strings.TrimPrefix(line, "tapwire="))
		case line == "errno=0":
		case strings.HasPrefix(line, "errno="):
			return fmt.Errorf("%s: %s (not a tapwire interface?)", path, line)
		case line == "":
			if info == nil {
				return fmt.Errorf("%s: no tapwire information in the answer", path)
			}
			if err := json.Unmarshal(info, v); err != nil {
				return fmt.Errorf("decode the answer of %s: %w", path, err)
			}
			return nil
		}
	}
}

// RequestStop asks the tapwire interface whose UAPI socket (or pipe) is at
// path to take itself down, as tapwire down does on Windows: the request
// "stop=tapwire", answered errno=0 by a server made WithStop. It returns
// once the interface has been asked, not when it is down.
func RequestStop(path string) error {
	c, err := dialUAPI(path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("stop=tapwire\n\n")); err != nil {
		return fmt.Errorf("ask %s: %w", path, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", path, err)
	}
	if line = strings.TrimSuffix(line, "\n"); line != "errno=0" {
		return fmt.Errorf("%s: %s (not a tapwire interface?)", path, line)
	}
	return nil
}
