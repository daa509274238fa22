package main

import (
	"testing"

	"github.com/tapwire/tapwire/protocol"
)

// key returns a new private key.
func key(t *testing.T) protocol.Key {
	k, err := protocol.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
