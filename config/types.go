package config

import "strconv"

// Mode is the kind of device a file asks for: TUN (IP packets) or TAP
// (Ethernet frames). The zero Mode is a file without a Mode line, which
// means TUN; Marshal writes a Mode line only for ModeTUN and ModeTAP.
type Mode uint8

const (
	ModeDefault Mode = iota // no Mode line: a TUN device
	ModeTUN                 // Mode = tun
	ModeTAP                 // Mode = tap
)

// TAP reports whether m asks for a tap device.
func (m Mode) TAP() bool { return m == ModeTAP }

// String returns the value as Marshal writes it: "tun", "tap", or "" for
// ModeDefault.
func (m Mode) String() string {
	switch m {
	case ModeTUN:
		return "tun"
	case ModeTAP:
		return "tap"
	}
	return ""
}

// Switch is a yes/no key whose default, when the key is left out, depends
// on the rest of the file (ClampMSS: yes in TAP mode, no in TUN mode).
type Switch uint8

const (
	SwitchDefault Switch = iota // no line: the default applies
	SwitchOn                    // yes, true or on (written "yes")
	SwitchOff                   // no, false or off (written "no")
)

// Or returns the setting: on for SwitchOn, off for SwitchOff, def for
// SwitchDefault.
func (s Switch) Or(def bool) bool {
	switch s {
	case SwitchOn:
		return true
	case SwitchOff:
		return false
	}
	return def
}

// String returns the value as Marshal writes it: "yes", "no", or "" for
// SwitchDefault.
func (s Switch) String() string {
	switch s {
	case SwitchOn:
		return "yes"
	case SwitchOff:
		return "no"
	}
	return ""
}

// Table is wg-quick's Table key: where the routes to the peers' allowed IPs
// go. Auto (the zero Table, a file without a Table line, and Table = auto)
// puts them in the main table, and a default route (/0) in a table of its
// own with policy rules; off adds no routes; a routing table, by number or
// by a name ip(8) knows, gets them all. A parsed Table keeps the value as
// written, so that Marshal writes `Table = main` back as it was.
type Table struct {
	kind tableKind
	id   uint32
	text string // as written; "" for the zero Table and one made in code
}

type tableKind uint8

const (
	tableAuto tableKind = iota
	tableOff
	tableID
)

// TableAuto returns Table = auto.
func TableAuto() Table { return Table{kind: tableAuto, text: "auto"} }

// TableOff returns Table = off.
func TableOff() Table { return Table{kind: tableOff, text: "off"} }

// TableID returns the routing table id (0, as for ip(8) and the kernel,
// is the main table, as is 254).
func TableID(id uint32) Table { return Table{kind: tableID, id: id} }

// Auto reports whether t is auto: the zero Table or Table = auto.
func (t Table) Auto() bool { return t.kind == tableAuto }

// Off reports whether t is Table = off: no routes.
func (t Table) Off() bool { return t.kind == tableOff }

// ID returns the routing table t names, and whether it names one (it does
// not when it is auto or off).
func (t Table) ID() (uint32, bool) { return t.id, t.kind == tableID }

// String returns the value as written in the file ("" for the zero Table),
// or for a Table made in code "auto", "off" or the table's number.
func (t Table) String() string {
	if t.text != "" || t.kind == tableAuto {
		return t.text
	}
	if t.kind == tableOff {
		return "off"
	}
	return strconv.FormatUint(uint64(t.id), 10)
}
