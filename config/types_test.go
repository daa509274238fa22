package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeTables knows vpn (100) and Off (7); "broken" fails as an unreadable
// file would.
func fakeTables(name string) (uint32, bool, error) {
	switch name {
	case "vpn":
		return 100, true, nil
	case "Off":
		return 7, true, nil
	case "broken":
		return 0, false, errors.New("routing table names: read rt_tables: permission denied")
	}
	id, ok := builtinTable(name)
	return id, ok, nil
}

// TestTypedValues parses each typed value of [Interface] and [Peer] from
// its text, and checks that Marshal writes the text back as it was read
// (in its canonical spelling where wg-quick's and tapwire's readers agree).
func TestTypedValues(t *testing.T) {
	t.Parallel()
	base := "[Interface]\nPrivateKey = " + priv1 + "\n"
	for _, c := range []struct {
		name  string
		lines string // added to [Interface], with a tap device when tap
		tap   bool
		check func(in Interface) bool
		out   string // what Marshal writes for lines; "" for nothing
	}{
		{"mode left out", "", false, func(in Interface) bool { return in.Mode == ModeDefault && !in.Mode.TAP() && in.Mode.String() == "" }, ""},
		{"mode tun", "Mode = tun", false, func(in Interface) bool { return in.Mode == ModeTUN && !in.Mode.TAP() }, "Mode = tun"},
		{"mode TAP", "Mode = TAP", false, func(in Interface) bool { return in.Mode == ModeTAP && in.Mode.TAP() }, "Mode = tap"},
		{"clampmss left out", "", false, func(in Interface) bool {
			return in.ClampMSS == SwitchDefault && in.ClampMSS.Or(true) && !in.ClampMSS.Or(false)
		}, ""},
		{"clampmss yes", "ClampMSS = yes", false, func(in Interface) bool { return in.ClampMSS == SwitchOn && in.ClampMSS.Or(false) }, "ClampMSS = yes"},
		{"clampmss On", "ClampMSS = On", false, func(in Interface) bool { return in.ClampMSS == SwitchOn }, "ClampMSS = yes"},
		{"clampmss true", "ClampMSS = true", false, func(in Interface) bool { return in.ClampMSS == SwitchOn }, "ClampMSS = yes"},
		{"clampmss NO", "ClampMSS = NO", false, func(in Interface) bool { return in.ClampMSS == SwitchOff && !in.ClampMSS.Or(true) }, "ClampMSS = no"},
		{"clampmss off", "ClampMSS = off", false, func(in Interface) bool { return in.ClampMSS == SwitchOff }, "ClampMSS = no"},
		{"clampmss false", "ClampMSS = false", false, func(in Interface) bool { return in.ClampMSS == SwitchOff }, "ClampMSS = no"},
		{"saveconfig TRUE", "SaveConfig = TRUE", false, func(in Interface) bool { return in.SaveConfig }, "SaveConfig = true"},
		{"saveconfig false", "SaveConfig = true\nSaveConfig = false", false, func(in Interface) bool { return !in.SaveConfig }, ""},
		{"mac ageing", "MACAgeing = 60", true, func(in Interface) bool { return in.MACAgeing == time.Minute }, "MACAgeing = 60"},
		{"mac ageing max", "MACAgeing = 2147483647", true, func(in Interface) bool { return in.MACAgeing == (1<<31-1)*time.Second }, "MACAgeing = 2147483647"},
		{"flood limit", "FloodLimit = 1000", true, func(in Interface) bool { return in.FloodLimit == 1000 }, "FloodLimit = 1000"},
		{"flood limit max", "FloodLimit = 4294967295", true, func(in Interface) bool { return in.FloodLimit == 1<<32-1 }, "FloodLimit = 4294967295"},
		{"flood limit off", "FloodLimit = 0", true, func(in Interface) bool { return in.FloodLimit == 0 }, ""},
		{"table left out", "", false, func(in Interface) bool { return in.Table == Table{} && in.Table.Auto() && !in.Table.Off() }, ""},
		{"table empty", "Table =", false, func(in Interface) bool { return in.Table == Table{} }, ""},
		{"table auto", "Table = auto", false, func(in Interface) bool { _, ok := in.Table.ID(); return in.Table.Auto() && !ok }, "Table = auto"},
		{"table off", "Table = off", false, func(in Interface) bool { _, ok := in.Table.ID(); return in.Table.Off() && !in.Table.Auto() && !ok }, "Table = off"},
		{"table 0", "Table = 0", false, func(in Interface) bool { return tableIs(in.Table, 0) }, "Table = 0"},
		{"table 1234", "Table = 1234", false, func(in Interface) bool { return tableIs(in.Table, 1234) }, "Table = 1234"},
		{"table max", "Table = 4294967295", false, func(in Interface) bool { return tableIs(in.Table, 1<<32-1) }, "Table = 4294967295"},
		{"table hex", "Table = 0x10", false, func(in Interface) bool { return tableIs(in.Table, 16) }, "Table = 0x10"},
		{"table HEX", "Table = 0XfF", false, func(in Interface) bool { return tableIs(in.Table, 255) }, "Table = 0XfF"},
		{"table octal, as ip reads it", "Table = 010", false, func(in Interface) bool { return tableIs(in.Table, 8) }, "Table = 010"},
		{"table main", "Table = main", false, func(in Interface) bool { return tableIs(in.Table, 254) }, "Table = main"},
		{"table local", "Table = local", false, func(in Interface) bool { return tableIs(in.Table, 255) }, "Table = local"},
		{"table name", "Table = vpn", false, func(in Interface) bool { return tableIs(in.Table, 100) }, "Table = vpn"},
		{"table name Off is a name", "Table = Off", false, func(in Interface) bool { return tableIs(in.Table, 7) }, "Table = Off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			text := base
			if c.tap {
				text += "Mode = tap\n"
			}
			text += c.lines + "\n"
			cfg, err := Options{TableNames: fakeTables}.Parse("typed.conf", strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg.Interface) {
				t.Errorf("%q parsed to %+v", c.lines, cfg.Interface)
			}
			out := string(cfg.Marshal())
			if c.out != "" && !strings.Contains(out, "\n"+c.out+"\n") {
				t.Errorf("Marshal does not write %q:\n%s", c.out, out)
			}
			if bare := string(mustParse(t, "typed.conf", strings.TrimSuffix(text, c.lines+"\n")).Marshal()); c.out == "" && out != bare {
				t.Errorf("Marshal writes a line for %q:\n%s", c.lines, out)
			}
			again, err := Options{TableNames: fakeTables}.Parse("typed.conf", strings.NewReader(out))
			if err != nil || !reflect.DeepEqual(again.Interface, cfg.Interface) {
				t.Errorf("round trip: %v, %+v, want %+v", err, again, cfg.Interface)
			}
		})
	}
}

