//go:build unix

package alarms

import "syscall"

// fileLimit returns the process's soft limit of open files (Go raises it
// to the hard limit at start).
func fileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return r.Cur, true
}
