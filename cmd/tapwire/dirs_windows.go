package main

// Where tapwire up looks for NAME.conf when given a bare interface name.
// WireGuard for Windows keeps its configurations encrypted (.conf.dpapi),
// which tapwire does not read: tapwire's directory comes first, and the
// second is the same, so that the lookup names one place.
const (
	tapwireConfDir   = `C:\ProgramData\tapwire`
	wireguardConfDir = `C:\ProgramData\tapwire`
)

// defaultRunDir is where pid files and logs go when runDirEnv is unset.
const defaultRunDir = `C:\ProgramData\tapwire\run`
