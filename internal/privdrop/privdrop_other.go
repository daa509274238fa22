//go:build !linux

package privdrop

func drop([]Capability) error { return ErrNotSupported }
