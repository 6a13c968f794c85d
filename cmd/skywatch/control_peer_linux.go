package main

import (
	"fmt"
	"net"
	"syscall"
)

// checkPeer accepts a peer running as uid or as root.
func checkPeer(conn *net.UnixConn, uid int) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if cred.Uid != 0 && int(cred.Uid) != uid {
		return fmt.Errorf("peer pid %d runs as uid %d, not this server's %d or root", cred.Pid, cred.Uid, uid)
	}
	return nil
}
