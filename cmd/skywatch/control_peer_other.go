//go:build !linux

package main

import "net"

// checkPeer relies on the socket's mode (0600) and its directory where
// peer credentials are not read.
func checkPeer(*net.UnixConn, int) error { return nil }
