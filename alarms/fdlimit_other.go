//go:build !unix

package alarms

// fileLimit is unknown outside Unix.
func fileLimit() (uint64, bool) { return 0, false }