func tableIs(t Table, id uint32) bool {
	got, ok := t.ID()
	return ok && got == id && !t.Auto() && !t.Off()
}

func TestPeerDurations(t *testing.T) {
	t.Parallel()
	base := "[Interface]\nPrivateKey = " + priv1 + "\n[Peer]\nPublicKey = " + pub2 + "\n"
	for text, want := range map[string]time.Duration{
		"":                          0,
		"PersistentKeepalive = 25":  25 * time.Second,
		"PersistentKeepalive = 0":   0,
		"PersistentKeepalive = off": 0,
		"PersistentKeepalive = 065": 65 * time.Second, // wg reads decimal
	} {
		c := mustParse(t, "k.conf", base+text+"\n")
		if got := c.Peers[0].PersistentKeepalive; got != want {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
		roundTrip(t, c)
	}
}

// TestTypedValueErrors: a value that is not of its type is refused at its
// file, line and key.
func TestTypedValueErrors(t *testing.T) {
	t.Parallel()
	base := "[Interface]\nPrivateKey = " + priv1 + "\n" // lines 1-2
	for _, c := range []struct {
		name, line string // line 3
		key, msg   string
	}{
		{"mode", "Mode = tunnel", "Mode", "want tun or tap"},
		{"mode empty", "Mode =", "Mode", "want tun or tap"},
		{"clampmss", "ClampMSS = 1", "ClampMSS", "want yes or no"},
		{"saveconfig", "SaveConfig = on", "SaveConfig", "neither true nor false"},
		{"mac ageing zero", "MACAgeing = 0", "MACAgeing", "want seconds, from 1"},
		{"mac ageing unit", "MACAgeing = 5m", "MACAgeing", "want seconds"},
		{"mac ageing negative", "MACAgeing = -1", "MACAgeing", "want seconds"},
		{"mac ageing too long", "MACAgeing = 2147483648", "MACAgeing", "want seconds"},
		{"flood limit unit", "FloodLimit = 1000/s", "FloodLimit", "want frames a second"},
		{"flood limit negative", "FloodLimit = -1", "FloodLimit", "want frames a second"},
		{"flood limit too big", "FloodLimit = 4294967296", "FloodLimit", "0 (no limit) to 4294967295"},
		{"flood limit empty", "FloodLimit =", "FloodLimit", "want frames a second"},
		{"table Auto", "Table = Auto", "Table", `"Auto": want off, auto, a routing table number, or a table name of /etc/iproute2/rt_tables (wg-quick reads off and auto in lower case only)`},
		{"table OFF", "Table = OFF", "Table", "in lower case only"},
		{"table unknown name", "Table = nosuch", "Table", `"nosuch": want off, auto, a routing table number, or a table name`},
		{"table name unreadable", "Table = broken", "Table", `"broken": routing table names: read rt_tables: permission denied`},
		{"table too big", "Table = 4294967296", "Table", "not a routing table number (0 to 4294967295"},
		{"table hex too big", "Table = 0x100000000", "Table", "not a routing table number"},
		{"table bad octal", "Table = 08", "Table", "not a routing table number"},
		{"table 0x alone", "Table = 0x", "Table", "not a routing table number"},
		{"table underscore", "Table = 1_000", "Table", "not a routing table number"},
		{"table 0b", "Table = 0b1", "Table", "not a routing table number"},
		{"table sign", "Table = +5", "Table", "want off, auto"},
		{"table negative", "Table = -1", "Table", "want off, auto"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			text := base + c.line + "\n"
			if strings.HasPrefix(c.key, "MAC") || c.key == "FloodLimit" {
				text += "Mode = tap\n"
			}
			cfg, err := Options{TableNames: fakeTables}.Parse("typed.conf", strings.NewReader(text))
			var e *Error
			if !errors.As(err, &e) || cfg != nil {
				t.Fatalf("%q: %v, %+v; want an *Error", c.line, err, cfg)
			}
			prefix := "typed.conf:3: " + c.key + ": "
			if e.Line != 3 || e.Key != c.key || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%q: %q, want it to start with %q and contain %q", c.line, err, prefix, c.msg)
			}
		})
	}
}

