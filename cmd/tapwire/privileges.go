package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/tapwire/tapwire/config"
	"github.com/tapwire/tapwire/internal/privdrop"
)

// Once the interface is up, tapwire up gives up every privilege but
// CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE for a tunnel port below 1024),
// for good: what it still does needs no more. It keeps netlink (taking
// routes, rules, addresses and the link back at down; SO_MARK for `wg set
// fwmark`), its sockets and device, and, as uid 0, the files root owns by
// their owner's permissions: its run files, the UAPI socket, the
// configuration file it reads again on SIGHUP and writes with SaveConfig.
// What it keeps root for is running programs after start: PreDown and
// PostDown hooks, and resolvconf or resolvectl resetting DNS at down; and
// a configuration file root may open only by overriding permissions
// (another user's file, a directory closed to root's owner bits).

// privilegesToKeep returns the capabilities the daemon of cfg keeps after
// start, or, when it keeps root's, why ("" for neither: nothing said).
func privilegesToKeep(cfg *config.Config, path string, keepFlag bool) (keep []privdrop.Capability, why string) {
	in := &cfg.Interface
	switch {
	case keepFlag:
		return nil, "--keep-privileges"
	case len(in.PreDown) > 0 || len(in.PostDown) > 0:
		return nil, "PreDown/PostDown hooks"
	case len(in.DNS) > 0:
		return nil, "DNS, which taking the interface down resets with resolvconf or resolvectl"
	}
	if why := fileNeedsOverride(path, in.SaveConfig); why != "" {
		return nil, why
	}
	keep = []privdrop.Capability{privdrop.NetAdmin}
	if low := func(port int) bool { return port > 0 && port < 1024 }; low(in.ListenPort) || low(in.ListenTCP) {
		keep = append(keep, privdrop.NetBindService)
	}
	return keep, ""
}

// fileNeedsOverride says why root, without CAP_DAC_OVERRIDE, could not
// read the configuration file at path again (reload), or, with save,
// replace it (SaveConfig: a new file in its directory renamed over it);
// "" when it can.
func fileNeedsOverride(path string, save bool) string {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("%s cannot be checked: %v", path, err)
	}
	// Every directory on the way must let root's owner bits search it.
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Sprintf("%s cannot be checked: %v", path, err)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Sprintf("%s cannot be checked: %v", dir, err)
		}
		if !rootMay(di, 1) {
			return fmt.Sprintf("%s is in %s, which root may search only with CAP_DAC_OVERRIDE (owner %s, mode %s): reloading it needs that", path, dir, ownerOf(di), di.Mode())
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	if !rootMay(fi, 4) {
		return fmt.Sprintf("%s is not readable by its owner root (owner %s, mode %04o): reloading it needs CAP_DAC_OVERRIDE", path, ownerOf(fi), fi.Mode().Perm())
	}
	if !save {
		return ""
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Sprintf("%s cannot be checked: %v", dir, err)
	}
	fuid, _, fok := fileOwner(fi)
	duid, _, dok := fileOwner(di)
	sticky := di.Mode()&fs.ModeSticky != 0 && fok && fuid != 0 && dok && duid != 0
	if !rootMay(di, 2) || !rootMay(di, 1) || sticky {
		return fmt.Sprintf("SaveConfig writes %s, whose directory root may change only with CAP_DAC_OVERRIDE (owner %s, mode %s)", path, ownerOf(di), di.Mode())
	}
	return ""
}

// rootMay reports whether a process of uid 0 and gid 0 without
// CAP_DAC_OVERRIDE has the permission bit (4 read, 2 write, 1 execute or
// search) on a file of fi: its owner's bits if root owns it, else its
// group's if the group is 0, else everyone's.
func rootMay(fi fs.FileInfo, bit fs.FileMode) bool {
	uid, gid, ok := fileOwner(fi)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case uid == 0:
		return perm&(bit<<6) != 0
	case gid == 0:
		return perm&(bit<<3) != 0
	}
	return perm&bit != 0
}

// ownerOf is the owner of a file, "uid N" but for root.
func ownerOf(fi fs.FileInfo) string {
	if uid, _, ok := fileOwner(fi); ok && uid != 0 {
		return "uid " + strconv.FormatUint(uint64(uid), 10)
	}
	return "root"
}

// dropPrivileges drops the daemon's privileges as the top of this file
// says, logs what it kept, and returns it as tapwire status shows it:
// "CAP_NET_ADMIN (dropped after start)" or "root (kept: WHY)".
func dropPrivileges(cfg *config.Config, path string, keepFlag bool, log *slog.Logger) string {
	if runtime.GOOS != "linux" {
		s := "the user's (kept: capabilities are Linux's; nothing is dropped on " + runtime.GOOS + ")"
		log.Info("privileges", "kept", s)
		return s
	}
	who := "root"
	if os.Geteuid() != 0 {
		who = "uid " + strconv.Itoa(os.Geteuid()) + "'s capabilities"
	}
	keep, why := privilegesToKeep(cfg, path, keepFlag)
	if why == "" {
		if err := privdrop.Drop(keep...); err != nil {
			why = "dropping failed: " + err.Error()
			if errors.Is(err, privdrop.ErrNotSupported) {
				why = "dropping is not supported on this system"
			}
			log.Warn("privileges kept", "err", err)
		}
	}
	if why != "" {
		s := who + " (kept: " + why + ")"
		log.Info("privileges", "kept", s)
		return s
	}
	s := privdrop.Names(keep) + " (dropped after start)"
	log.Info("privileges dropped", "kept", privdrop.Names(keep))
	return s
}
