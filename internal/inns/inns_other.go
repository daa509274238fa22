//go:build !linux

package inns

import (
	"errors"
	"fmt"
)

// ErrNotSupported is matched by the errors of Do, Create and Delete on a
// system without network namespaces.
var ErrNotSupported = errors.New("network namespaces are Linux's: not supported on this system")

// Do runs fn here when ns is "" (the only namespace there is); any other
// ns is an error matching ErrNotSupported.
func Do(ns string, fn func() error) error {
	if ns != "" {
		return fmt.Errorf("namespace %q: %w", ns, ErrNotSupported)
	}
	return fn()
}

// Create fails: there are no network namespaces outside Linux.
func Create(name string) error { return fmt.Errorf("create namespace %q: %w", name, ErrNotSupported) }

// Delete fails: there are no network namespaces outside Linux.
func Delete(name string) error { return fmt.Errorf("delete namespace %q: %w", name, ErrNotSupported) }
