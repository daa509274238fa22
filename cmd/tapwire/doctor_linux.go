package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tapwire/tapwire/doctor"
)

// runDoctor is tapwire doctor.
func runDoctor(ctx context.Context, stdout, stderr io.Writer, f doctorFlags) error {
	if err := ctx.Err(); err != nil {
		return err
	}

	facts := doctor.Gather()
	var fixed []string
	if f.fix {
		if doctor.Fixable(facts) {
			did, err := doctor.FixNode()
			if err != nil {
				fmt.Fprintf(stderr, "tapwire doctor: --fix: %v\n", err)
			} else {
				fixed = append(fixed, did)
				facts = doctor.Gather()
			}
		} else {
			fmt.Fprintln(stderr, "tapwire doctor: --fix: nothing it can repair (it creates /dev/net/tun when that is missing); see the fixes below")
		}
	}
	report := doctor.Diagnose(facts)
	report.Fixed = fixed

	var err error
	if f.json {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !report.Usable {
		return errors.New("TUN/TAP is not usable on this host")
	}
	return nil
}