// TestMarshalTypedValuesBuilt: values made in code, not read from a file.
func TestMarshalTypedValuesBuilt(t *testing.T) {
	t.Parallel()
	c := &Config{
		Interface: Interface{PrivateKey: key(priv1), Table: TableID(100), Mode: ModeTAP, ClampMSS: SwitchOff, MACAgeing: 1500 * time.Millisecond},
		Peers:     []Peer{{PublicKey: key(pub2), PersistentKeepalive: 25 * time.Second}},
	}
	out := string(c.Marshal())
	for _, want := range []string{"Table = 100\n", "Mode = tap\n", "ClampMSS = no\n", "MACAgeing = 2\n", "PersistentKeepalive = 25\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("Marshal lacks %q:\n%s", want, out)
		}
	}
	for _, tc := range []struct {
		t    Table
		want string
	}{{Table{}, ""}, {TableAuto(), "auto"}, {TableOff(), "off"}, {TableID(0), "0"}, {TableID(1<<32 - 1), "4294967295"}} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// TestIPRoute2Tables reads iproute2's files under a root of the test's.
func TestIPRoute2Tables(t *testing.T) {
	t.Parallel()
	write := func(root, path, text string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	write(root, "etc/iproute2/rt_tables", "#\n# reserved values\n255\tlocal\n254\tmain\n\n  100 vpn\n0x65 hexy # a comment\n200 twice\n201 twice\n"+
		"bad line\n-1 negative\n300 three words here\n99999999999 huge\n0X10 upperx\n")
	write(root, "etc/iproute2/rt_tables.d/a.conf", "400 fromd\n")
	write(root, "etc/iproute2/rt_tables.d/b.conf", "401 fromd\n402 vpn\n")
	write(root, "etc/iproute2/rt_tables.d/c.txt", "403 notconf\n")
	write(root, "usr/share/iproute2/rt_tables", "500 usronly\n")
	write(root, "usr/share/iproute2/rt_tables.d/x.conf", "600 usrd\n601 fromd\n")
	names := IPRoute2Tables(root)
	for name, want := range map[string]int64{
		"main": 254, "local": 255, "default": 253, "unspec": 0, // built in
		"vpn":   402, // rt_tables.d after rt_tables
		"hexy":  0x65,
		"twice": 201, // the later line
		"fromd": 401, // /etc's rt_tables.d after /usr/share's, b.conf after a.conf
		"usrd":  600,
		"Main":  -1, "VPN": -1, // case sensitive, as ip
		"usronly":  -1, // /usr/share/iproute2/rt_tables only where /etc's is missing
		"notconf":  -1,
		"negative": -1, "three": -1, "huge": -1, "upperx": -1, "line": -1,
	} {
		id, ok, err := names(name)
		if err != nil || ok != (want >= 0) || ok && int64(id) != want {
			t.Errorf("%s: %d, %v, %v; want %d", name, id, ok, err, want)
		}
	}

	usr := t.TempDir()
	write(usr, "usr/share/iproute2/rt_tables", "500 usronly\n")
	if id, ok, err := IPRoute2Tables(usr)("usronly"); id != 500 || !ok || err != nil {
		t.Errorf("without /etc/iproute2/rt_tables: %d, %v, %v; want /usr/share's 500", id, ok, err)
	}
	if id, ok, err := IPRoute2Tables(t.TempDir())("main"); id != 254 || !ok || err != nil {
		t.Errorf("without any file: main is %d, %v, %v", id, ok, err)
	}

	broken := t.TempDir()
	if err := os.MkdirAll(filepath.Join(broken, "etc/iproute2/rt_tables"), 0o755); err != nil { // a directory: read fails
		t.Fatal(err)
	}
	_, err := Options{TableNames: IPRoute2Tables(broken)}.Parse("rt.conf", strings.NewReader("[Interface]\nPrivateKey = "+priv1+"\nTable = vpn\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "rt.conf:3: Table: \"vpn\": routing table names: read ") {
		t.Errorf("an unreadable rt_tables: %v", err)
	}
	cfg, err := Options{TableNames: names}.Parse("rt.conf", strings.NewReader("[Interface]\nPrivateKey = "+priv1+"\nTable = fromd\n"))
	if err != nil || !tableIs(cfg.Interface.Table, 401) {
		t.Errorf("Table = fromd: %v, %+v", err, cfg)
	}
}

// TestHostTableNames: Parse resolves names with the host's files, and
// knows main without any.
func TestHostTableNames(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]uint32{"main": 254, "local": 255, "default": 253} {
		c := mustParse(t, "host.conf", "[Interface]\nPrivateKey = "+priv1+"\nTable = "+v+"\n")
		if id, ok := c.Interface.Table.ID(); !ok || id != want || c.Interface.Table.String() != v {
			t.Errorf("Table = %s: %d, %v; want %d", v, id, ok, want)
		}
	}
}
