//go:build !linux

package uapi

import "net"

// connID names a connection in logs; only Linux says who the peer is.
func connID(net.Conn) string { return "?" }
