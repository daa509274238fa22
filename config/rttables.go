package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TableNames resolves a routing table name to its id, as ip(8) does; ok is
// false for a name it does not know, and err reports a name database that
// could not be read.
type TableNames func(name string) (id uint32, ok bool, err error)

// IPRoute2Tables returns the TableNames of ip(8) on the system whose root
// directory is root ("/" for this host). Names are case sensitive, as for
// ip. They come from the files ip reads, in its order:
// /etc/iproute2/rt_tables (or, where that file does not exist,
// /usr/share/iproute2/rt_tables), then the *.conf files of rt_tables.d
// under /usr/share/iproute2 and then under /etc/iproute2, each directory in
// name order; a name defined again replaces the earlier id. unspec (0),
// default (253), main (254) and local (255) are known without a file. Each
// call reads the files again. A file that does not exist is no error; one
// that cannot be read is.
func IPRoute2Tables(root string) TableNames {
	return func(name string) (uint32, bool, error) {
		files, err := rtTablesFiles(root)
		if err != nil {
			return 0, false, err
		}
		for _, f := range files {
			id, ok, err := lookupRTTables(f, name)
			if err != nil || ok {
				return id, ok, err
			}
		}
		id, ok := builtinTable(name)
		return id, ok, nil
	}
}

// builtinTable returns the id of a name ip(8) knows without a file.
func builtinTable(name string) (uint32, bool) {
	switch name {
	case "unspec":
		return 0, true
	case "default":
		return 253, true
	case "main":
		return 254, true
	case "local":
		return 255, true
	}
	return 0, false
}

// rtTablesFiles returns the files IPRoute2Tables reads under root, the one
// read last (whose definitions win) first.
func rtTablesFiles(root string) ([]string, error) {
	var files []string
	for _, dir := range []string{"/etc/iproute2/rt_tables.d", "/usr/share/iproute2/rt_tables.d"} {
		confs, err := filepath.Glob(filepath.Join(root, dir, "*.conf"))
		if err != nil {
			return nil, err
		}
		// Read in name order, a later file overriding: so the last first.
		for i := len(confs) - 1; i >= 0; i-- {
			files = append(files, confs[i])
		}
	}
	main := filepath.Join(root, "/etc/iproute2/rt_tables")
	if _, err := os.Stat(main); errors.Is(err, fs.ErrNotExist) {
		main = filepath.Join(root, "/usr/share/iproute2/rt_tables")
	}
	return append(files, main), nil
}

// lookupRTTables finds name in one rt_tables file: lines of an id (decimal,
// or hexadecimal after 0x) and a name, # comments and blank lines, as ip
// reads them; the last definition in the file wins. Lines ip would not
// read are skipped.
func lookupRTTables(path, name string) (uint32, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("routing table names: %w", err)
	}
	defer f.Close()
	var id uint32
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || fields[1] != name {
			continue
		}
		if len(fields) > 2 && !strings.HasPrefix(fields[2], "#") {
			continue
		}
		n, err := parseRTTablesID(fields[0])
		if err != nil {
			continue
		}
		id, found = n, true
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("routing table names: read %s: %w", path, err)
	}
	return id, found, nil
}

// parseRTTablesID parses an id of an rt_tables line: 0x and hexadecimal, or
// decimal.
func parseRTTablesID(s string) (uint32, error) {
	if hex, ok := strings.CutPrefix(s, "0x"); ok {
		n, err := strconv.ParseUint(hex, 16, 32)
		return uint32(n), err
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}
