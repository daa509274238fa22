package main

import (
	"context"
	"errors"
	"io"
)

func runDevice(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	return errors.New("not implemented yet")
}
