package main

import "os"

// runDirEnv names the environment variable that moves the directory where
// tapwire up keeps the pid file and log of each interface it brought up.
// tapwire down must see the same value to find the pid file. The tests set
// it to a temporary directory so that they leave nothing in /var/run.
const runDirEnv = "TAPWIRE_RUN_DIR"

// runDir returns the directory for the pid files (NAME.pid) and logs
// (NAME.log) of interfaces tapwire up brought up: $TAPWIRE_RUN_DIR if set and
// not empty, else defaultRunDir (/var/run/tapwire; on Windows under
// ProgramData).
func runDir() string {
	if d := os.Getenv(runDirEnv); d != "" {
		return d
	}
	return defaultRunDir
}
