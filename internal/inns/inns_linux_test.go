package inns_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tapwire/tapwire/internal/inns"
	"github.com/tapwire/tapwire/internal/nstest"
	"github.com/tapwire/tapwire/internal/privdrop"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary a child that drops to CAP_NET_ADMIN and
// runs Do in its own namespace and in the one the variable names.
const childEnv = "INNS_TEST_CHILD"

func TestMain(m *testing.M) {
	if other, ok := os.LookupEnv(childEnv); ok {
		if err := privdrop.Drop(privdrop.NetAdmin); err != nil {
			fmt.Println("drop:", err)
			os.Exit(2)
		}
		var ran bool
		err := inns.Do("/proc/self/ns/net", func() error { ran = true; return nil })
		fmt.Printf("own: %v %v\n", ran, err)
		err = inns.Do(other, func() error { return nil })
		fmt.Printf("other: %v %v\n", err, errors.Is(err, unix.EPERM))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDoOwnNamespaceWithoutSysAdmin: a process with CAP_NET_ADMIN alone
// (no CAP_SYS_ADMIN, which setns takes) runs code "in" the namespace it is
// in, and only there.
func TestDoOwnNamespaceWithoutSysAdmin(t *testing.T) {
	ns := nstest.New(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+ns.Name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "own: true <nil>\n") {
		t.Errorf("Do in the namespace the process is in, without CAP_SYS_ADMIN:\n%s", out)
	}
	if !strings.Contains(string(out), "other: ") || !strings.Contains(string(out), " true\n") {
		t.Errorf("Do in another namespace without CAP_SYS_ADMIN did not fail with EPERM:\n%s", out)
	}
}
